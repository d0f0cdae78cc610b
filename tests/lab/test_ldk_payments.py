"""Payments across LND and LDK (ldk-node 0.7.1) nodes on one network: mixed4 is
alice (lnd) - bob (ldk) - carol (lnd) - dave (ldk), every channel public.

Expected routing fees come from the policies in the payer's own graph (what each
forwarding node announced), through BOLT 7's fee formula written out here.
"""

from __future__ import annotations

import pytest

from harness.harness import LightningTestHarness
from harness.rpc.lightning import PolicyView

pytestmark = pytest.mark.topology("mixed4", shared=True)


def bolt7_fee_msat(policy: PolicyView, forwarded_msat: int) -> int:
    """BOLT 7: fee_base_msat + amount_to_forward * fee_proportional_millionths / 1_000_000 (rounded down)."""
    return policy.base_fee_msat + forwarded_msat * policy.fee_rate_ppm // 1_000_000


def hop_policy(lab: LightningTestHarness, observer: str, hop: str, nxt: str) -> PolicyView:
    """The policy ``hop`` announced for its channel to ``nxt``, as ``observer``'s LND graph holds it."""
    graph = lab.node(observer).describe_graph()
    hop_pk, next_pk = lab.lightning_node(hop).pubkey, lab.lightning_node(nxt).pubkey
    for e in graph.edges:
        if {e.node1, e.node2} == {hop_pk, next_pk}:
            p = e.policy_of(hop_pk)
            assert p is not None, f"{hop}'s policy is not in {observer}'s graph"
            return p
    raise AssertionError(f"no edge {hop}-{nxt} in {observer}'s graph")


def test_lnd_pays_ldk_and_ldk_pays_lnd_directly(lab: LightningTestHarness) -> None:
    alice, bob = lab.node("alice"), lab.ldk("bob")
    inv = bob.add_invoice(12_345, memo="to ldk")
    paid = alice.pay_invoice(inv.payment_request, fee_limit_sat=0)
    assert paid.succeeded, paid.failure_reason
    assert paid.fee_msat == 0 and paid.route == (bob.pubkey,)
    assert bob.wait_received(inv.payment_hash).amount_msat == 12_345_000

    back = alice.add_invoice(2_000, memo="to lnd")
    paid_back = bob.pay_invoice(back.payment_request, fee_limit_sat=0)
    assert paid_back.succeeded, paid_back.failure_reason
    assert paid_back.fee_msat == 0
    assert alice.ln.lookup_invoice(back.payment_hash).amt_paid_sat == 2_000


def test_lnd_to_ldk_over_three_hops_pays_each_forwarders_announced_fee(lab: LightningTestHarness) -> None:
    """alice (lnd) -> bob (ldk, forwards) -> carol (lnd, forwards) -> dave (ldk)."""
    amount_msat = 100_000_000
    carol_fee = bolt7_fee_msat(hop_policy(lab, "alice", "carol", "dave"), amount_msat)
    bob_fee = bolt7_fee_msat(hop_policy(lab, "alice", "bob", "carol"), amount_msat + carol_fee)
    # carol's side is the topology's declared policy: the lab set it on LND.
    declared = next(c.policy for c in lab.topology.channels if c.from_ == "carol")
    assert carol_fee == declared.base_fee_msat + amount_msat * declared.fee_rate_ppm // 1_000_000

    dave = lab.ldk("dave")
    inv = dave.add_invoice(amount_msat=amount_msat)
    paid = lab.node("alice").pay_invoice(inv.payment_request, fee_limit_sat=100)

    assert paid.succeeded, (paid.failure_reason, paid.failures)
    assert paid.route == (lab.ldk("bob").pubkey, lab.node("carol").pubkey, dave.pubkey)
    assert paid.fee_msat == bob_fee + carol_fee
    assert dave.wait_received(inv.payment_hash).amount_msat == amount_msat


def test_ldk_to_ldk_through_lnd_pays_carols_fee(lab: LightningTestHarness) -> None:
    """bob (ldk) -> carol (lnd) -> dave (ldk): LDK finds the route in the graph it learnt by gossip."""
    amount_msat = 30_000_000
    expected = bolt7_fee_msat(hop_policy(lab, "carol", "carol", "dave"), amount_msat)
    bob, dave = lab.ldk("bob"), lab.ldk("dave")
    inv = dave.add_invoice(amount_msat=amount_msat)

    paid = bob.pay_invoice(inv.payment_request, fee_limit_sat=10)

    assert paid.succeeded, paid.failure_reason
    assert paid.fee_msat == expected
    assert dave.wait_received(inv.payment_hash).amount_msat == amount_msat


def test_keysend_from_ldk_reaches_lnd_three_hops_away(lab: LightningTestHarness) -> None:
    """dave (ldk) -> carol (lnd) -> bob (ldk) -> alice (lnd), spontaneous."""
    alice = lab.node("alice")
    before = sum(c.local_balance_sat for c in alice.list_channels())
    paid = lab.ldk("dave").keysend(alice, 3_000, fee_limit_sat=10)
    assert paid.succeeded, paid.failure_reason
    assert paid.value_sat == 3_000
    bob_fee = bolt7_fee_msat(hop_policy(lab, "alice", "bob", "alice"), 3_000_000)
    carol_fee = bolt7_fee_msat(hop_policy(lab, "alice", "carol", "bob"), 3_000_000 + bob_fee)
    assert paid.fee_msat == bob_fee + carol_fee
    alice.wait_no_pending_htlcs()
    assert sum(c.local_balance_sat for c in alice.list_channels()) == before + 3_000


def test_payment_above_ldk_capacity_fails_and_moves_nothing(lab: LightningTestHarness) -> None:
    dave = lab.ldk("dave")
    before = dave.balances().channel_local_sat
    inv = dave.add_invoice(5_000_000)  # more than any channel on the line holds
    paid = lab.node("alice").pay_invoice(inv.payment_request, fee_limit_sat=1_000, timeout_s=30)
    assert paid.status == "FAILED"
    assert dave.received(inv.payment_hash) is None
    assert dave.balances().channel_local_sat == before
