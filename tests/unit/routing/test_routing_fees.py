"""Fees along routes, hand-computed, with BOLT 7 integer rounding."""

from __future__ import annotations

import pytest

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
