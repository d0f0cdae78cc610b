"""MCF planner on small hand-built and random graphs."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lsp.routing.graph import Channel, ChannelGraph
from lsp.routing.liquidity import LiquidityModel, Prior
from lsp.routing.mcf import McfConfig, McfPlanner
from lsp.routing.plan import NoRouteError, PaymentPlan
from lsp.routing.solver import ortools_available

pytestmark = pytest.mark.unit

BACKENDS = ["networkx", *(["ortools"] if ortools_available() else [])]


def both(
    chs: list[Channel], scid: str, a: str, b: str, cap_sat: int, ppm: int = 100, base: int = 1000, enabled: bool = True
) -> None:
    chs.append(Channel(scid, a, b, cap_sat, base, ppm, enabled=enabled))
    chs.append(Channel(scid, b, a, cap_sat, base, ppm, enabled=enabled))


def diamond() -> ChannelGraph:
    chs: list[Channel] = []
    both(chs, "1", "S", "A", 1_000_000)
    both(chs, "2", "S", "B", 1_000_000)
    both(chs, "3", "A", "T", 800_000)
    both(chs, "4", "B", "T", 900_000, ppm=10)
    return ChannelGraph.from_channels(chs, local_balances_msat={("1", "S"): 600_000_000, ("2", "S"): 700_000_000})


def planner(g: ChannelGraph, backend: str, prior: Prior = Prior.UNIFORM, **cfg: object) -> McfPlanner:
    return McfPlanner(g, LiquidityModel(prior, clock=lambda: 0.0), McfConfig(backend=backend, **cfg))  # type: ignore[arg-type]


def node_balance(plan: PaymentPlan) -> dict[str, int]:
    net: dict[str, int] = defaultdict(int)
    for part in plan.parts:
        for ch in part.route:
            net[ch.source] -= part.amount_msat
            net[ch.dest] += part.amount_msat
    return net


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_amount_is_a_single_cheapest_path(backend: str) -> None:
    plan = planner(diamond(), backend).plan("S", "T", 10_000_000)
    assert len(plan.parts) == 1
    assert [c.scid for c in plan.parts[0].route] == ["2", "4"]  # cheaper fee, bigger channels
    assert plan.parts[0].fee_msat == 1000 + 10_000_000 * 10 // 1_000_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_amount_splits_and_respects_local_balances(backend: str) -> None:
    plan = planner(diamond(), backend).plan("S", "T", 1_000_000_000)
    assert plan.amount_msat == 1_000_000_000
    assert len(plan.parts) == 2
    for part in plan.parts:
        first = part.route[0]
        assert part.amounts.sent_msat <= {"1": 600_000_000, "2": 700_000_000}[first.scid]
    assert 0 < plan.probability < 1


def test_no_route_raises_typed_error() -> None:
    g = diamond()
    with pytest.raises(NoRouteError) as exc:
        planner(g, "auto").plan("S", "T", 1_400_000_000)  # more than S can send at all
    assert exc.value.amount_msat == 1_400_000_000
    with pytest.raises(NoRouteError):
        planner(g, "auto").plan("S", "nobody", 1000)


def test_disabled_channel_is_avoided() -> None:
    chs: list[Channel] = []
    both(chs, "1", "S", "A", 1_000_000, ppm=0, base=0, enabled=False)
    both(chs, "2", "S", "B", 1_000_000, ppm=5000)
    both(chs, "3", "A", "T", 1_000_000, ppm=0, base=0)
    both(chs, "4", "B", "T", 1_000_000, ppm=5000)
    plan = planner(ChannelGraph.from_channels(chs), "auto").plan("S", "T", 10_000_000)
    assert [c.scid for c in plan.parts[0].route] == ["2", "4"]


def test_learned_failure_moves_flow_away() -> None:
    g = diamond()
    p = planner(g, "auto")
    first = p.plan("S", "T", 10_000_000)
    assert [c.scid for c in first.parts[0].route] == ["2", "4"]
    p.liquidity.learn_failure(g.channels[g.edge_index("4", "B")], 5_000_000)
    second = p.plan("S", "T", 10_000_000)
    assert [c.scid for c in second.parts[0].route] == ["1", "3"]


def test_mu_trades_fees_for_reliability() -> None:
    # Cheap but small channel vs. expensive but large one: higher mu prefers the cheap path.
    chs: list[Channel] = []
    both(chs, "1", "S", "A", 10_000_000, ppm=0, base=0)
    both(chs, "2", "A", "T", 300_000, ppm=0, base=0)
    both(chs, "3", "A", "T", 50_000_000, ppm=3000, base=0)
    g = ChannelGraph.from_channels(chs, local_balances_msat={("1", "S"): 5_000_000_000})
    reliable = planner(g, "auto", mu=0.01).plan("S", "T", 40_000_000)
    cheap = planner(g, "auto", mu=100.0).plan("S", "T", 40_000_000)
    assert [c.scid for c in reliable.parts[0].route] == ["1", "3"]
    assert [c.scid for c in cheap.parts[0].route] == ["1", "2"]
    assert reliable.probability > cheap.probability and reliable.fee_msat > cheap.fee_msat


@st.composite
def random_graph(draw: st.DrawFn) -> tuple[ChannelGraph, LiquidityModel, int]:
    n = draw(st.integers(4, 9))
    chs: list[Channel] = []
    m = draw(st.integers(n, 3 * n))
    for i in range(m):
        a = draw(st.integers(0, n - 1))
        b = draw(st.integers(0, n - 1))
        if a == b:
            continue
        cap = draw(st.integers(100_000, 5_000_000))
        both(
            chs,
            f"{i}",
            f"N{a}",
            f"N{b}",
            cap,
            ppm=draw(st.integers(0, 1000)),
            base=draw(st.integers(0, 1000)),
            enabled=draw(st.booleans()) or draw(st.booleans()),
        )
    g = ChannelGraph.from_channels(chs)
    liq = LiquidityModel(draw(st.sampled_from(list(Prior))), clock=lambda: 0.0)
    # Some learned knowledge: a few upper and lower bounds.
    for ch in chs[: draw(st.integers(0, len(chs)))]:
        frac = draw(st.floats(0.05, 1.0))
        if draw(st.booleans()):
            liq.learn_failure(ch, int(ch.capacity_msat * frac) + 1)
        else:
            liq.learn_success(ch, int(ch.capacity_msat * frac * 0.5))
    amount = draw(st.integers(1_000_000, 3_000_000_000))
    return g, liq, amount


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph())
def test_plan_invariants_on_random_graphs(case: tuple[ChannelGraph, LiquidityModel, int]) -> None:
    g, liq, amount = case
    names = g.node_names
    if "N0" not in names or "N1" not in names:
        return
    p = McfPlanner(g, liq, McfConfig(single_path_max_msat=100_000_000, units=12))
    try:
        plan = p.plan("N0", "N1", amount)
    except NoRouteError:
        event("no route")
        return
    event(f"planned {min(len(plan.parts), 3)}+ parts")
    assert plan.amount_msat == amount
    assert all(part.amount_msat > 0 for part in plan.parts)
    # Conservation: only sender and recipient have a net flow.
    bal = node_balance(plan)
    assert bal["N0"] == -amount and bal["N1"] == amount
    assert all(v == 0 for k, v in bal.items() if k not in ("N0", "N1"))
    # Never a disabled channel, never more than a known upper bound (fees included).
    load: dict[tuple[str, str], int] = defaultdict(int)
    for part in plan.parts:
        for ch, amt in zip(part.route, part.amounts.hop_amounts_msat, strict=True):
            assert ch.enabled
            assert amt <= ch.max_forward_msat
            load[ch.key] += amt
    for key, amt in load.items():
        ch = g.channels[g.edge_index(*key)]
        _, upper, inflight = liq.bounds(ch)
        assert amt <= upper - 1 - inflight
