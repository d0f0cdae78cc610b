"""Both swap directions settle on a live star5 network; balances move by the amount minus the quoted fees."""

from __future__ import annotations

import threading

import pytest

from harness.harness import LightningTestHarness
from harness.swaps import SwapClient, find_output, lockup_of, wait_claim_broadcast, wait_state
from harness.wait import wait_for

from .conftest import SWAPS_TOPOLOGY, LspHandle

pytestmark = pytest.mark.topology(SWAPS_TOPOLOGY, shared=True)


def test_swap_in_pays_the_invoice_and_claims_the_lockup(lab: LightningTestHarness, lsp_app: LspHandle) -> None:
    api = lsp_app.start()
    c1, hub = lab.node("c1"), lab.node("hub")
    amount = 50_000
    quote = api.request("GET", "/api/swaps/quote", params={"kind": "submarine", "amount": amount})
    client = SwapClient()
    inv = c1.add_invoice(amount, memo="swap in")
    c1_local_before = c1.channel_with(hub).local_balance_sat
    hub_local_before = hub.channel_with(c1).local_balance_sat

    swap = api.request(
        "POST", "/api/swaps/submarine", json={"invoice": inv.payment_request, "refundPublicKey": client.pubkey}
    )
    client.verify(swap, payment_hash=inv.payment_hash)
    assert swap["state"] == "created"
    assert swap["onchainAmount"] == amount + quote["serviceFee"] + quote["minerFee"]
    assert swap["serviceFee"] == 100 + 25  # seed: 100 sat per transaction + 500 ppm

    lockup = client.fund(lab, swap)
    lab.mine(1)
    done = wait_state(api, swap["swapId"], "claim_pending", timeout_s=60)
    wait_claim_broadcast(lab, done)
    lab.mine(1)
    done = wait_state(api, swap["swapId"], "claimed", timeout_s=60)

    # The client's channel balance grew by exactly the invoice; the lockup held exactly the quote.
    assert c1.channel_with(hub).local_balance_sat - c1_local_before == amount
    assert lockup.value_sat == swap["onchainAmount"]
    claim = lab.chain.raw_tx(done["spendTxid"])
    assert claim["vin"][0]["txid"] == lockup.txid
    claimed_sat = round(float(claim["vout"][0]["value"]) * 100_000_000)
    # To the sat, on both sides: the claim pays the lockup minus the fee the LSP reports; the LSP's
    # channel paid exactly the invoice plus the routing fee it reports (0 over its own channel).
    assert len(claim["vout"]) == 1 and claimed_sat == lockup.value_sat - done["spendFee"]
    assert done["paymentFee"] == 0
    assert hub_local_before - hub.channel_with(c1).local_balance_sat == amount + done["paymentFee"]
    # What the LSP keeps: the quoted fees, less what the claim really cost (within the quote's margin).
    kept = claimed_sat - amount - done["paymentFee"]
    assert kept == quote["serviceFee"] + quote["minerFee"] - done["spendFee"]
    assert 0 < done["spendFee"] <= quote["minerFee"] * 2
    assert done["preimage"] is not None
    assert [e["toState"] for e in done["events"]] == [
        "lockup_confirmed",
        "invoice_pending",
        "invoice_paid",
        "claim_pending",
        "claimed",
    ]


def test_reverse_swap_locks_on_chain_and_settles_when_the_client_claims(
    lab: LightningTestHarness, lsp_app: LspHandle
) -> None:
    api = lsp_app.start()
    c2, hub = lab.node("c2"), lab.node("hub")
    amount = 60_000
    client = SwapClient()
    preimage, payment_hash = client.new_preimage()
    c2_local_before = c2.channel_with(hub).local_balance_sat
    hub_local_before = hub.channel_with(c2).local_balance_sat

    swap = api.request(
        "POST",
        "/api/swaps/reverse",
        json={"amount": amount, "paymentHash": payment_hash, "claimPublicKey": client.pubkey},
    )
    client.verify(swap, payment_hash=payment_hash)
    assert swap["onchainAmount"] == amount - swap["serviceFee"] - swap["minerFee"]

    payer = threading.Thread(target=lambda: c2.pay_invoice(swap["invoice"], timeout_s=120), daemon=True)
    payer.start()
    locked = wait_state(api, swap["swapId"], {"lockup_mempool", "lockup_confirmed"}, timeout_s=60)
    lockup = lockup_of(locked)
    assert lockup.value_sat == swap["onchainAmount"]

    dest = c2.new_address()
    claim = client.claim(lab, locked, lockup, preimage, dest)
    lab.mine(1)
    done = wait_state(api, swap["swapId"], "invoice_settled", timeout_s=60)
    payer.join(timeout=60)

    assert done["preimage"] == preimage
    out = find_output(lab, claim.txid, dest)
    assert out.value_sat == swap["onchainAmount"] - claim.fee_sat
    wait_for(
        lambda: c2_local_before - c2.channel_with(hub).local_balance_sat == amount,
        what="c2's channel balance to drop by the invoice amount",
        timeout_s=30,
    )
    # The LSP's side of the same channel grew by exactly the invoice (the hold invoice settled).
    assert hub.channel_with(c2).local_balance_sat - hub_local_before == amount
    # A second claim of the same output is refused by the chain: the first one is final.
    with pytest.raises(Exception, match=r"(?i)spent|missing|orphan|already"):
        client.claim(lab, locked, lockup, preimage, c2.new_address(), sat_per_vb=5)
