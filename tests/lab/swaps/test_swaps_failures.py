"""Swap failure paths on a live network: refunds after the timeout, wrong lockup amounts, a restarted LSP,
a lockup found by rescan."""

from __future__ import annotations

import threading

import pytest

from harness.chain import RpcError
from harness.harness import LightningTestHarness
from harness.swaps import SwapClient, find_output, lockup_of, wait_claim_broadcast, wait_state
from harness.wait import wait_for

from .conftest import SWAPS_TOPOLOGY, LspHandle, swap_in

pytestmark = pytest.mark.topology(SWAPS_TOPOLOGY, shared=True)


def _mine_to(lab: LightningTestHarness, height: int) -> None:
    tip = lab.chain.height()
    if tip < height:
        lab.mine(height - tip)


@pytest.mark.parametrize("delta", [-1000, +1000], ids=["underfunded", "overfunded"])
def test_wrong_lockup_amount_is_refused_and_the_client_refunds(
    lab: LightningTestHarness, lsp_app: LspHandle, delta: int
) -> None:
    api = lsp_app.start()
    client, swap, inv = swap_in(lab, api, 30_000)
    lockup = client.fund(lab, swap, swap["onchainAmount"] + delta)
    lab.mine(1)
    failed = wait_state(api, swap["swapId"], "lockup_failed", timeout_s=60)
    assert str(swap["onchainAmount"]) in failed["failureReason"]
    assert lab.node("c1").ln.lookup_invoice(inv.payment_hash).amt_paid_sat == 0  # the LSP did not pay

    _mine_to(lab, swap["timeoutHeight"])
    dest = lab.node("c1").new_address()
    refund = client.refund(lab, swap, lockup, dest)
    lab.mine(1)
    assert find_output(lab, refund.txid, dest).value_sat == lockup.value_sat - refund.fee_sat


def test_refund_is_not_mined_before_the_timeout(lab: LightningTestHarness, lsp_app: LspHandle) -> None:
    api = lsp_app.start()
    client, swap, _ = swap_in(lab, api, 30_000)
    lockup = client.fund(lab, swap, swap["onchainAmount"] - 1)
    lab.mine(1)
    wait_state(api, swap["swapId"], "lockup_failed", timeout_s=60)
    dest = lab.node("c1").new_address()
    if lab.chain.kind == "bitcoind":
        # Bitcoin Core refuses a transaction whose locktime is still in the future at the door.
        with pytest.raises(RpcError, match="non-final"):
            client.refund(lab, swap, lockup, dest)
        _mine_to(lab, swap["timeoutHeight"])
        refund = client.refund(lab, swap, lockup, dest)
    else:
        # btcd on regtest relays non-final transactions (relaynonstd), so the refund enters its mempool
        # early; consensus still keeps it out of every block below the timeout height.
        refund = client.refund(lab, swap, lockup, dest)
        lab.mine(2)
        assert not lab.chain.raw_tx(refund.txid).get("confirmations")
        _mine_to(lab, swap["timeoutHeight"])
    lab.mine(1)
    assert lab.chain.confirmations(refund.txid) >= 1
    assert lab.chain.height() - lab.chain.confirmations(refund.txid) + 1 > swap["timeoutHeight"]


def test_lsp_never_pays_and_the_client_refunds_after_the_timeout(lab: LightningTestHarness, lsp_app: LspHandle) -> None:
    # The LSP is down for the whole swap (its loop never runs): the client's only way out is the refund path.
    api = lsp_app.start(watch=False)
    client, swap, _ = swap_in(lab, api, 30_000)
    lockup = client.fund(lab, swap)
    _mine_to(lab, swap["timeoutHeight"])
    dest = lab.node("c1").new_address()
    refund = client.refund(lab, swap, lockup, dest)
    lab.mine(1)
    assert find_output(lab, refund.txid, dest).value_sat == swap["onchainAmount"] - refund.fee_sat


def test_client_never_claims_and_the_lsp_refunds_and_cancels_the_invoice(
    lab: LightningTestHarness, lsp_app: LspHandle
) -> None:
    api = lsp_app.start()
    c2, hub = lab.node("c2"), lab.node("hub")
    client = SwapClient()
    _, payment_hash = client.new_preimage()
    c2_before = c2.channel_with(hub).local_balance_sat
    swap = api.request(
        "POST",
        "/api/swaps/reverse",
        json={"amount": 40_000, "paymentHash": payment_hash, "claimPublicKey": client.pubkey},
    )
    payer = threading.Thread(target=lambda: c2.pay_invoice(swap["invoice"], timeout_s=120), daemon=True)
    payer.start()
    locked = wait_state(api, swap["swapId"], {"lockup_mempool", "lockup_confirmed"}, timeout_s=60)
    _mine_to(lab, swap["timeoutHeight"])
    pending = wait_state(api, swap["swapId"], "refund_pending", timeout_s=60)
    lab.mine(1)
    done = wait_state(api, swap["swapId"], "refunded", timeout_s=60)
    payer.join(timeout=60)

    refund = lab.chain.raw_tx(done["spendTxid"])
    assert refund["vin"][0]["txid"] == lockup_of(locked).txid
    assert pending["spendTxid"] == done["spendTxid"]
    # The hold invoice was canceled: c2's HTLC came back, its channel balance is whole again.
    wait_for(lambda: c2.channel_with(hub).local_balance_sat == c2_before, what="c2's HTLC to be returned", timeout_s=30)


def test_lsp_stopped_after_paying_claims_when_restarted(lab: LightningTestHarness, lsp_app: LspHandle) -> None:
    api = lsp_app.start(halt_at_state="invoice_paid")
    client, swap, _ = swap_in(lab, api, 25_000)
    client.fund(lab, swap)
    lab.mine(1)
    wait_state(api, swap["swapId"], "invoice_paid", timeout_s=60)
    lsp_app.stop()  # the LSP dies holding the preimage, the lockup unclaimed

    api = lsp_app.start()
    wait_claim_broadcast(lab, wait_state(api, swap["swapId"], "claim_pending", timeout_s=60))
    lab.mine(1)
    done = wait_state(api, swap["swapId"], "claimed", timeout_s=60)
    assert lab.chain.raw_tx(done["spendTxid"])["vin"][0]["txid"] == done["lockupTxid"]
    assert [e["toState"] for e in done["events"]].count("claim_pending") == 1


def test_missed_lockup_is_found_by_rescan(
    lab: LightningTestHarness, lsp_app: LspHandle
) -> None:
    api = lsp_app.start(watch=False)  # the LSP is not watching when the lockup confirms
    client, swap, _ = swap_in(lab, api, 20_000)
    start = lab.chain.height()
    lockup = client.fund(lab, swap)
    lab.mine(2)
    assert api.request("GET", f"/api/swaps/{swap['swapId']}")["state"] == "created"
    lsp_app.stop()

    result = lsp_app.cli("swaps", "rescan", "--from-height", str(start))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"lockup {lockup.txid} recorded, state lockup_confirmed" in result.stdout

    api = lsp_app.start()  # it may pay and claim at once: the lockup is confirmed already
    lab.mine(1)
    reached = wait_state(api, swap["swapId"], {"claim_pending", "claimed"}, timeout_s=60)
    if reached["state"] == "claim_pending":
        wait_claim_broadcast(lab, reached)
        lab.mine(1)
    wait_state(api, swap["swapId"], "claimed", timeout_s=60)


def test_failed_invoice_payment_leaves_the_lockup_to_the_client(lab: LightningTestHarness, lsp_app: LspHandle) -> None:
    api = lsp_app.start()
    client, swap, inv = swap_in(lab, api, 22_000)
    lab.node("c1").invoices.cancel(inv.payment_hash)  # the client's invoice can no longer be paid
    lockup = client.fund(lab, swap)
    lab.mine(1)
    failed = wait_state(api, swap["swapId"], "invoice_failed", timeout_s=90)
    assert failed["failureReason"]
    assert failed["spendTxid"] is None  # the LSP never claims without the preimage

    _mine_to(lab, swap["timeoutHeight"])
    dest = lab.node("c1").new_address()
    refund = client.refund(lab, swap, lockup, dest)
    lab.mine(1)
    assert find_output(lab, refund.txid, dest).value_sat == lockup.value_sat - refund.fee_sat


def test_no_lockup_before_the_deadline_expires_and_a_late_one_is_refundable(
    lab: LightningTestHarness, lsp_app: LspHandle
) -> None:
    api = lsp_app.start()
    client, swap, _ = swap_in(lab, api, 21_000)
    pay_deadline = swap["timeoutHeight"] - 6
    _mine_to(lab, pay_deadline)
    wait_state(api, swap["swapId"], "expired", timeout_s=60)

    # The client funds anyway, too late: a rescan records it as refundable, the LSP never pays.
    start = lab.chain.height()
    lockup = client.fund(lab, swap)
    lab.mine(1)
    # The operator's rescan, beside the running LSP.
    result = lsp_app.cli("swaps", "rescan", "--from-height", str(start))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"swap {swap['swapId']}: lockup {lockup.txid} recorded, state lockup_failed" in result.stdout
    assert "1 lockup(s) recovered" in result.stdout
    assert "after the swap expired" in api.request("GET", f"/api/swaps/{swap['swapId']}")["failureReason"]
    _mine_to(lab, swap["timeoutHeight"])
    dest = lab.node("c1").new_address()
    refund = client.refund(lab, swap, lockup, dest)
    lab.mine(1)
    assert find_output(lab, refund.txid, dest).value_sat == lockup.value_sat - refund.fee_sat


def test_client_claims_while_the_lsp_is_down_and_the_restarted_lsp_settles(
    lab: LightningTestHarness, lsp_app: LspHandle
) -> None:
    api = lsp_app.start()
    c2 = lab.node("c2")
    client = SwapClient()
    preimage, payment_hash = client.new_preimage()
    swap = api.request(
        "POST",
        "/api/swaps/reverse",
        json={"amount": 35_000, "paymentHash": payment_hash, "claimPublicKey": client.pubkey},
    )
    payer = threading.Thread(target=lambda: c2.pay_invoice(swap["invoice"], timeout_s=120), daemon=True)
    payer.start()
    locked = wait_state(api, swap["swapId"], {"lockup_mempool", "lockup_confirmed"}, timeout_s=60)
    lsp_app.stop()

    client.claim(lab, locked, lockup_of(locked), preimage, c2.new_address())
    lab.mine(2)  # the claim is buried before the LSP comes back

    api = lsp_app.start()
    done = wait_state(api, swap["swapId"], "invoice_settled", timeout_s=60)
    payer.join(timeout=60)
    assert done["preimage"] == preimage
    assert c2.router.track(payment_hash).succeeded  # the client paid exactly once, and it settled
