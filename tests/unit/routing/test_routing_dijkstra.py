"""LND-style apriori baseline."""

from __future__ import annotations

import pytest

from lsp.routing.dijkstra import AprioriDijkstra, capacity_factor
from lsp.routing.graph import Channel, ChannelGraph
from lsp.routing.plan import NoRouteError

pytestmark = pytest.mark.unit


def graph() -> ChannelGraph:
    chs = [
        Channel("1", "S", "A", 1_000_000),
        Channel("2", "S", "B", 1_000_000),
        Channel("3", "A", "T", 1_000_000, base_fee_msat=1000, fee_rate_ppm=100),
        Channel("4", "B", "T", 1_000_000, base_fee_msat=1000, fee_rate_ppm=2000),
        Channel("5", "S", "T", 1_000_000, enabled=False),
    ]
    return ChannelGraph.from_channels(chs, local_balances_msat={("1", "S"): 800_000_000, ("2", "S"): 800_000_000})


def test_capacity_factor_only_bites_near_capacity() -> None:
    assert capacity_factor(1_000, 1_000_000_000, 0.9999, 0.1) == pytest.approx(1.0, abs=1e-4)
    assert capacity_factor(999_900_000, 1_000_000_000, 0.9999, 0.1) == pytest.approx(0.5)
    assert capacity_factor(2_000_000_000, 1_000_000_000, 0.9999, 0.1) < 0.001


def test_picks_cheaper_route_and_skips_disabled_direct_channel() -> None:
    plan = AprioriDijkstra(graph()).plan("S", "T", 100_000_000)
    part = plan.parts[0]
    assert [c.scid for c in part.route] == ["1", "3"]
    assert part.fee_msat == 1000 + 100_000_000 * 100 // 1_000_000
    assert part.probability == pytest.approx(0.6, abs=1e-3)  # own hop certain, one apriori hop


def test_mission_control_failure_excludes_channel_for_larger_amounts() -> None:
    d = AprioriDijkstra(graph())
    d.mission.report_failure(2, 50_000_000)  # edge "3" (A->T) failed at 50k sat
    assert [c.scid for c in d.plan("S", "T", 100_000_000).parts[0].route] == ["2", "4"]
    assert [c.scid for c in d.plan("S", "T", 10_000_000).parts[0].route] == ["1", "3"]


def test_local_balance_limits_first_hop() -> None:
    with pytest.raises(NoRouteError):
        AprioriDijkstra(graph()).plan("S", "T", 900_000_000)
