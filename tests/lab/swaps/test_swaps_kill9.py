"""kill -9 of a real ``lsp serve`` process between "paid" and "claimed" of a swap-in: the LSP holds the
preimage, the lockup is unclaimed, the process dies without any shutdown code running. Started again
on the same database, it claims the lockup exactly once.

The other swap tests run the app in-process (a stopped lifespan); this one is the operator's crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.harness import LightningTestHarness
from harness.lsp_process import LspServer, free_port, lsp_env
from harness.swaps import wait_claim_broadcast, wait_state
from lsp.client import LSPClient

from .conftest import LAB_SWAPS, SWAPS_TOPOLOGY, swap_in

pytestmark = pytest.mark.topology(SWAPS_TOPOLOGY, shared=True)
ADMIN_KEY = "swap-kill9-admin-key"


@pytest.fixture
def server(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspServer]:
    swap_env = {f"LSP_SWAP_{k.upper()}": str(v) for k, v in LAB_SWAPS.items()}
    env = lsp_env(lab.node("hub"), f"sqlite:///{tmp_path / 'lsp.db'}", admin_key=ADMIN_KEY, **swap_env)
    srv = LspServer(env, free_port(), tmp_path / "lsp.log")
    try:
        yield srv
    finally:
        srv.stop()


def test_lsp_killed_between_paid_and_claimed_claims_once_when_restarted(
    lab: LightningTestHarness, server: LspServer
) -> None:
    # The first process stops advancing swaps once the invoice is paid (the window is milliseconds
    # wide otherwise), so the kill lands with the preimage known and the lockup unclaimed.
    server.env["LSP_SWAP_HALT_AT_STATE"] = "invoice_paid"
    server.start()
    creds = server.onboard("swapper", requestsPerMinute=10_000, monthlyVolume=10**9)
    api = LSPClient(server.base_url, creds.api_key, creds.api_secret)
    try:
        client, swap, inv = swap_in(lab, api, 25_000, memo="swap in, crash")
        lockup = client.fund(lab, swap)
        lab.mine(1)
        wait_state(api, swap["swapId"], "invoice_paid", timeout_s=60)
        assert lab.node("c1").ln.lookup_invoice(inv.payment_hash).amt_paid_sat == 25_000

        server.kill9()
        # Nothing claimed before the crash: the lockup output is unspent, in blocks and mempool alike.
        assert lab.chain.rpc.call("gettxout", lockup.txid, lockup.vout, True) is not None

        del server.env["LSP_SWAP_HALT_AT_STATE"]
        server.start()
        wait_claim_broadcast(lab, wait_state(api, swap["swapId"], "claim_pending", timeout_s=60))
        lab.mine(1)
        done = wait_state(api, swap["swapId"], "claimed", timeout_s=60)
    finally:
        api.close()

    claim = lab.chain.raw_tx(done["spendTxid"])
    assert [(i["txid"], i["vout"]) for i in claim["vin"]] == [(lockup.txid, lockup.vout)]
    states = [e["toState"] for e in done["events"]]
    assert states.count("invoice_paid") == 1 and states.count("claim_pending") == 1, states
    # Paid once: c1's invoice holds exactly one payment's worth.
    assert lab.node("c1").ln.lookup_invoice(inv.payment_hash).amt_paid_sat == 25_000
    assert "===== start #2 =====" in server.log_text()
