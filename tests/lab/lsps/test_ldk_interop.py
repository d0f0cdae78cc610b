"""Our LSP (LSPS1, LSPS2 on stock LND) against LDK's own clients: ldk-node 0.7.1 with
lightning-liquidity 0.2.7, which nobody here wrote, running in the lab's LDK driver.

``wallet`` lists the LSP in ldk-node's ``trusted_peers_no_reserve``; ``strict`` runs
ldk-node's defaults (an inbound anchor channel needs 25,000 sat of its own on-chain
reserve). Neither starts with coins or channels. Expected fees come from the
``opening_fee_params`` the LSP served, through the bLIP-52 formula written out here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.blip52 import cheapest_fee_msat
from harness.harness import LightningTestHarness
from harness.ldk import LdkError, LdkNode
from harness.lsps_client import pay_in_parts, served_menu
from harness.lsps_lsp import LAB_MENU, LspsRunner
from harness.wait import wait_for

pytestmark = pytest.mark.topology("ldk-lsp", shared=True)

# Our LSP's price list in these tests: two entries, the second costlier on both components (bLIP-52).
MENU = [{**line, "max_payment_size_msat": 500_000_000} for line in LAB_MENU]
# ldk-node's default anchor reserve per channel (AnchorChannelsConfig::per_channel_reserve_sats).
LDK_ANCHOR_RESERVE_SAT = 25_000
# What the LSP's LND logs when a JIT open is refused and the HTLC is failed back on purpose.
FAILED_BACK = ("UnknownNextPeer", "Unable to retrieve channel by id: edge not found", "unable to cancel reservation",
               "Channel request rejected", "insufficient available on-chain reserves", "unable to open channel")


def reset_mission_control(lab: LightningTestHarness) -> None:
    payer = lab.node("payer")
    payer.router.reset_mission_control()


@pytest.fixture(autouse=True)
def _quiet_chain(lab: LightningTestHarness) -> Iterator[None]:
    reset_mission_control(lab)
    if lab.chain.mempool():
        lab.mine(1)
    yield
    if lab.chain.mempool():
        lab.mine(1)


@pytest.fixture
def lsp(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspsRunner]:
    lab.node("payer").connect(lab.node("lsp"))
    with LspsRunner(lab.node("lsp"), tmp_path / "lsps.db", menu=MENU, probe=lab.node("payer")) as runner:
        yield runner


@pytest.fixture
def menu(lab: LightningTestHarness, lsp: LspsRunner) -> list[dict[str, Any]]:
    """The opening_fee_params menu as the LSP serves it on the wire (asked by the payer's LND)."""
    lab.node("payer").connect(lab.node("lsp"))
    return served_menu(lab.node("payer"), lab.node("lsp").pubkey)


def lsp_channels(lab: LightningTestHarness, ldk: LdkNode) -> list[str]:
    return [c.channel_point or "" for c in ldk.list_channels() if c.counterparty_node_id == lab.node("lsp").pubkey]


def test_lsps2_jit_channel_to_ldk_client_deducts_exactly_the_blip52_fee(
    lab: LightningTestHarness, lsp: LspsRunner, menu: list[dict[str, Any]]
) -> None:
    wallet = lab.ldk("wallet")
    amount_msat = 50_000_000
    fee_msat = cheapest_fee_msat(menu, amount_msat)
    assert fee_msat == 2_000_000  # the first entry's minimum: 0.5% of 50,000 sat is below it

    inv = wallet.jit_invoice(amount_msat, max_total_lsp_fee_msat=fee_msat)
    paid = lab.node("payer").pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=60)

    assert paid.succeeded, (paid.failure_reason, paid.failures)
    assert paid.value_sat * 1000 == amount_msat and paid.fee_msat == 0
    got = wallet.wait_received(inv.payment_hash)
    assert got.amount_msat == amount_msat - fee_msat
    assert got.counterparty_skimmed_fee_msat == fee_msat
    assert got.kind == "bolt11_jit"
    [cp] = lsp_channels(lab, wallet)
    ch = wallet.channel(cp)
    assert ch is not None and ch.is_usable and not ch.is_outbound
    assert ch.confirmations == 0  # zero-conf: usable before its funding confirmed

    # A second payment rides the channel just opened: no new channel, nothing skimmed.
    second = wallet.add_invoice(amount_msat=10_000_000, memo="second")
    paid2 = lab.node("payer").pay_invoice(second.payment_request, fee_limit_sat=10, timeout_s=60)
    assert paid2.succeeded, (paid2.failure_reason, paid2.failures)
    got2 = wallet.wait_received(second.payment_hash)
    assert got2.amount_msat == 10_000_000
    assert lsp_channels(lab, wallet) == [cp]


def test_lsps2_mpp_payment_to_an_ldk_jit_invoice_opens_one_channel(
    lab: LightningTestHarness, lsp: LspsRunner, menu: list[dict[str, Any]]
) -> None:
    wallet = lab.ldk("wallet")
    before = set(lsp_channels(lab, wallet))
    amount_msat = 120_000_000
    fee_msat = cheapest_fee_msat(menu, amount_msat)
    inv = wallet.jit_invoice(amount_msat, max_total_lsp_fee_msat=fee_msat)

    # The payer splits it: at most 50,000 sat per part, so at least three HTLCs reach the LSP.
    res = pay_in_parts(lab.node("payer"), inv.payment_request, shard_msat=50_000_000, timeout_s=90)
    assert res.succeeded, (res.failure_reason, res.failures)
    assert res.attempts >= 3
    got = wallet.wait_received(inv.payment_hash)
    assert got.amount_msat == amount_msat - fee_msat
    new = set(lsp_channels(lab, wallet)) - before
    assert len(new) == 1, new


def test_lsps2_variable_amount_ldk_invoice_is_refused_by_ldk_itself(
    lab: LightningTestHarness, lsp: LspsRunner, menu: list[dict[str, Any]]
) -> None:
    """A disagreement with LDK, written down in docs/LSPS.md: for a variable-amount JIT invoice
    ldk-node 0.7.1 caps the opening fee at the offer's ``proportional`` applied to the amount it
    *receives* (after the fee), ignoring ``min_fee_msat``; bLIP-52 charges
    max(min_fee_msat, ceil(payment_size_msat * proportional / 1e6)) on the payment size. The LSP
    charges the bLIP's fee, so LDK fails the forwarded HTLC back and the payer keeps its money."""
    wallet = lab.ldk("wallet")
    inv = wallet.jit_invoice(None, max_proportional_lsp_fee_ppm=10_000)
    amount_sat = 450_000  # large enough that the proportional part, not min_fee_msat, sets the fee
    fee_msat = cheapest_fee_msat(menu, amount_sat * 1000)
    payer = lab.node("payer")
    before = payer.balances().channel_local_sat

    paid = payer.pay_invoice(inv.payment_request, amount_sat=amount_sat, fee_limit_sat=0, timeout_s=60)

    assert paid.status == "FAILED"
    assert paid.failures[-1] == ("INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS", 2), paid.failures
    assert wallet.received(inv.payment_hash) is None
    payer.wait_no_pending_htlcs()
    assert payer.balances().channel_local_sat == before
    # LDK saw exactly the bLIP-52 fee withheld, and its own limit below it.
    log = wallet.config.log_path.read_text()
    refusal = f"Refusing inbound payment with hash {inv.payment_hash} as the counterparty-withheld fee of {fee_msat}msat"
    assert refusal in log
    lab.expect_log_errors(*FAILED_BACK)


def test_ldk_refuses_to_buy_above_its_fee_limit_and_nothing_is_opened(
    lab: LightningTestHarness, lsp: LspsRunner, menu: list[dict[str, Any]]
) -> None:
    wallet = lab.ldk("wallet")
    before = lsp_channels(lab, wallet)
    fee_msat = cheapest_fee_msat(menu, 50_000_000)
    with pytest.raises(LdkError):
        wallet.jit_invoice(50_000_000, max_total_lsp_fee_msat=fee_msat - 1)
    assert lsp_channels(lab, wallet) == before


@pytest.mark.parametrize("case", ["below the opening fee", "above max_payment_size_msat"])
def test_variable_amount_payment_the_lsp_cannot_take_is_failed_back_uncharged(
    lab: LightningTestHarness, lsp: LspsRunner, menu: list[dict[str, Any]], case: str
) -> None:
    wallet = lab.ldk("wallet")
    before = lsp_channels(lab, wallet)
    inv = wallet.jit_invoice(None, max_proportional_lsp_fee_ppm=10_000)
    # LDK bought the cheapest entry: the first (bLIP-52 orders the menu by cost).
    entry = menu[0]
    if case == "below the opening fee":
        amount_sat = int(str(entry["min_fee_msat"])) // 1000  # the fee would take all of it
    else:
        amount_sat = int(str(entry["max_payment_size_msat"])) // 1000 + 1_000
    payer = lab.node("payer")
    balance = payer.balances().channel_local_sat

    paid = payer.pay_invoice(inv.payment_request, amount_sat=amount_sat, fee_limit_sat=0, timeout_s=30)

    assert paid.status == "FAILED"
    # bLIP-52: a payment that cannot pay the opening fee, or outside [min_payment_size_msat,
    # max_payment_size_msat], fails with unknown_next_peer, at the LSP.
    assert paid.failures[0] == ("UNKNOWN_NEXT_PEER", 1), paid.failures
    assert lsp_channels(lab, wallet) == before
    assert wallet.received(inv.payment_hash) is None
    payer.wait_no_pending_htlcs()
    assert payer.balances().channel_local_sat == balance
    lab.expect_log_errors(*FAILED_BACK)


def test_lsps2_payment_after_valid_until_is_failed_back_uncharged(
    lab: LightningTestHarness, tmp_path: Path
) -> None:
    short = [{**MENU[0], "valid_for_s": 4}]
    lab.node("payer").connect(lab.node("lsp"))
    with LspsRunner(lab.node("lsp"), tmp_path / "short.db", menu=short, probe=lab.node("payer")):
        wallet = lab.ldk("wallet")
        before = lsp_channels(lab, wallet)
        inv = wallet.jit_invoice(30_000_000, max_total_lsp_fee_msat=2_000_000)
        # The offer LDK bought ends no later than one served after it: wait until that has passed.
        lab.node("payer").connect(lab.node("lsp"))
        ends = datetime.fromisoformat(served_menu(lab.node("payer"), lab.node("lsp").pubkey)[0]["valid_until"])
        wait_for(lambda: datetime.now(UTC) > ends, what="the offer's valid_until to pass", timeout_s=10)

        paid = lab.node("payer").pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=30)

        assert paid.status == "FAILED"
        assert paid.failures[0] == ("UNKNOWN_NEXT_PEER", 1), paid.failures
        assert lsp_channels(lab, wallet) == before
    lab.expect_log_errors(*FAILED_BACK)


def test_ldk_default_config_refuses_the_lsps_anchor_channel_until_it_holds_the_reserve(
    lab: LightningTestHarness, lsp: LspsRunner, menu: list[dict[str, Any]]
) -> None:
    """ldk-node's defaults need 25,000 sat on chain to accept an anchor channel from a peer it does
    not trust: the JIT open is refused, the payer's HTLC fails back uncharged. With the reserve on
    chain the same client buys the same way (docs/LSPS.md: what integrators must configure)."""
    strict = lab.ldk("strict")
    payer = lab.node("payer")
    inv = strict.jit_invoice(40_000_000, max_total_lsp_fee_msat=3_000_000)
    paid = payer.pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=30)
    assert paid.status == "FAILED"
    # The open failed: bLIP-52 releases the HTLC with temporary_channel_failure, from the LSP.
    assert paid.failures[0] == ("TEMPORARY_CHANNEL_FAILURE", 1), paid.failures
    assert lsp_channels(lab, strict) == []
    assert strict.received(inv.payment_hash) is None
    lab.expect_log_errors(*FAILED_BACK)

    lab.send_onchain(strict.new_address(), LDK_ANCHOR_RESERVE_SAT + 5_000)
    wait_for(lambda: strict.spendable_onchain_sat() >= LDK_ANCHOR_RESERVE_SAT, what="strict's reserve to confirm",
             timeout_s="WALLET_BALANCE")
    fee_msat = cheapest_fee_msat(menu, 40_000_000)
    inv2 = strict.jit_invoice(40_000_000, max_total_lsp_fee_msat=fee_msat)
    reset_mission_control(lab)  # the payer learnt from the failure above to avoid the LSP's next hop
    paid2 = payer.pay_invoice(inv2.payment_request, fee_limit_sat=0, timeout_s=60)
    assert paid2.succeeded, (paid2.failure_reason, paid2.failures)
    assert strict.wait_received(inv2.payment_hash).amount_msat == 40_000_000 - fee_msat


def test_lsps1_order_from_ldk_paid_by_lightning_opens_exactly_the_channel_ordered(
    lab: LightningTestHarness, lsp: LspsRunner
) -> None:
    wallet = lab.ldk("wallet")
    before = set(lsp_channels(lab, wallet))
    order = wallet.lsps1_request(lsp_balance_sat=400_000, client_balance_sat=0, announce_channel=False)
    bolt11 = order["payment"]["bolt11"]
    # bLIP-51: amounts are strings; this LSP's fee is 2,000 sat + 0.5% of the LSP balance (docs/LSPS.md).
    assert (bolt11["fee_total_sat"], bolt11["order_total_sat"]) == ("4000", "4000"), bolt11
    assert order["payment"]["onchain"]["min_fee_for_0conf"] >= 253

    paid = lab.node("payer").pay_invoice(bolt11["invoice"], fee_limit_sat=0, timeout_s=60)
    assert paid.succeeded, (paid.failure_reason, paid.failures)

    def completed() -> dict[str, object] | None:
        o = wallet.lsps1_status(order["order_id"])
        return o if o["channel"] is not None else None

    done = wait_for(completed, what="LDK to see the order's channel", timeout_s="CHANNEL_OPEN")
    [cp] = set(lsp_channels(lab, wallet)) - before
    ch = wallet.channel(cp)
    assert ch is not None
    assert ch.capacity_sat == 400_000 and ch.outbound_capacity_msat < 1000 * 1000 and not ch.is_announced
    assert done["channel"]["funding_outpoint"] == cp  # type: ignore[index]
    lab.mine(1)
    wallet.wait_can_send_over(cp)


def _fund_ldk(lab: LightningTestHarness, ldk: LdkNode, sat: int) -> None:
    before = ldk.spendable_onchain_sat()
    lab.send_onchain(ldk.new_address(), sat)  # and mines the block
    wait_for(lambda: ldk.spendable_onchain_sat() >= before + sat, what=f"{ldk.name}'s coins to confirm",
             timeout_s="WALLET_BALANCE")


def test_lsps1_order_from_ldk_paid_on_chain_by_ldk_opens_the_channel(lab: LightningTestHarness, lsp: LspsRunner) -> None:
    wallet = lab.ldk("wallet")
    _fund_ldk(lab, wallet, 50_000)
    before = set(lsp_channels(lab, wallet))
    order = wallet.lsps1_request(lsp_balance_sat=300_000, client_balance_sat=0)
    onchain = order["payment"]["onchain"]
    # ldk-node always gives a refund address, so bLIP-51 lets the LSP offer on-chain payment.
    assert onchain["refund_onchain_address"] and onchain["state"] == "EXPECT_PAYMENT"
    assert onchain["order_total_sat"] == "3500"  # 2,000 sat + 0.5% of 300,000 (docs/LSPS.md)

    wallet.call("sendonchain", address=onchain["address"], amount_sat=int(onchain["order_total_sat"]))
    lab.chain.wait_mempool(1)
    lab.mine(1)  # min_onchain_payment_confirmations: 1

    def with_channel() -> dict[str, object] | None:
        o = wallet.lsps1_status(order["order_id"])
        return o if o["channel"] is not None else None

    done = wait_for(with_channel, what="LDK to see the order paid on chain and its channel", timeout_s="CHANNEL_OPEN")
    assert done["payment"]["onchain"]["state"] == "PAID"  # type: ignore[index]
    assert done["payment"]["bolt11"]["state"] == "REFUNDED"  # type: ignore[index]  # the other option withdrawn
    [cp] = set(lsp_channels(lab, wallet)) - before
    assert done["channel"]["funding_outpoint"] == cp  # type: ignore[index]
    ch = wallet.channel(cp)
    assert ch is not None and ch.capacity_sat == 300_000


def test_lsps1_underpaid_ldk_order_expires_and_is_refunded_to_ldks_refund_address(
    lab: LightningTestHarness, lsp: LspsRunner
) -> None:
    lsp.restart(LSP_LSPS1_ORDER_EXPIRY_S="8")
    wallet = lab.ldk("wallet")
    _fund_ldk(lab, wallet, 50_000)
    before = set(lsp_channels(lab, wallet))
    order = wallet.lsps1_request(lsp_balance_sat=1_000_000, client_balance_sat=0)
    onchain = order["payment"]["onchain"]
    short = int(onchain["order_total_sat"]) - 1_000
    total_before = wallet.balances().onchain_confirmed_sat
    paid_txid = wallet.call("sendonchain", address=onchain["address"], amount_sat=short)["txid"]
    lab.chain.wait_mempool(1)
    lab.mine(1)

    def refunded() -> dict[str, object] | None:
        o = wallet.lsps1_status(order["order_id"])
        return o if o["payment"]["onchain"]["state"] == "REFUNDED" else None

    wait_for(refunded, what="the underpaid order to expire and be refunded", timeout_s=60)
    refund_txid = lab.chain.wait_mempool(1)[0]
    lab.mine(1)
    # The sweep pays exactly what LDK sent, minus its miner fee, to the refund address LDK gave.
    tx = lab.chain.raw_tx(refund_txid)
    [out] = tx["vout"]
    assert out["scriptPubKey"]["address"] == onchain["refund_onchain_address"]
    # It spends the one output LDK paid the order address with, nothing else.
    paid = lab.chain.raw_tx(paid_txid)
    [paid_vout] = [o["n"] for o in paid["vout"] if o["scriptPubKey"].get("address") == onchain["address"]]
    assert [(i["txid"], i["vout"]) for i in tx["vin"]] == [(paid_txid, paid_vout)]
    refund_sat = round(out["value"] * 100_000_000)
    miner_fee = short - refund_sat
    assert 0 < miner_fee <= 50 * tx["vsize"], (miner_fee, tx["vsize"])  # a sane rate, at most 50 sat/vB
    wait_for(lambda: wallet.balances().onchain_confirmed_sat >= total_before - short + refund_sat - 1_000,
             what="LDK to see its refund", timeout_s="WALLET_BALANCE")
    assert set(lsp_channels(lab, wallet)) == before
