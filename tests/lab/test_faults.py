"""Fault injection against live nodes; the same API in both runtimes
(run with --lab-runtime docker for the Docker runtime)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from harness.harness import LightningTestHarness
from harness.rpc.router import PaymentResult
from harness.wait import wait_for


def _pay(lab: LightningTestHarness, payer: str, payee: str, amount_sat: int, **kw: object) -> PaymentResult:
    invoice = lab.node(payee).add_invoice(amount_sat)
    return lab.node(payer).pay_invoice(invoice.payment_request, fee_limit_sat=1000, **kw)  # type: ignore[arg-type]


@pytest.mark.topology("line3")
def test_payment_in_flight_while_next_hop_is_paused_resolves_after_resume(lab: LightningTestHarness) -> None:
    alice, carol = lab.node("alice"), lab.node("carol")
    invoice = carol.add_invoice(10_000)
    result: list[PaymentResult] = []
    lab.pause_node("bob")
    try:
        t = threading.Thread(
            target=lambda: result.append(alice.router.pay_invoice(invoice.payment_request, timeout_s=30, fee_limit_sat=1000))
        )
        t.start()
        wait_for(
            lambda: any(p.payment_hash == invoice.payment_hash and p.status == p.IN_FLIGHT for p in alice.ln.list_payments()),
            what="alice's payment to be in flight towards the paused bob",
            timeout_s="PAYMENT",
        )
        assert t.is_alive(), "the payment finished while the next hop was frozen"
    finally:
        lab.resume_node("bob")
    t.join(timeout=120)
    assert result and result[0].status in ("SUCCEEDED", "FAILED")
    alice.wait_no_pending_htlcs()
    lab.node("bob").wait_no_pending_htlcs()
    if result[0].succeeded:
        assert carol.ln.lookup_invoice(invoice.payment_hash).amt_paid_sat == 10_000


@pytest.mark.topology("line3")
def test_restarted_and_killed_nodes_keep_channels_and_can_pay(lab: LightningTestHarness) -> None:
    before = {c.channel_point for c in lab.node("bob").list_channels()}
    lab.restart_node("bob")
    assert {c.channel_point for c in lab.node("bob").list_channels()} == before
    assert _pay(lab, "alice", "carol", 20_000).succeeded

    lab.kill_node("bob")
    lab.start_node("bob")
    assert {c.channel_point for c in lab.node("bob").list_channels(active_only=True)} == before
    assert _pay(lab, "alice", "carol", 20_000).succeeded


@pytest.mark.topology("line3")
def test_partitioned_node_goes_inactive_and_recovers(lab: LightningTestHarness) -> None:
    alice, bob = lab.node("alice"), lab.node("bob")
    peers = lab.partition("bob")
    assert sorted(peers) == ["alice", "carol"]
    wait_for(lambda: not alice.channel_with(bob).active, what="alice's channel to bob to go inactive", timeout_s=30)
    failed = _pay(lab, "alice", "carol", 5_000)
    assert failed.status == "FAILED"

    lab.heal("bob")
    assert alice.channel_with(bob).active
    assert _pay(lab, "alice", "carol", 5_000).succeeded


REORG_TOPOLOGY = str(Path(__file__).parent / "topologies" / "reorg.yaml")


@pytest.mark.topology(REORG_TOPOLOGY)
def test_one_block_reorg_under_a_just_confirmed_channel_is_survived(lab: LightningTestHarness) -> None:
    """The funding tx gets its first confirmation, that block is reorged out,
    the tx is mined again in the new branch and the channel opens there.

    (When the reorged block is older than the channel's open, LND v0.21.2
    keeps the channel but drops its edge from its own routing graph; see
    docs/BENCHMARKS.md's notes and the faults section of README.md.)
    """
    a, b = lab.node("nodea"), lab.node("nodeb")
    point = a.ln.open_channel(b.pubkey, 300_000, push_sat=50_000)
    txid = point.split(":")[0]
    lab.chain.wait_for_tx(txid)
    first = lab.mine(1)[0]
    assert lab.chain.confirmations(txid) == 1

    lab.reorg(1)
    assert first not in {lab.chain.block_hash(h) for h in range(lab.chain.height() - 3, lab.chain.height() + 1)}
    assert lab.chain.confirmations(txid) >= 1, "the funding tx was not mined again in the new branch"
    lab.mine(2)
    a.wait_can_send_over(point)
    reorged = next(c for c in a.list_channels() if c.channel_point == point)
    invoice = b.add_invoice(1_000)
    res = a.router.pay_invoice(invoice.payment_request, outgoing_chan_ids=[reorged.chan_id])
    assert res.succeeded, res.failure_reason
    a.wait_no_pending_htlcs()


@pytest.mark.topology("pair")
def test_fee_estimate_change_reaches_lnd(lab: LightningTestHarness) -> None:
    node = lab.node("nodea")
    lab.set_fees({"1": 80_000, "6": 40_000, "144": 8_000})
    # sat/kvB / 4 = sat/kw
    wait_for(lambda: node.wallet.estimate_fee_sat_per_kw(6) == 10_000, what="LND to read the new fee", timeout_s=30)
    lab.set_fees({"1": 4_000, "6": 2_000, "144": 1_012})
    wait_for(lambda: node.wallet.estimate_fee_sat_per_kw(6) == 500, what="LND to read the lower fee", timeout_s=30)


@pytest.mark.topology("pair")
def test_auto_mining_advances_the_chain_and_nodes_follow(lab: LightningTestHarness) -> None:
    start, _ = lab.chain.tip()
    with lab.faults.auto_mine(0.2):
        wait_for(lambda: lab.chain.tip()[0] >= start + 3, what="three auto-mined blocks", timeout_s=30)
    height, block_hash = lab.chain.tip()
    info = lab.node("nodea").wait_synced((height, block_hash))
    assert info.block_height == height
