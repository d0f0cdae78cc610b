"""The LSP as processes, run the way an operator runs it: ``lsp serve`` (the API) and ``lsp lsps``
(the LSPS daemon) on a lab node, configured only by ``LSP_*`` variables.

The lab drives the LSP through these and its public surfaces (HTTP API and client, CLI, LSPS over
the wire), never by importing its internals:

    env = lsp_env(lab.node("hub"), f"sqlite:///{tmp / 'lsp.db'}", admin_key="...")
    server = LspServer(env, free_port(), tmp / "lsp.log"); server.start()
    daemon = LspsDaemon(env, 0, tmp / "lsps.log"); migrate(env); daemon.start()
    server.kill9(); server.start()        # crash drills (LSP_CRASH_AT arms named points)
    reconcile(env)                        # `lsp reconcile --json`
    lsp_cli(env, "swaps", "rescan", ...)  # any `lsp` command, as the operator runs it
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.errors import LabError, ProcessDied
from harness.node import LndNode
from harness.runtime.ports import free_port
from harness.wait import log_tail, wait_for

__all__ = [
    "LabLsp", "LspServer", "LspsDaemon", "OnboardedClient", "free_port", "lsp_cli", "lsp_env", "metric", "migrate",
    "reconcile", "start_lab_lsp",
]  # fmt: skip

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class OnboardedClient:
    """A client the lab onboarded through the LSP's admin endpoint: what it signs requests with."""

    client_id: str
    api_key: str
    api_secret: str


def lsp_env(node: LndNode, db_url: str, *, admin_key: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of an ``lsp serve`` or ``lsp lsps`` on the lab's LND ``node``: only LSP_*
    variables, as in production (``extra`` adds or overrides some)."""
    hub = node.config
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSP_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "LSP_NETWORK": "regtest",
            "LSP_DATABASE_URL": db_url,
            "LSP_ADMIN_API_KEY": admin_key or "lab-admin-" + uuid.uuid4().hex,
            "LSP_SECRET_KEY": "lab-secret-key-" + uuid.uuid4().hex,
            "LSP_LND_HOST": f"127.0.0.1:{hub.rpc_port}",
            "LSP_LND_TLS_CERT_PATH": str(hub.tls_cert),
            "LSP_LND_MACAROON_PATH": str(hub.macaroon),
            "LSP_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra)
    return env


def hosting_env(lab: Any, *, instance: str, **extra: str) -> dict[str, str]:
    """LSP_HOSTING_* for an LSP on ``lab`` hosting nodes on the operator's Docker daemon
    (DOCKER_HOST): the lab's LND image, the lab's Bitcoin Core as the nodes' chain backend.

    In the Docker runtime the nodes join the lab's network (the chain and the LSP's LND by
    their container names); in the process runtime they share the host's network, like the lab's
    processes. ``instance`` names this LSP's nodes on the daemon (one per test keeps tests apart)."""
    from harness.chain.base import RPC_PASS, RPC_USER
    from harness.chain.bitcoind import Bitcoind
    from harness.runtime.docker import DockerRuntime
    from harness.runtime.docker_client import docker_host
    from harness.runtime.images import ensure_images

    chain = lab.chain
    if not isinstance(chain, Bitcoind):
        raise LabError(f"hosted nodes run on Bitcoin Core; this lab's chain is {chain.kind}")
    cfg = chain.config
    runtime = lab.runtime
    if isinstance(runtime, DockerRuntime):
        network, image = runtime.network.name, runtime.images.lnd
    else:
        network, image = "host", ensure_images().lnd
    env = {
        "DOCKER_HOST": docker_host(),  # the daemon the lab uses (its private one when none is set)
        "LSP_HOSTING_ENABLED": "true",
        "LSP_HOSTING_INSTANCE": instance,
        "LSP_HOSTING_IMAGE": image,
        "LSP_HOSTING_DOCKER_NETWORK": network,
        "LSP_HOSTING_BITCOIND_RPC_HOST": f"{cfg.peer_host}:{cfg.rpc_port}",
        "LSP_HOSTING_BITCOIND_RPC_USER": RPC_USER,
        "LSP_HOSTING_BITCOIND_RPC_PASS": RPC_PASS,
        "LSP_HOSTING_BITCOIND_ZMQ_BLOCK": f"tcp://{cfg.peer_host}:{cfg.zmq_block_port}",
        "LSP_HOSTING_BITCOIND_ZMQ_TX": f"tcp://{cfg.peer_host}:{cfg.zmq_tx_port}",
        "LSP_HOSTING_MONITOR_INTERVAL_S": "1",
    }
    env.update(extra)
    return env


@dataclass
class LspServer:
    """``lsp serve`` as a child process; ``kill9`` and ``start`` again for crash tests. As a context
    manager it starts and stops (``LspServer.on_node`` for the lab's usual one)."""

    env: dict[str, str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    # Its own session: outlives the command that started it (``lab up --lsp``; ``lab down`` stops it).
    detached: bool = False

    @classmethod
    def on_node(cls, node: LndNode, lab_dir: Path, *, requests_per_minute: int = 100_000) -> LspServer:
        """The lab's LSP on ``node``: SQLite and its log in ``<lab_dir>/lsp/``, a free port."""
        where = lab_dir / "lsp"
        where.mkdir(parents=True, exist_ok=True)
        env = lsp_env(
            node,
            f"sqlite:///{where / 'lsp.db'}",
            LSP_DEFAULT_REQUESTS_PER_MINUTE=str(requests_per_minute),
        )
        return cls(env, free_port(), where / "lsp.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
                start_new_session=self.detached,
            )

    def _running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            # ProcessDied ends a wait at once (any other error would count as "not yet").
            raise ProcessDied(f"lsp exited with {self.proc.returncode}:\n{self.log_tail()}")

    def start(self) -> None:
        """Start ``lsp serve`` and wait until /health says its LND is configured; stopped again if
        it never gets there."""
        self._spawn(["serve", "--port", str(self.port)])

        def healthy() -> bool:
            self._running()
            try:
                return bool(httpx.get(self.base_url + "/health", timeout=2).json().get("lnd") == "configured")
            except (httpx.HTTPError, ValueError):
                return False

        try:
            wait_for(
                healthy,
                what=f"the LSP API at {self.base_url} to answer /health",
                timeout_s="LSP_READY",
                describe=self.log_tail,
            )
        except BaseException:
            self.stop()
            raise

    def wait_killed(self, *, timeout_s: float = 120) -> int:
        """Wait for the process to die at its armed crash point (LSP_CRASH_AT); its exit status."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the LSP did not reach its crash point in {timeout_s} s:\n{self.log_tail()}") from None

    def onboard(self, name: str, *, client_id: str | None = None, **api_limits: int) -> OnboardedClient:
        """Onboard a client with the server's admin key. ``api_limits``: the onboarding's
        ``apiLimits`` (e.g. ``requestsPerMinute=100_000``; default: the server's setting)."""
        body: dict[str, Any] = {"name": name}
        if client_id:
            body["clientId"] = client_id
        if api_limits:
            body["apiLimits"] = api_limits
        resp = httpx.post(
            self.base_url + "/api/enterprise/onboard",
            headers={"X-Admin-Key": self.env["LSP_ADMIN_API_KEY"]},
            json=body,
            timeout=30,
        )
        if resp.status_code != 201:
            raise LabError(f"onboarding {name!r} failed: {resp.status_code} {resp.text[:300]}")
        made = resp.json()
        return OnboardedClient(made["clientId"], made["apiKey"], made["apiSecret"])

    def admin_get(self, path: str) -> Any:
        """GET an operator endpoint (``/api/admin/...``) with the server's admin key."""
        resp = httpx.get(self.base_url + path, headers={"X-Admin-Key": self.env["LSP_ADMIN_API_KEY"]}, timeout=30)
        if resp.status_code != 200:
            raise LabError(f"GET {path} failed: {resp.status_code} {resp.text[:300]}")
        return resp.json()

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
        return log_tail(self.log_path, n)

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of the server's Prometheus metrics (GET /metrics), None if it has none."""
        return metric(httpx.get(self.base_url + "/metrics", timeout=10).text, name, **labels)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class LspsDaemon(LspServer):
    """``lsp lsps`` (LSPS0 peer messages, the JIT interceptor, LSPS1 follow-up) as a child process; the
    database must be migrated already (``lsp migrate``, or an ``lsp serve`` started first)."""

    READY = "LSPS daemon running"

    def start(self) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._spawn(["lsps"])

        def ready() -> bool:
            self._running()
            with self.log_path.open("rb") as log:  # only what this start wrote
                log.seek(offset)
                return self.READY.encode() in log.read()

        wait_for(ready, what="the LSPS daemon to start", timeout_s=60, describe=self.log_tail)


@dataclass(frozen=True)
class LabLsp:
    """The LSP ``lab up --lsp`` leaves running on the topology's lsp-role node: what a newcomer
    needs to use it (printed, and kept in the lab's state so ``lab down`` stops it)."""

    node: str
    url: str
    admin_key: str
    dashboard_password: str
    client: OnboardedClient
    processes: list[dict[str, Any]]  # pid, argv, log of ``lsp serve`` and ``lsp lsps``

    def describe(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "url": self.url,
            "admin_key": self.admin_key,
            "dashboard": f"{self.url}/dashboard",
            "dashboard_password": self.dashboard_password,
            "client": {"client_id": self.client.client_id, "api_key": self.client.api_key,
                       "api_secret": self.client.api_secret},
            "processes": self.processes,
        }


def start_lab_lsp(node: LndNode, lab_dir: Path) -> LabLsp:
    """``lsp serve`` and ``lsp lsps`` on ``node`` (SQLite and logs in ``<lab_dir>/lsp/``), detached,
    with fresh secrets, and one onboarded client named "demo". Stopped again if either fails."""
    import secrets

    where = lab_dir / "lsp"
    where.mkdir(parents=True, exist_ok=True)
    admin_key, password = "lab-admin-" + secrets.token_hex(16), secrets.token_urlsafe(12)
    env = lsp_env(
        node,
        f"sqlite:///{where / 'lsp.db'}",
        admin_key=admin_key,
        LSP_ADMIN_PASSWORD=password,
        LSP_DEFAULT_REQUESTS_PER_MINUTE="6000",
    )
    server = LspServer(env, free_port(), where / "lsp.log", detached=True)
    daemon = LspsDaemon(env, 0, where / "lsps.log", detached=True)
    try:
        server.start()  # migrates the database first
        daemon.start()
        client = server.onboard("demo")
    except BaseException:
        daemon.stop()
        server.stop()
        raise
    assert server.proc is not None and daemon.proc is not None
    argv = [sys.executable, "-m", "lsp.cli"]
    return LabLsp(
        node=node.name,
        url=server.base_url,
        admin_key=admin_key,
        dashboard_password=password,
        client=client,
        processes=[
            {"name": "lsp serve", "pid": server.proc.pid, "argv": [*argv, "serve"], "log": str(server.log_path)},
            {"name": "lsp lsps", "pid": daemon.proc.pid, "argv": [*argv, "lsps"], "log": str(daemon.log_path)},
        ],
    )


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of sample ``name`` with ``labels`` in Prometheus text ``text``; None if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def lsp_cli(env: dict[str, str], *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
    """``lsp <args>`` with the LSP's settings ``env``, as an operator runs it beside the server
    (never armed with crash points: those are for the server under test)."""
    env = {k: v for k, v in env.items() if k != "LSP_CRASH_AT"}
    return subprocess.run(
        [sys.executable, "-m", "lsp.cli", *args], env=env, capture_output=True, text=True, timeout=timeout_s
    )


def migrate(env: dict[str, str]) -> None:
    """``lsp migrate`` with ``env``: the database at the latest schema."""
    done = lsp_cli(env, "migrate")
    if done.returncode != 0:
        raise RuntimeError(f"lsp migrate failed: {done.stdout}{done.stderr}")


def reconcile(env: dict[str, str]) -> dict[str, Any]:
    """``lsp reconcile --json`` as an operator runs it: the report, whatever its exit status."""
    done = lsp_cli(env, "reconcile", "--json", timeout_s=120)
    if done.returncode not in (0, 1) or not done.stdout.strip().startswith("{"):
        raise RuntimeError(f"lsp reconcile failed ({done.returncode}): {done.stdout}{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    assert (done.returncode == 0) == report["ok"], (done.returncode, report)
    return report


@contextmanager
def scratch_postgres(base_url: str, prefix: str = "lsp_lab") -> Iterator[str]:
    """A new, empty PostgreSQL database on ``base_url``'s server for one run (its URL), dropped
    afterwards: every test or bench run starts from nothing, whatever ran on the server before."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
