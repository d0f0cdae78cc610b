"""`lab bench lsp`: payments through the LSP API versus straight to LND's router, same run, same topology.

star5 comes up, ``lsp serve`` runs against the hub (a real separate process, as an
operator runs it), one client is onboarded and funded by an invoice paid from c1.
Then N payments of ``amount`` sat to c3 are made twice over: ``direct`` = the hub's
own SendPaymentV2 (what the LSP itself calls), ``api`` = ``POST /api/payments/send``
signed by the client (HTTP, HMAC, nonce, ledger reserve/refund, decode, SendPaymentV2,
final update). The two sides alternate in rounds so drift on a shared machine hits
both alike. Reported per side: payments/s (count / wall time of that side's rounds),
latency p50/p95, and the ratio api/direct of payments/s (target >= 0.8).

``LspServer`` and ``lsp_env`` are also what the live tests (tests/lab/lsp) use.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.harness import LightningTestHarness
from harness.wait import wait_for

REPO = Path(__file__).resolve().parents[1]
MAX_PAYMENTS = 500  # bounded: the bench must end on a shared machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lsp_env(
    lab: LightningTestHarness, db_url: str, *, admin_key: str, node: str = "hub", **extra: str
) -> dict[str, str]:
    """The environment of an ``lsp serve`` on the lab's ``node`` (the hub by default): only LSP_*
    variables, as in production."""
    hub = lab.node(node).config
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSP_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "LSP_NETWORK": "regtest",
            "LSP_DATABASE_URL": db_url,
            "LSP_ADMIN_API_KEY": admin_key,
            "LSP_SECRET_KEY": "lab-secret-key-" + uuid.uuid4().hex,
            "LSP_LND_HOST": f"127.0.0.1:{hub.rpc_port}",
            "LSP_LND_TLS_CERT_PATH": str(hub.tls_cert),
            "LSP_LND_MACAROON_PATH": str(hub.macaroon),
            "LSP_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


@dataclass
class LspServer:
    """``lsp serve`` as a child process; ``kill9`` and ``start`` again for crash tests."""

    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, args: list[str]) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lsp.cli", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,
            )

    def _running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"lsp exited with {self.proc.returncode}:\n{self.log_tail()}")

    def start(self) -> None:
        self._spawn(["serve", "--port", str(self.port)])

        def healthy() -> bool:
            self._running()
            try:
                return httpx.get(self.base_url + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, what="the LSP to answer /health", timeout_s=60, describe=self.log_tail)

    def wait_killed(self, *, timeout_s: float = 120) -> int:
        """Wait for the process to die at its armed crash point (LSP_CRASH_AT); its exit status."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the LSP did not reach its crash point in {timeout_s} s:\n{self.log_tail()}") from None

    def onboard(self, name: str, **api_limits: int) -> dict[str, Any]:
        """Onboard a client with the server's admin key; its ``clientId``, ``apiKey`` and ``apiSecret``.
        ``api_limits``: the onboarding's ``apiLimits`` (e.g. ``requestsPerMinute=100_000``)."""
        body: dict[str, Any] = {"name": name}
        if api_limits:
            body["apiLimits"] = api_limits
        resp = httpx.post(
            self.base_url + "/api/enterprise/onboard",
            headers={"X-Admin-Key": self.env["LSP_ADMIN_API_KEY"]},
            json=body,
            timeout=30,
        )
        if resp.status_code != 201:
            raise RuntimeError(f"onboarding {name!r} failed: {resp.status_code} {resp.text[:300]}")
        return dict(resp.json())

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class LspsDaemon(LspServer):
    """``lsp lsps`` (LSPS0 peer messages, the JIT interceptor, LSPS1 follow-up) as a child process; the
    database must be migrated already (``lsp migrate``, or an ``lsp serve`` started first)."""

    READY = "LSPS daemon running"

    def start(self) -> None:
        seen = self.log_text().count(self.READY)
        self._spawn(["lsps"])

        def ready() -> bool:
            self._running()
            return self.log_text().count(self.READY) > seen

        wait_for(ready, what="the LSPS daemon to start", timeout_s=60, describe=self.log_tail)


def migrate(env: dict[str, str]) -> None:
    """``lsp migrate`` with ``env``: the database at the latest schema."""
    done = subprocess.run([sys.executable, "-m", "lsp.cli", "migrate"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"lsp migrate failed: {done.stdout}{done.stderr}")


def reconcile(env: dict[str, str]) -> dict[str, Any]:
    """``lsp reconcile --json`` as an operator runs it: the report, whatever its exit status."""
    env = {k: v for k, v in env.items() if k != "LSP_CRASH_AT"}
    done = subprocess.run(
        [sys.executable, "-m", "lsp.cli", "reconcile", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode not in (0, 1) or not done.stdout.strip().startswith("{"):
        raise RuntimeError(f"lsp reconcile failed ({done.returncode}): {done.stdout}{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    assert (done.returncode == 0) == report["ok"], (done.returncode, report)
    return report


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _side(latencies: list[float], wall_s: float) -> dict[str, float]:
    return {
        "payments": len(latencies),
        "wall_s": wall_s,
        "payments_per_s": len(latencies) / wall_s if wall_s else 0.0,
        "p50_ms": _pct(latencies, 0.50) * 1000,
        "p95_ms": _pct(latencies, 0.95) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
    }


def run(
    *,
    payments: int = 50,
    amount_sat: int = 1000,
    concurrency: int = 1,
    rounds: int = 5,
    db_url: str | None = None,
    out_path: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    from lsp.client import LSPClient

    if not 1 <= payments <= MAX_PAYMENTS:
        raise ValueError(f"payments must be 1..{MAX_PAYMENTS}")
    rounds = max(1, min(rounds, payments))
    admin = "bench-admin-" + uuid.uuid4().hex
    with LightningTestHarness("star5") as lab:
        hub, c3 = lab.node("hub"), lab.node("c3")
        url = db_url or f"sqlite:///{lab.lab_dir / 'lsp-bench.db'}"
        server = LspServer(lsp_env(lab, url, admin_key=admin), free_port(), lab.lab_dir / "lsp-bench.log")
        server.start()
        try:
            creds = server.onboard("bench", requestsPerMinute=100_000)
            client = LSPClient(server.base_url, creds["apiKey"], creds["apiSecret"])
            fund = client.create_invoice(min(4_000_000, payments * (amount_sat + 50) + 10_000), "bench funding")
            assert lab.node("c1").pay_invoice(fund["paymentRequest"], fee_limit_sat=1000).succeeded
            wait_for(
                lambda: client.get_invoice(fund["invoiceId"])["status"] == "settled",
                what="the bench funding to be credited",
                timeout_s="PAYMENT",
            )
            max_fee = 10

            def direct(pr: str) -> float:
                t = time.perf_counter()
                # The request the LSP sends (lncore/lnd/router.py): one part, no in-flight updates.
                res = hub.router.pay_invoice(pr, fee_limit_sat=max_fee, timeout_s=60, max_parts=1)
                assert res.succeeded, res
                return time.perf_counter() - t

            def api(pr: str) -> float:
                t = time.perf_counter()
                res = client.send_payment(pr, max_fee_sat=max_fee, timeout_s=60)
                assert res["status"] == "succeeded", res
                return time.perf_counter() - t

            lat: dict[str, list[float]] = {"direct": [], "api": []}
            wall: dict[str, float] = {"direct": 0.0, "api": 0.0}
            assert server.proc is not None
            # CPU seconds per side and process: where the two cores went (the ratio on a small
            # machine is set by it). "bench" is this process: the load generator's own signing/HTTP.
            pids = {"lsp": server.proc.pid}
            pids.update({f"lnd {n.name}": n.proc.pid for n in (hub, c3) if n.proc is not None})
            cpu: dict[str, dict[str, float]] = {side: dict.fromkeys([*pids, "bench"], 0.0) for side in lat}

            def sample() -> dict[str, float]:
                return {**{k: cpu_seconds(pid) for k, pid in pids.items()}, "bench": time.process_time()}

            sizes = [payments // rounds + (1 if i < payments % rounds else 0) for i in range(rounds)]
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for i, n in enumerate(sizes):
                    order = ("direct", "api") if i % 2 == 0 else ("api", "direct")
                    for side in order:
                        prs = [c3.add_invoice(amount_sat, memo=f"bench {side}").payment_request for _ in range(n)]
                        fn = direct if side == "direct" else api
                        t0, cpu0 = time.perf_counter(), sample()
                        lat[side].extend(pool.map(fn, prs))
                        wall[side] += time.perf_counter() - t0
                        for k, v in sample().items():
                            cpu[side][k] += v - cpu0[k]
            client.close()
        finally:
            server.stop()
    result: dict[str, Any] = {
        "topology": "star5",
        "path": "hub -> c3 (one hop)",
        "payments_per_side": payments,
        "amount_sat": amount_sat,
        "concurrency": concurrency,
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "direct": _side(lat["direct"], wall["direct"]),
        "api": _side(lat["api"], wall["api"]),
        "lsp_cpu_ms_per_payment": cpu["api"].get("lsp", 0.0) * 1000 / payments,
        "cpu_ms_per_payment": {side: {k: v * 1000 / payments for k, v in c.items()} for side, c in cpu.items()},
        "load_avg_1m": os.getloadavg()[0],
        "host": f"{platform.node()} {os.cpu_count()} cpu",
    }
    result["ratio_api_to_direct"] = result["api"]["payments_per_s"] / result["direct"]["payments_per_s"]
    echo(
        "| side | payments | payments/s | p50 ms | p95 ms |\n|---|---|---|---|---|\n"
        + "".join(
            f"| {side} | {result[side]['payments']} | {result[side]['payments_per_s']:.2f} "
            f"| {result[side]['p50_ms']:.0f} | {result[side]['p95_ms']:.0f} |\n"
            for side in ("direct", "api")
        )
        + f"\nratio api/direct (payments/s): {result['ratio_api_to_direct']:.2f} (target >= 0.8); "
        f"LSP process CPU per API payment: {result['lsp_cpu_ms_per_payment']:.1f} ms; "
        f"load average {result['load_avg_1m']:.1f} on {os.cpu_count()} cpu\n\n"
        + "CPU ms per payment | "
        + " | ".join(result["cpu_ms_per_payment"]["api"])
        + "\n"
        + "".join(
            f"{side} | " + " | ".join(f"{v:.1f}" for v in result["cpu_ms_per_payment"][side].values()) + "\n"
            for side in ("direct", "api")
        )
    )
    if out_path is not None:
        out_path.write_text(json.dumps(result, indent=2))
    return result
