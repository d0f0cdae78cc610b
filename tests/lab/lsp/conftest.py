"""Live fixtures for the LSP: star5 (or another topology) with the LSP on the hub.

The LSP runs as a real separate process (``python -m lsp.cli serve``, configured
only through LSP_* environment variables, exactly as an operator runs it), so a
test can kill -9 it and start it again on the same database. The database is a
SQLite file in tmp_path and, when LSP_TEST_POSTGRES_URL is set (see
scripts/start-postgres.sh), a fresh PostgreSQL database per test.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.harness import LightningTestHarness
from harness.lsp_process import LspServer, OnboardedClient, free_port, lsp_env, reconcile, scratch_postgres
from harness.wait import wait_for
from lsp.client import LSPClient, websocket_url

ADMIN_KEY = "live-test-admin-key"
PG_ENV = "LSP_TEST_POSTGRES_URL"


def _fresh_postgres_db(base_url: str) -> Iterator[str]:
    with scratch_postgres(base_url, "lsp_live") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def lsp_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lsp.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is unset; start PostgreSQL with scripts/start-postgres.sh and export its URL")
    yield from _fresh_postgres_db(base)


Credentials = OnboardedClient  # what a client signs with (the lab's onboarding result)


@dataclass
class LiveLsp:
    lab: LightningTestHarness
    server: LspServer
    db_url: str
    creds: Credentials
    client: LSPClient
    _clients: list[LSPClient] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def onboard(self, name: str, *, requests_per_minute: int = 100_000) -> tuple[Credentials, LSPClient]:
        creds = self.server.onboard(name, requestsPerMinute=requests_per_minute)
        client = LSPClient(self.base_url, creds.api_key, creds.api_secret)
        self._clients.append(client)
        return creds, client

    def ws_url(self, creds: Credentials | None = None) -> str:
        c = creds or self.creds
        return websocket_url(self.base_url, c.api_key, c.api_secret)

    def fund_client(self, amount_sat: int, *, payer: str = "c1", client: LSPClient | None = None) -> dict[str, Any]:
        """Credit the client's ledger the honest way: an API invoice paid from another node."""
        c = client or self.client
        inv = c.create_invoice(amount_sat, "fund")
        res = self.lab.node(payer).pay_invoice(inv["paymentRequest"], fee_limit_sat=1000)
        assert res.succeeded, res
        return wait_for(
            lambda: (got := c.get_invoice(inv["invoiceId"]))["status"] == "settled" and got,
            what="the funding invoice to be settled in the LSP",
            timeout_s="PAYMENT",
        )

    def close(self) -> None:
        for c in self._clients:
            c.close()


@pytest.fixture
def lsp_factory(lab: LightningTestHarness, lsp_db_url: str, tmp_path: Path) -> Iterator[Callable[..., LiveLsp]]:
    """Start the LSP on the hub (extra LSP_* settings as keyword arguments) and onboard one client."""
    made: list[LiveLsp] = []

    def make(**extra: str) -> LiveLsp:
        server = LspServer(lsp_env(lab.node("hub"), lsp_db_url, admin_key=ADMIN_KEY, **extra), free_port(), tmp_path / "lsp.log")
        server.start()
        live = LiveLsp(lab, server, lsp_db_url, Credentials("", "", ""), None)  # type: ignore[arg-type]
        made.append(live)
        live.creds, live.client = live.onboard("acme")
        return live

    yield make
    crashed: list[str] = []
    for live in made:
        live.close()
        live.server.stop()
        # A traceback in the service's log is a crashed request or background loop: a bug,
        # even when the test's own assertions passed.
        text_ = live.server.log_text() if live.server.log_path.exists() else ""
        if "Traceback" in text_:
            crashed.append(f"{live.server.log_path}:\n{text_[-6000:]}")
    if crashed:
        pytest.fail("the LSP logged tracebacks:\n" + "\n".join(crashed))


@pytest.fixture
def live_lsp(lsp_factory: Callable[..., LiveLsp]) -> LiveLsp:
    return lsp_factory()


def ws_events(ws: Any, want: Callable[[dict[str, Any]], bool], *, timeout_s: float = 60.0) -> dict[str, Any]:
    """Read WebSocket messages until one matches ``want``; bounded by ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            raw = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        msg = json.loads(raw)
        seen.append(msg["type"])
        if want(msg):
            return dict(msg)
    raise AssertionError(f"no matching WebSocket event within {timeout_s} s; saw {seen}")


def reconcile_now(live: LiveLsp) -> dict[str, Any]:
    """``lsp reconcile --json`` against the live LSP's database and LND, as an operator runs it."""
    return reconcile(live.server.env)
