"""Run the LSP API (``lsp serve``) against a lab node, as a subprocess.

The LSP reads only ``LSP_*`` environment variables, so the lab points it at
the node's gRPC port, TLS cert and macaroon, gives it a SQLite database in
the lab directory and a free port, waits for ``/health``, and onboards
clients through the admin endpoint. ``lsp`` never imports ``harness``; this
module is the bridge, on the lab's side.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from harness.errors import LabError
from harness.node import LndNode
from harness.runtime.ports import free_port
from harness.wait import log_tail, wait_for

ADMIN_KEY = "lab-admin-key"


@dataclass(frozen=True)
class OnboardedClient:
    client_id: str
    api_key: str
    api_secret: str


class LspServer:
    def __init__(self, node: LndNode, lab_dir: Path, *, requests_per_minute: int = 100_000):
        self.node = node
        self.dir = lab_dir / "lsp"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests_per_minute = requests_per_minute
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "lsp.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "LSP_NETWORK": "regtest",
            "LSP_LND_HOST": self.node.rpc_address,
            "LSP_LND_TLS_CERT_PATH": str(self.node.config.tls_cert),
            "LSP_LND_MACAROON_PATH": str(self.node.config.macaroon),
            "LSP_DATABASE_URL": f"sqlite:///{self.dir / 'lsp.db'}",
            "LSP_API_HOST": "127.0.0.1",
            "LSP_API_PORT": str(self.port),
            "LSP_ADMIN_API_KEY": ADMIN_KEY,
            "LSP_LOG_LEVEL": "INFO",
            "LSP_DEFAULT_REQUESTS_PER_MINUTE": str(self.requests_per_minute),
        }

    def start(self) -> LspServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lsp.cli", "serve"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
        )
        log.close()

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise LabError(f"lsp serve exited with {self.proc.returncode}:\n{log_tail(self.log_path)}")
            try:
                return bool(httpx.get(f"{self.url}/health", timeout=2).json().get("lnd") == "configured")
            except httpx.HTTPError:
                return False

        try:
            wait_for(
                healthy, what=f"the LSP API at {self.url} to answer /health", timeout_s="LSP_READY", log=self.log_path
            )
        except BaseException:
            self.stop()
            raise
        return self

    def onboard(self, name: str, client_id: str | None = None) -> OnboardedClient:
        body: dict[str, object] = {"name": name, "apiLimits": {"requestsPerMinute": self.requests_per_minute}}
        if client_id:
            body["clientId"] = client_id
        r = httpx.post(f"{self.url}/api/enterprise/onboard", json=body, headers={"X-Admin-Key": ADMIN_KEY}, timeout=30)
        if r.status_code != 201:
            raise LabError(f"onboarding {name!r} failed: {r.status_code} {r.text[:300]}")
        d = r.json()
        return OnboardedClient(d["clientId"], d["apiKey"], d["apiSecret"])

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> LspServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
