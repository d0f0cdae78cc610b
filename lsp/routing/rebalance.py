"""Circular rebalancing with the MCF planner: out over one of our channels, back in over another.

The channel manager moves liquidity from a channel with too much local balance (``out``) to
one with too little (``in``) by paying itself: us -> out peer -> ... -> in peer -> us. The
middle, from the out peer to the in peer, is an ordinary MCF plan over the graph without
our own node (so the flow cannot shortcut through our other channels); each part then gets
our ``out`` channel in front and the ``in`` channel at the end, and fees are recomputed
over the whole circle.
"""

from __future__ import annotations

from lsp.routing.graph import Channel, ChannelGraph
from lsp.routing.liquidity import LiquidityModel
from lsp.routing.mcf import McfConfig, McfPlanner
from lsp.routing.plan import NoRouteError, PaymentPart, PaymentPlan


def plan_rebalance(
    graph: ChannelGraph,
    liquidity: LiquidityModel,
    out_scid: str,
    in_scid: str,
    amount_msat: int,
    *,
    config: McfConfig | None = None,
) -> PaymentPlan:
    me = graph.self_node
    if me is None:
        raise ValueError("the graph has no self node")
    out_ch = next((c for c in graph.channels if c.scid == out_scid and c.source == me), None)
    in_ch = next((c for c in graph.channels if c.scid == in_scid and c.dest == me), None)
    if out_ch is None or in_ch is None or out_scid == in_scid:
        raise NoRouteError(me, me, amount_msat, "out and in must be two different channels of ours")
    middle = ChannelGraph.from_channels(c for c in graph.channels if me not in (c.source, c.dest))
    inner = McfPlanner(middle, liquidity, config).plan(out_ch.dest, in_ch.source, amount_msat)
    parts: list[PaymentPart] = []
    for p in inner.parts:
        route: list[Channel] = [out_ch, *p.route, in_ch]
        parts.append(PaymentPart.build(route, p.amount_msat, p.probability))
    sent = sum(p.amounts.sent_msat for p in parts)
    have = graph.local_balances_msat.get(out_ch.key)
    if have is not None and sent > have:
        raise NoRouteError(me, me, amount_msat, f"out channel holds {have} msat, the circle needs {sent}")
    return PaymentPlan(tuple(parts), inner.planning_ms, dict(inner.info))
