"""Fees along routes, hand-computed, with BOLT 7 integer rounding."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.routing.fees import hop_fee_msat, route_amounts
from lsp.routing.graph import Channel

pytestmark = pytest.mark.unit


def test_hop_fee_rounds_down_the_proportional_part() -> None:
    ch = Channel("1", "A", "B", 1_000_000, base_fee_msat=1000, fee_rate_ppm=1)
    assert hop_fee_msat(ch, 999_999) == 1000  # 999_999 * 1 // 1e6 == 0
    assert hop_fee_msat(ch, 1_000_000) == 1001
    assert hop_fee_msat(Channel("2", "A", "B", 1, 0, 250), 123_456_789) == 30_864  # 30864.19 floored


def test_three_hop_route_fees_are_built_backwards() -> None:
    # S -> A -> B -> T. S does not charge itself; A charges by its A->B policy, B by B->T.
    s_a = Channel("1", "S", "A", 1_000_000, base_fee_msat=5000, fee_rate_ppm=5000)  # ignored (ours)
    a_b = Channel("2", "A", "B", 1_000_000, base_fee_msat=1000, fee_rate_ppm=100)
    b_t = Channel("3", "B", "T", 1_000_000, base_fee_msat=0, fee_rate_ppm=2000, cltv_delta=80)
    r = route_amounts([s_a, a_b, b_t], 100_000_000)
    # B forwards 100_000_000 to T: fee 0 + 100_000_000 * 2000 // 1e6 = 200_000
    # A forwards 100_200_000 to B: fee 1000 + 100_200_000 * 100 // 1e6 = 1000 + 10_020 = 11_020
    assert r.hop_amounts_msat == (100_211_020, 100_200_000, 100_000_000)
    assert r.fee_msat == 211_020
    assert r.sent_msat == 100_211_020
    assert r.total_cltv_delta == 40 + 80


def test_direct_channel_costs_nothing() -> None:
    r = route_amounts([Channel("1", "S", "T", 10, 1000, 1000)], 5000)
    assert r.hop_amounts_msat == (5000,) and r.fee_msat == 0


# --- properties -----------------------------------------------------------------------------

MSAT = st.integers(min_value=1, max_value=21_000_000 * 100_000_000 * 1000)  # up to all bitcoin, in msat
POLICY = st.tuples(st.integers(0, 100_000), st.integers(0, 1_000_000))  # (base_fee_msat, fee_rate_ppm)


def lnd_compute_fee(base_msat: int, ppm: int, amt_msat: int) -> int:
    """LND's ``ChannelEdgePolicy.ComputeFee``: ``FeeBaseMSat + amt*FeeProportionalMillionths/1e6``
    on the amount the hop forwards, in integer msat (the division truncates; amounts are >= 0).
    Written with ``Fraction`` so it shares no arithmetic with the code under test."""
    return base_msat + int(Fraction(amt_msat * ppm, 1_000_000))


def policy_channel(i: int, base: int, ppm: int) -> Channel:
    return Channel(str(i), f"N{i}", f"N{i + 1}", 10**12, base_fee_msat=base, fee_rate_ppm=ppm)


@settings(max_examples=300, deadline=None)
@given(base=st.integers(0, 100_000), ppm=st.integers(0, 1_000_000), amt=MSAT, more=st.integers(0, 10**12))
def test_hop_fee_is_lnds_and_monotone(base: int, ppm: int, amt: int, more: int) -> None:
    ch = policy_channel(0, base, ppm)
    fee = hop_fee_msat(ch, amt)
    assert fee == lnd_compute_fee(base, ppm, amt)
    assert base <= fee <= base + Fraction(amt * ppm, 1_000_000) < fee + 1  # floored, never rounded up
    assert hop_fee_msat(ch, amt + more) >= fee


@settings(max_examples=300, deadline=None)
@given(policies=st.lists(POLICY, min_size=1, max_size=8), amount=MSAT, more=st.integers(0, 10**12))
def test_route_amounts_follow_lnd_hop_by_hop(policies: list[tuple[int, int]], amount: int, more: int) -> None:
    route = [policy_channel(i, b, p) for i, (b, p) in enumerate(policies)]
    r = route_amounts(route, amount)
    amts = r.hop_amounts_msat
    assert len(amts) == len(route) and amts[-1] == amount
    # What enters hop i's channel (route[i - 1]) is what it forwards plus its fee, computed on
    # the forwarded (outgoing) amount with its own policy, exactly as LND builds a route.
    for i in range(1, len(route)):
        base, ppm = policies[i]
        assert amts[i - 1] == amts[i] + lnd_compute_fee(base, ppm, amts[i])
    # The first channel is ours: its policy never costs anything.
    assert r.fee_msat == amts[0] - amount == sum(amts[i - 1] - amts[i] for i in range(1, len(route)))
    assert r.fee_msat >= sum(b for b, _ in policies[1:])
    assert r.total_cltv_delta == sum(c.cltv_delta for c in route[1:])
    # More delivered never costs less, at any hop.
    bigger = route_amounts(route, amount + more)
    assert bigger.fee_msat >= r.fee_msat
    assert all(b >= a for a, b in zip(amts, bigger.hop_amounts_msat, strict=True))
    # Our own channel's policy is irrelevant.
    free_first = [policy_channel(0, 0, 0), *route[1:]]
    assert route_amounts(free_first, amount) == r
