"""Synthetic network generator and payment simulator."""

from __future__ import annotations

import numpy as np
import pytest

from lsp.routing.plan import PaymentPart
from lsp.routing.simulate import (
    LndStrategy,
    McfStrategy,
    generate_network,
    out_edges_by_node,
    pick_pairs,
    send_part,
    simulate_payment,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def net():  # type: ignore[no-untyped-def]
    return generate_network(400, 1600, seed=7)


def test_generator_is_deterministic_and_sized(net) -> None:  # type: ignore[no-untyped-def]
    again = generate_network(400, 1600, seed=7)
    assert len(net.graph) == 3200 and net.graph.node_count == 400
    assert [c.key for c in net.graph.channels[:50]] == [c.key for c in again.graph.channels[:50]]
    assert np.array_equal(net.liquidity_msat, again.liquidity_msat)
    other = generate_network(400, 1600, seed=8)
    assert not np.array_equal(net.liquidity_msat, other.liquidity_msat)


def test_generator_distributions(net) -> None:  # type: ignore[no-untyped-def]
    g = net.graph
    cap = g.array("capacity_msat")[::2] / 1000
    assert 1_000_000 < np.median(cap) < 6_000_000
    deg = np.bincount(g.array("src"), minlength=g.node_count)
    assert deg.max() > 10 * np.median(deg)  # hubs: preferential attachment
    # Both directions of a channel split its capacity.
    assert np.allclose(net.liquidity_msat[::2] + net.liquidity_msat[1::2], g.array("capacity_msat")[::2])
    base = g.array("base_fee_msat")
    assert np.mean(base <= 1000) > 0.9


def test_send_part_reports_first_short_hop(net) -> None:  # type: ignore[no-untyped-def]
    g = net.graph
    ch = g.channels[0]
    part = PaymentPart.build([ch], int(net.liquidity_msat[0]) + 1, 1.0)
    assert send_part(net, {}, part) == 0
    ok = PaymentPart.build([ch], int(net.liquidity_msat[0]), 1.0)
    assert send_part(net, {}, ok) is None
    assert send_part(net, {0: 1.0}, ok) == 0  # locked HTLCs reduce what is left


@pytest.mark.parametrize("make", [LndStrategy, McfStrategy])
def test_small_payments_mostly_succeed_and_account_fees(net, make) -> None:  # type: ignore[no-untyped-def]
    strat = make(net.graph)
    oe = out_edges_by_node(net.graph)
    results = [simulate_payment(net, strat, s, t, 20_000_000, 5, oe) for s, t in pick_pairs(net, 15, seed=3)]
    assert sum(r.success for r in results) >= 10
    for r in results:
        assert 1 <= r.attempts <= 5
        assert r.fee_msat >= 0 and (r.success or r.fee_msat == 0)
        assert len(r.planning_ms) == r.attempts
    assert net.graph.local_balances_msat == {}
