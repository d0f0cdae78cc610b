"""`lab bench lsp`: payments through the LSP API versus straight to LND's router, same run, same topology.

star5 comes up, ``lsp serve`` runs against the hub (a real separate process, as an
operator runs it), one client is onboarded and funded by an invoice paid from c1.
Then N payments of ``amount`` sat to c3 are made twice over: ``direct`` = the hub's
own SendPaymentV2 (what the LSP itself calls), ``api`` = ``POST /api/payments/send``
signed by the client (HTTP, HMAC, nonce, ledger reserve/refund, decode, SendPaymentV2,
final update). The two sides alternate in rounds so drift on a shared machine hits
both alike. Reported per side: payments/s (count / wall time of that side's rounds),
latency p50/p95, the ratio api/direct of payments/s and the LSP process's CPU per API payment
(targets: ratio >= 0.9, CPU <= 5 ms), for every database and concurrency asked for, in one run.

The LSP runs through ``harness.lsp_process`` (the lab's way of running it as an operator would).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness.harness import LightningTestHarness
from harness.lsp_process import LspServer, free_port, lsp_env, scratch_postgres
from harness.wait import wait_for

REPO = Path(__file__).resolve().parents[1]
MAX_PAYMENTS = 500  # bounded: the bench must end on a shared machine


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


TARGET_RATIO = 0.9
TARGET_LSP_CPU_MS = 5.0
MAX_FEE_SAT = 10
FUNDING_CAP_SAT = 900_000  # what c1 can send the hub on star5 (1,000,000 pushed, minus reserves)


def _measure(
    lab: LightningTestHarness,
    server: LspServer,
    client: Any,
    *,
    payments: int,
    amount_sat: int,
    concurrency: int,
    rounds: int,
) -> dict[str, Any]:
    """One configuration: ``payments`` per side at ``concurrency``, the sides alternating in rounds."""
    hub, c3 = lab.node("hub"), lab.node("c3")

    def direct(pr: str) -> float:
        t = time.perf_counter()
        # The request the LSP sends (lncore/lnd/router.py): one part, no in-flight updates.
        res = hub.router.pay_invoice(pr, fee_limit_sat=MAX_FEE_SAT, timeout_s=60, max_parts=1)
        assert res.succeeded, res
        return time.perf_counter() - t

    def api(pr: str) -> float:
        t = time.perf_counter()
        res = client.send_payment(pr, max_fee_sat=MAX_FEE_SAT, timeout_s=60)
        assert res["status"] == "succeeded", res
        return time.perf_counter() - t

    lat: dict[str, list[float]] = {"direct": [], "api": []}
    wall: dict[str, float] = {"direct": 0.0, "api": 0.0}
    assert server.proc is not None
    # CPU seconds per side and process: where the two cores went (the ratio on a small machine is
    # set by it). "bench" is this process: the load generator's own signing/HTTP.
    pids = {"lsp": server.proc.pid}
    pids.update({f"lnd {n.name}": n.proc.pid for n in (hub, c3) if n.proc is not None})
    cpu: dict[str, dict[str, float]] = {side: dict.fromkeys([*pids, "bench"], 0.0) for side in lat}

    def sample() -> dict[str, float]:
        return {**{k: cpu_seconds(pid) for k, pid in pids.items()}, "bench": time.process_time()}

    rounds = max(1, min(rounds, payments))
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
    result: dict[str, Any] = {
        "concurrency": concurrency,
        "payments_per_side": payments,
        "direct": _side(lat["direct"], wall["direct"]),
        "api": _side(lat["api"], wall["api"]),
        "lsp_cpu_ms_per_payment": cpu["api"].get("lsp", 0.0) * 1000 / payments,
        "cpu_ms_per_payment": {side: {k: v * 1000 / payments for k, v in c.items()} for side, c in cpu.items()},
        "load_avg_1m": os.getloadavg()[0],
    }
    result["ratio_api_to_direct"] = result["api"]["payments_per_s"] / result["direct"]["payments_per_s"]
    result["met"] = (
        result["ratio_api_to_direct"] >= TARGET_RATIO and result["lsp_cpu_ms_per_payment"] <= TARGET_LSP_CPU_MS
    )
    return result


def run(
    *,
    payments: int = 100,
    amount_sat: int = 1000,
    concurrency: list[int] | None = None,
    rounds: int = 5,
    db_urls: list[str] | None = None,
    out_path: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every database x every concurrency in one run, on one star5: for each database a fresh
    ``lsp serve`` and client; ``"sqlite"`` is a SQLite file in the lab directory, and a PostgreSQL
    URL names the server: the run gets an empty database of its own there (dropped after)."""
    from lsp.client import LSPClient

    concurrency = concurrency or [1, 4, 8]
    db_urls = db_urls or ["sqlite"]
    if not 1 <= payments <= MAX_PAYMENTS:
        raise ValueError(f"payments must be 1..{MAX_PAYMENTS}")
    per_db = len(concurrency) * payments * (amount_sat + MAX_FEE_SAT) + 10_000
    if per_db * len(db_urls) > FUNDING_CAP_SAT:
        raise ValueError(
            f"{len(db_urls)} database(s) x {len(concurrency)} concurrencies x {payments} payments of {amount_sat} sat "
            f"need {per_db * len(db_urls):,} sat of client funding; star5's c1 can send {FUNDING_CAP_SAT:,}"
        )
    admin = "bench-admin-" + uuid.uuid4().hex
    runs: list[dict[str, Any]] = []
    with LightningTestHarness("star5") as lab, ExitStack() as scratch:
        for i, db in enumerate(db_urls):
            url = f"sqlite:///{lab.lab_dir / f'lsp-bench-{i}.db'}" if db == "sqlite" else db
            database = "postgresql" if url.startswith("postgresql") else "sqlite"
            if database == "postgresql":  # an empty database of its own on that server, dropped after
                url = scratch.enter_context(scratch_postgres(url, "lsp_bench"))
            env = lsp_env(lab.node("hub"), url, admin_key=admin)
            server = LspServer(env, free_port(), lab.lab_dir / f"lsp-bench-{i}.log")
            server.start()
            try:
                creds = server.onboard(f"bench-{i}-{uuid.uuid4().hex[:6]}", requestsPerMinute=100_000)
                with LSPClient(server.base_url, creds.api_key, creds.api_secret) as client:
                    fund = client.create_invoice(per_db, "bench funding")
                    assert lab.node("c1").pay_invoice(fund["paymentRequest"], fee_limit_sat=1000).succeeded
                    invoice_id: str = fund["invoiceId"]

                    def credited(c: LSPClient = client, inv: str = invoice_id) -> bool:
                        return bool(c.get_invoice(inv)["status"] == "settled")

                    wait_for(
                        credited,
                        what="the bench funding to be credited",
                        timeout_s="PAYMENT",
                    )
                    for conc in concurrency:
                        r = _measure(
                            lab, server, client, payments=payments, amount_sat=amount_sat,
                            concurrency=conc, rounds=rounds,
                        )
                        r["database"] = database
                        runs.append(r)
                        echo(
                            f"{database:10} concurrency {conc}: ratio {r['ratio_api_to_direct']:.2f}, "
                            f"LSP CPU {r['lsp_cpu_ms_per_payment']:.1f} ms/payment"
                        )
            finally:
                server.stop()
    result: dict[str, Any] = {
        "benchmark": "lsp",
        "topology": "star5",
        "path": "hub -> c3 (one hop)",
        "amount_sat": amount_sat,
        "targets": {"ratio_api_to_direct": TARGET_RATIO, "lsp_cpu_ms_per_payment": TARGET_LSP_CPU_MS},
        "runs": runs,
        "met": all(r["met"] for r in runs),
        "host": f"{platform.node()} {os.cpu_count()} cpu",
    }
    echo(table(result))
    if out_path is not None:
        out_path.write_text(json.dumps(result, indent=2))
    return result


def table(result: dict[str, Any]) -> str:
    """The markdown table docs/BENCHMARKS.md records."""
    lines = [
        "| database | concurrency | direct payments/s (p50 / p95 ms) | api payments/s (p50 / p95 ms) | ratio "
        "| LSP CPU per API payment | load avg | targets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        d, a = r["direct"], r["api"]
        lines.append(
            f"| {r['database']} | {r['concurrency']} | {d['payments_per_s']:.2f} ({d['p50_ms']:.0f} / {d['p95_ms']:.0f}) "
            f"| {a['payments_per_s']:.2f} ({a['p50_ms']:.0f} / {a['p95_ms']:.0f}) | **{r['ratio_api_to_direct']:.2f}** "
            f"| {r['lsp_cpu_ms_per_payment']:.1f} ms | {r['load_avg_1m']:.1f} | {'met' if r['met'] else 'missed'} |"
        )
    t = result["targets"]
    lines.append(
        f"\ntargets: ratio >= {t['ratio_api_to_direct']} and LSP CPU <= {t['lsp_cpu_ms_per_payment']} ms per payment"
    )
    return "\n".join(lines)
