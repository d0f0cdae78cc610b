"""The LSP against the lab's hub, for the swap tests: ``lsp serve`` as a process, as an operator runs it.

``lsp_app.start(**swap_settings)`` starts it on a SQLite file in the test's directory with
the lab's swap settings (``LSP_SWAP_*``) and those overrides, onboards a client (once) and
returns an ``LSPClient`` speaking signed HTTP to it. ``stop()`` stops the process (SIGTERM: the
"stopped LSP"); ``start()`` again reuses the same database and port: a restarted LSP.
``lsp_app.cli(...)`` runs the ``lsp`` command against the same settings.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.harness import LightningTestHarness
from harness.lsp_process import LspServer, OnboardedClient, free_port, lsp_cli, lsp_env
from harness.swaps import SwapClient
from lsp.client import LSPClient

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
        self.db_url = f"sqlite:///{db_path}"
        self.env = lsp_env(lab.node("hub"), self.db_url)
        self.server = LspServer(self.env, free_port(), db_path.parent / "lsp.log")
        self.creds: OnboardedClient | None = None
        self.api: LSPClient | None = None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def start(self, **swap_overrides: Any) -> LSPClient:
        self.stop()
        for key in [k for k in self.env if k.startswith("LSP_SWAP_")]:
            del self.env[key]
        for key, value in {**LAB_SWAPS, **swap_overrides}.items():
            self.env[f"LSP_SWAP_{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        self.server.start()
        if self.creds is None:
            self.creds = self.server.onboard("swapper", requestsPerMinute=10_000, monthlyVolume=10**9)
        self.api = LSPClient(self.base_url, self.creds.api_key, self.creds.api_secret)
        return self.api

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``lsp <args>`` with this LSP's settings, as an operator runs it beside the server."""
        return lsp_cli(self.env, *args)

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
            self.api = None
        self.server.stop()


@pytest.fixture
def lsp_app(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspHandle]:
    handle = LspHandle(lab, tmp_path / "lsp.db")
    try:
        yield handle
    finally:
        handle.stop()
    assert "Traceback" not in handle.server.log_text(), handle.server.log_tail(80)
