"""The LSP app in-process against the lab's hub, for the swap tests.

``lsp_app.start(**swap_settings)`` builds ``create_app`` on a SQLite file in the
test's directory, runs its lifespan (LND client + swap loop) inside a
TestClient, onboards a client and returns an ``LSPClient`` speaking signed
HTTP to it. ``stop()`` ends the lifespan (the "killed LSP"); ``start()`` again
reuses the same database: a restarted LSP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from harness.harness import LightningTestHarness
from harness.swaps import SwapClient
from lsp.app import create_app
from lsp.client import LSPClient
from lsp.config import DEMO_ADMIN_KEY, Settings
from lsp.db import migrate
from lsp.swaps.config import SwapSettings

# swaps3 (hub + c1 + c2 over private channels) starts in seconds: no gossip to wait for. The tests only
# use hub, c1 and c2, so LAB_SWAPS_TOPOLOGY=star5 runs them against the star5 hub unchanged.
SWAPS_TOPOLOGY = os.environ.get("LAB_SWAPS_TOPOLOGY", "swaps3")

LAB_SWAPS = {
    "poll_s": 0.5,
    "submarine_timeout_blocks": 30,
    "reverse_timeout_blocks": 20,
    "claim_margin_blocks": 6,
    "invoice_cltv_margin_blocks": 24,
    "confirmations": 1,
}


def swap_in(lab: LightningTestHarness, api: Any, amount: int, memo: str = "swap in") -> tuple[SwapClient, dict[str, Any], Any]:
    """A swap-in of ``amount`` sat for an invoice of c1's, checked by the client helper: (client, swap, invoice)."""
    client = SwapClient()
    inv = lab.node("c1").add_invoice(amount, memo=memo)
    swap = api.request(
        "POST", "/api/swaps/submarine", json={"invoice": inv.payment_request, "refundPublicKey": client.pubkey}
    )
    client.verify(swap, payment_hash=inv.payment_hash)
    return client, swap, inv


class LspHandle:
    def __init__(self, lab: LightningTestHarness, db_path: Path):
        self.lab = lab
        self.url = f"sqlite:///{db_path}"
        migrate.upgrade(self.url)
        hub = lab.node("hub")
        self.settings = Settings(
            database_url=self.url,
            lnd_host=f"127.0.0.1:{hub.config.rpc_port}",
            lnd_tls_cert_path=hub.config.tls_cert,
            lnd_macaroon_path=hub.config.macaroon,
        )
        self._http: TestClient | None = None
        self.creds: tuple[str, str] | None = None
        self.api: LSPClient | None = None
        self.app: Any = None

    def start(self, **swap_overrides: Any) -> LSPClient:
        self.app = create_app(self.settings)
        self.app.state.ctx.settings.swap = SwapSettings(**{**LAB_SWAPS, **swap_overrides})
        self._http = TestClient(self.app, base_url="http://lsp")
        self._http.__enter__()
        if self.creds is None:
            r = self._http.post(
                "/api/enterprise/onboard",
                headers={"X-Admin-Key": DEMO_ADMIN_KEY},
                json={"name": "swapper", "apiLimits": {"requestsPerMinute": 10_000, "monthlyVolume": 10**9}},
            )
            assert r.status_code == 201, r.text
            self.creds = (r.json()["apiKey"], r.json()["apiSecret"])
        self.api = LSPClient("http://lsp", *self.creds, http=self._http)
        return self.api

    def portal_call(self, fn: Any, *args: Any) -> Any:
        """Run an async service method on the app's own event loop (where its LND client lives)."""
        assert self._http is not None and self._http.portal is not None
        return self._http.portal.call(fn, *args)

    @property
    def http(self) -> TestClient:
        assert self._http is not None, "start() the LSP first"
        return self._http

    def stop(self) -> None:
        if self._http is not None:
            self._http.__exit__(None, None, None)
            self._http = None


@pytest.fixture
def lsp_app(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspHandle]:
    handle = LspHandle(lab, tmp_path / "lsp.db")
    try:
        yield handle
    finally:
        handle.stop()
