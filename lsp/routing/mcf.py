"""Payment planning as a probabilistic min-cost flow (Pickhardt & Richter, arXiv 2107.05322).

Cost of sending ``x`` msat over a channel direction::

    -log P(X >= x + inflight | lower <= X < upper)  +  mu * 1000 * fee(x) / amount

The first term is the channel's uncertainty (additive over channels because success
probabilities multiply); the second is the fee in per-mille of the payment, so ``mu = 1``
trades one nat of log-probability against 0.1 % fee. The uncertainty term is convex (after
taking its convex envelope, see ``linearize``), so each channel becomes a few parallel arcs with
increasing unit cost. The base fee is not linear in ``x``; we amortise it over a typical part
size, which is the usual approximation (renepay does something similar).

One fee weight does not fit all payments, so each plan solves the flow for several weights
(``mu`` times ``mu_factors``) on the same network and keeps the cheapest result that is
nearly as reliable as the most reliable one (``select_plan``). Only the arc costs change
between these solves, so each extra weight costs one solver run, not a new corridor.

To keep the problem small the graph is first cut to a corridor: one Dijkstra from the sender
and one to the recipient (scipy, C speed) on a per-edge proxy cost; nodes whose best
sender->node->recipient proxy cost is among the cheapest ``max_nodes`` are kept, once for the
smallest and once for the largest fee weight (cheap routes can lie outside the reliable corridor).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from lsp.routing.decompose import FlowEdge, decompose_flow
from lsp.routing.graph import BoolArray, ChannelGraph, FloatArray, IntArray
from lsp.routing.linearize import piece_breakpoints
from lsp.routing.liquidity import LiquidityModel, success_probability_array
from lsp.routing.plan import NoRouteError, PaymentPart, PaymentPlan
from lsp.routing.solver import FlowProblem, InfeasibleFlow, solve

_UNREACHABLE = 1e12
_MIN_P = 1e-6


@dataclass(frozen=True, slots=True)
class McfConfig:
    mu: float = 1.0
    """Weight of fees against reliability (1.0: 0.1 % fee ~ one nat of log-probability)."""
    n_pieces: int = 5
    units: int = 40
    """Flow units the payment is cut into above ``single_path_max_msat`` (the MPP granularity)."""
    single_path_max_msat: int = 50_000_000
    """At or below this a payment is a single unit, hence a single path."""
    min_unit_msat: int = 10_000_000
    """Smallest flow unit: below it extra parts cost base fees and HTLC slots for little gain."""
    max_nodes: int = 300
    max_edges: int = 4000
    base_fee_parts: float = 4.0
    """Base fees are amortised as if each part carried ``amount / base_fee_parts``."""
    hop_cost: float = 0.002
    """Per-unit, per-hop cost: a tie-breaker toward shorter routes (fewer CLTV, fewer failures)."""
    fee_margin: float = 0.01
    """Reserve this fraction of channel room for the fees added upstream of each hop."""
    max_hops: int = 20
    cost_scale: float = 1_000_000.0
    backend: str = "auto"
    mu_factors: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
    """The fee weights tried per plan, as multiples of ``mu``; ``(1.0,)`` plans with ``mu`` only."""
    reliability_tolerance: float = 0.95
    """Take the cheapest candidate whose expected delivered share is at least this fraction of
    the most reliable candidate's (see ``select_plan``)."""

    def mu_values(self) -> tuple[float, ...]:
        return tuple(sorted({self.mu * f for f in self.mu_factors}))


@dataclass(frozen=True, slots=True)
class _Arcs:
    """A corridor's flow network without the fee weight: arc ``i`` belongs to corridor edge
    ``arc_edge[i]`` (graph edge ``e_idx[arc_edge[i]]``); its unit cost is
    ``uncertainty[i] + mu * fee[i] + hop_cost``."""

    e_idx: IntArray
    s_idx: int
    t_idx: int
    n_nodes: int
    source: int
    sink: int
    tail: IntArray
    head: IntArray
    arc_edge: IntArray
    capacity: IntArray
    uncertainty: FloatArray
    fee: FloatArray


def select_plan(plans: Sequence[PaymentPlan], tolerance: float) -> PaymentPlan:
    """The cheapest plan whose expected delivered share is at least ``tolerance`` times the
    largest among ``plans``; ties go to the more reliable plan.

    The candidates come from solving the flow with several fee weights: a higher weight finds
    cheaper flows, usually less reliable ones. The tolerance bounds what reliability we give up
    for the saving, relative to the most reliable candidate (Core Lightning's renepay/askrene
    search their fee weight under a similar probability floor). Reliability is measured as the
    expected share of the amount that arrives, not as the probability that every part arrives:
    parts that arrive are kept and only the rest is retried, so a cheap single path that fails
    as a whole sets a payment back much more than a split of equal probability where some
    parts get through.
    """
    if not plans:
        raise ValueError("no plans to choose from")
    floor = tolerance * max(p.expected_fraction for p in plans)
    ok = [p for p in plans if p.expected_fraction >= floor]
    return min(ok, key=lambda p: (p.fee_msat, -p.expected_fraction, -p.probability))


def gcm_slopes(x: FloatArray, c: FloatArray) -> FloatArray:
    """Slopes of the greatest convex minorant of piecewise-linear rows ``(x[i], c[i])``.

    Slope of piece ``i`` = ``max_{j<=i} min_{k>=i}`` of the chord slope from point ``j`` to
    point ``k + 1`` (the min-max formula for isotonic regression of slopes). Vectorised over
    rows, ``O(pieces^3)`` array ops, which beats a Python hull per channel by far.
    Zero-width pieces get a slope consistent with their neighbours (they carry no flow).
    """
    m, n_pts = x.shape
    n = n_pts - 1
    out = np.empty((m, n))
    for i in range(n):
        best = np.full(m, -np.inf)
        for j in range(i + 1):
            low = np.full(m, np.inf)
            for k in range(i, n):
                dx = x[:, k + 1] - x[:, j]
                with np.errstate(divide="ignore", invalid="ignore"):
                    chord = np.where(dx > 0, (c[:, k + 1] - c[:, j]) / dx, np.inf)
                low = np.minimum(low, chord)
            best = np.maximum(best, low)
        out[:, i] = best
    return np.where(np.isfinite(out), out, 0.0)


class McfPlanner:
    def __init__(self, graph: ChannelGraph, liquidity: LiquidityModel, config: McfConfig | None = None) -> None:
        self.graph = graph
        self.liquidity = liquidity
        self.config = config or McfConfig()
        self._prepare()

    def _prepare(self) -> None:
        # Parallel channels between the same two nodes collapse to their cheapest one for
        # the corridor search; the grouping is fixed per graph, only weights change per plan.
        g = self.graph
        src, dst = g.array("src"), g.array("dst")
        n = g.node_count
        self._n = n
        key = src * n + dst
        order = np.argsort(key, kind="stable")
        skey = key[order]
        starts = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]])
        self._order = order
        self._starts = starts
        usrc, udst = skey[starts] // n, skey[starts] % n
        self._fwd = self._csr_layout(usrc, udst, n)
        self._bwd = self._csr_layout(udst, usrc, n)

    @staticmethod
    def _csr_layout(rows: IntArray, cols: IntArray, n: int) -> tuple[IntArray, IntArray, IntArray]:
        perm = np.lexsort((cols, rows))
        indptr = np.zeros(n + 1, np.int64)
        np.add.at(indptr, rows + 1, 1)
        return perm, cols[perm].astype(np.int32), np.cumsum(indptr).astype(np.int32)

    def _corridor_dists(self, w: FloatArray, s: int, t: int) -> tuple[FloatArray, FloatArray]:
        pair_w = np.minimum.reduceat(w[self._order], self._starts)
        dists = []
        for (perm, indices, indptr), root in ((self._fwd, s), (self._bwd, t)):
            mat = csr_matrix((pair_w[perm], indices, indptr), shape=(self._n, self._n))
            dists.append(dijkstra(mat, directed=True, indices=root))
        return dists[0], dists[1]

    def plan(self, source: str, target: str, amount_msat: int, now: float | None = None) -> PaymentPlan:
        t0 = time.perf_counter()
        cfg = self.config
        g = self.graph
        if amount_msat <= 0:
            raise ValueError("amount must be positive")
        s_idx, t_idx = g.node_index.get(source), g.node_index.get(target)
        if s_idx is None or t_idx is None or s_idx == t_idx:
            raise NoRouteError(source, target, amount_msat, "unknown or identical endpoints")
        n_units = (
            1 if amount_msat <= cfg.single_path_max_msat else max(1, min(cfg.units, amount_msat // cfg.min_unit_msat))
        )
        unit = amount_msat / n_units

        lower, upper, inflight = self.liquidity.arrays(g, now)
        cap = g.array("capacity_msat")
        src, dst = g.array("src"), g.array("dst")
        # Hard limit per direction: known liquidity left (upper is exclusive) and the policy max.
        hard_room = np.minimum(upper - 1.0 - inflight, g.array("max_forward_msat"))
        room = hard_room / (1.0 + cfg.fee_margin)
        usable = (
            g.array("enabled") & (room >= unit) & (g.array("htlc_min_msat") <= unit) & (dst != s_idx) & (src != t_idx)
        )
        if not usable.any():
            raise NoRouteError(source, target, amount_msat, "no usable channel")

        # Corridor proxy: cost of one typical part over the edge.
        probe = min(float(amount_msat), max(unit, amount_msat / cfg.base_fee_parts))
        prior = self.liquidity.prior
        scale = self.liquidity.scale_msat
        p_probe = success_probability_array(prior, cap, lower, upper, np.minimum(probe, room) + inflight, scale)
        ppm, base = g.array("fee_rate_ppm"), g.array("base_fee_msat")
        fee_rate = ppm / 1e6 + base / probe  # fee per msat of the probe part
        uncertainty = -np.log(np.maximum(p_probe, _MIN_P)) + 0.01
        mus = cfg.mu_values()
        # One corridor per end of the mu range (the cheap routes a high mu wants can lie outside
        # the reliable corridor); the flows for every mu are solved on their union.
        corridors: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        for mu in (mus[0], mus[-1]) if len(mus) > 1 else mus:
            w = np.where(usable, uncertainty + mu * 1000.0 * fee_rate, _UNREACHABLE)
            d_s, d_t = self._corridor_dists(w, s_idx, t_idx)
            corridors.append((d_s, d_t, w))
        if not corridors[0][0][t_idx] < _UNREACHABLE / 2:
            raise NoRouteError(source, target, amount_msat, "recipient unreachable through usable channels")

        liq = (lower, upper, inflight)
        e_idx = self._corridor_edges(corridors, s_idx, t_idx, usable, cfg.max_nodes, cfg.max_edges)
        arcs = self._arcs(e_idx, s_idx, t_idx, amount_msat, n_units, unit, hard_room, liq, cfg.fee_margin)
        first = self._solve_arcs(arcs, mus[0], amount_msat, n_units, liq)
        if first is None:
            # Feasibility does not depend on mu: widen the corridor once for all of them.
            e_idx = self._corridor_edges(corridors, s_idx, t_idx, usable, cfg.max_nodes * 4, cfg.max_edges * 4)
            arcs = self._arcs(e_idx, s_idx, t_idx, amount_msat, n_units, unit, hard_room, liq, cfg.fee_margin)
            first = self._solve_arcs(arcs, mus[0], amount_msat, n_units, liq)
        if first is None:
            raise NoRouteError(source, target, amount_msat, "not enough liquidity in the corridor")

        arcs_by_margin = {cfg.fee_margin: arcs}
        candidates: list[tuple[float, list[PaymentPart]]] = []
        for mu in mus:
            parts = first if mu == mus[0] else self._solve_arcs(arcs, mu, amount_msat, n_units, liq)
            margin = cfg.fee_margin
            # The flow is planned on delivered amounts; upstream hops also carry fees. If that
            # pushes any channel past what we know it holds, re-plan with a wider fee margin
            # rather than ever sending more than a known upper bound.
            for _ in range(3):
                if parts is None:
                    break
                excess = _max_load_ratio(parts, g, hard_room)
                if excess <= 1.0:
                    candidates.append((mu, parts))
                    break
                margin = (1.0 + margin) * excess * 1.01 - 1.0
                if margin not in arcs_by_margin:
                    arcs_by_margin[margin] = self._arcs(
                        e_idx, s_idx, t_idx, amount_msat, n_units, unit, hard_room, liq, margin
                    )
                parts = self._solve_arcs(arcs_by_margin[margin], mu, amount_msat, n_units, liq)
        if not candidates:
            raise NoRouteError(source, target, amount_msat, "fees exceed the known channel liquidity")
        plans = [PaymentPlan(tuple(parts)) for _, parts in candidates]
        chosen = select_plan(plans, cfg.reliability_tolerance)
        k = plans.index(chosen)
        info = {
            "corridor_nodes": float(arcs.n_nodes),
            "corridor_edges": float(len(e_idx)),
            "arcs": float(len(arcs.capacity)),
            "mu": candidates[k][0],
            "candidates": float(len(plans)),
            "best_probability": max(p.probability for p in plans),
            "best_expected_fraction": max(p.expected_fraction for p in plans),
        }
        for (mu, _), p in zip(candidates, plans, strict=True):
            info[f"probability@{mu:g}"] = p.probability
            info[f"fee_msat@{mu:g}"] = float(p.fee_msat)
        return PaymentPlan(chosen.parts, (time.perf_counter() - t0) * 1000.0, info)

    def _corridor_edges(
        self,
        corridors: list[tuple[FloatArray, FloatArray, FloatArray]],
        s_idx: int,
        t_idx: int,
        usable: BoolArray,
        max_nodes: int,
        max_edges: int,
    ) -> IntArray:
        """Edges of the union of the corridors: per corridor, nodes whose best
        sender->node->recipient proxy cost is among the ``max_nodes`` cheapest, and among the
        edges between kept nodes the ``max_edges`` cheapest."""
        g = self.graph
        src, dst = g.array("src"), g.array("dst")
        chosen = np.zeros(len(usable), np.bool_)
        for d_s, d_t, w in corridors:
            score = d_s + d_t
            finite = np.flatnonzero(score < _UNREACHABLE / 2)
            if len(finite) > max_nodes:
                finite = finite[np.argpartition(score[finite], max_nodes - 1)[:max_nodes]]
            keep = np.zeros(g.node_count, np.bool_)
            keep[finite] = True
            keep[[s_idx, t_idx]] = True
            e_idx = np.flatnonzero(usable & keep[src] & keep[dst])
            if len(e_idx) > max_edges:
                e_score = d_s[src[e_idx]] + w[e_idx] + d_t[dst[e_idx]]
                e_idx = e_idx[np.argpartition(e_score, max_edges - 1)[:max_edges]]
            chosen[e_idx] = True
        return np.flatnonzero(chosen)

    def _arcs(
        self,
        e_idx: IntArray,
        s_idx: int,
        t_idx: int,
        amount_msat: int,
        n_units: int,
        unit: float,
        hard_room: FloatArray,
        liq: tuple[FloatArray, FloatArray, FloatArray],
        fee_margin: float,
    ) -> _Arcs:
        """The flow network for a corridor, everything but the fee weight ``mu``."""
        cfg = self.config
        g = self.graph
        lower, upper, inflight = liq
        src, dst = g.array("src"), g.array("dst")
        room = hard_room / (1.0 + fee_margin)
        m = len(e_idx)

        # Piecewise costs in unit space: breakpoints are integer unit counts per edge.
        u_max = np.minimum(np.floor(room[e_idx] / unit), n_units)
        certain = np.minimum(np.floor(np.maximum(lower[e_idx] - inflight[e_idx], 0.0) / unit), u_max)
        bp = np.empty((m, cfg.n_pieces + 2))
        bp[:, 0] = 0.0
        bp[:, 1:] = np.ceil(piece_breakpoints(certain, u_max, cfg.n_pieces) - 1e-9)
        bp = np.maximum.accumulate(np.minimum(bp, u_max[:, None]), axis=1)
        p = success_probability_array(
            self.liquidity.prior,
            g.array("capacity_msat")[e_idx][:, None],
            lower[e_idx][:, None],
            upper[e_idx][:, None],
            bp * unit + inflight[e_idx][:, None],
            self.liquidity.scale_msat,
        )
        cost_pts = -np.log(np.maximum(p, _MIN_P))
        slopes = gcm_slopes(bp, cost_pts)
        widths = np.diff(bp, axis=1).astype(np.int64)

        a_ref = max(unit, amount_msat / cfg.base_fee_parts)
        ppm, base = g.array("fee_rate_ppm")[e_idx], g.array("base_fee_msat")[e_idx]
        fee_per_unit = 1000.0 * (ppm * unit / 1e6 + base * unit / a_ref) / amount_msat

        local = np.full(g.node_count, -1, np.int64)
        nodes_used = np.unique(np.r_[src[e_idx], dst[e_idx], s_idx, t_idx])
        local[nodes_used] = np.arange(len(nodes_used))
        nz = widths.ravel() > 0
        return _Arcs(
            e_idx=e_idx,
            s_idx=s_idx,
            t_idx=t_idx,
            n_nodes=len(nodes_used),
            source=int(local[s_idx]),
            sink=int(local[t_idx]),
            tail=np.repeat(local[src[e_idx]], cfg.n_pieces + 1)[nz],
            head=np.repeat(local[dst[e_idx]], cfg.n_pieces + 1)[nz],
            arc_edge=np.repeat(np.arange(m), cfg.n_pieces + 1)[nz],
            capacity=widths.ravel()[nz],
            uncertainty=slopes.ravel()[nz],
            fee=np.repeat(fee_per_unit, cfg.n_pieces + 1)[nz],
        )

    def _solve_arcs(
        self,
        arcs: _Arcs,
        mu: float,
        amount_msat: int,
        n_units: int,
        liq: tuple[FloatArray, FloatArray, FloatArray],
    ) -> list[PaymentPart] | None:
        cfg = self.config
        g = self.graph
        src, dst = g.array("src"), g.array("dst")
        unit_cost = arcs.uncertainty + mu * arcs.fee + cfg.hop_cost
        problem = FlowProblem(
            n_nodes=arcs.n_nodes,
            tail=arcs.tail,
            head=arcs.head,
            capacity=arcs.capacity,
            cost=np.maximum(np.round(unit_cost * cfg.cost_scale).astype(np.int64), 0),
            source=arcs.source,
            sink=arcs.sink,
            supply=n_units,
        )
        try:
            flows = solve(problem, cfg.backend)
        except InfeasibleFlow:
            return None
        m = len(arcs.e_idx)
        e_idx = arcs.e_idx
        edge_flow = np.bincount(arcs.arc_edge, weights=flows, minlength=m).astype(np.int64)
        flow_edges = [
            FlowEdge(int(e_idx[i]), int(src[e_idx[i]]), int(dst[e_idx[i]]), int(edge_flow[i]))
            for i in np.flatnonzero(edge_flow)
        ]
        paths = decompose_flow(flow_edges, arcs.s_idx, arcs.t_idx)
        return self._parts(paths, amount_msat, n_units, *liq)

    def _parts(
        self,
        paths: list[tuple[list[int], int]],
        amount_msat: int,
        n_units: int,
        lower: FloatArray,
        upper: FloatArray,
        inflight: FloatArray,
    ) -> list[PaymentPart] | None:
        if sum(u for _, u in paths) != n_units:
            return None
        base_unit = amount_msat // n_units
        amounts = [u * base_unit for _, u in paths]
        amounts[0] += amount_msat - sum(amounts)  # the rounding remainder rides the largest part
        return parts_with_probabilities(self.graph, self.liquidity, paths, amounts, lower, upper, inflight)


def _max_load_ratio(parts: list[PaymentPart], graph: ChannelGraph, hard_room: FloatArray) -> float:
    """Largest (total msat over a direction) / (room it is known to have) across the plan."""
    load: dict[int, int] = {}
    for part in parts:
        for ch, amt in zip(part.route, part.amounts.hop_amounts_msat, strict=True):
            e = graph.edge_index(ch.scid, ch.source)
            load[e] = load.get(e, 0) + amt
    worst = 0.0
    for e, amt in load.items():
        worst = max(worst, amt / max(float(hard_room[e]), 1e-9))
    return worst


def parts_with_probabilities(
    graph: ChannelGraph,
    liquidity: LiquidityModel,
    paths: list[tuple[list[int], int]],
    amounts: list[int],
    lower: FloatArray,
    upper: FloatArray,
    inflight: FloatArray,
) -> list[PaymentPart]:
    """Build parts; each hop's probability is conditioned on earlier parts sharing the channel."""
    used: dict[int, int] = {}
    cap = graph.array("capacity_msat")
    parts = []
    for (path, _), amt in zip(paths, amounts, strict=True):
        route = [graph.channels[e] for e in path]
        part = PaymentPart.build(route, amt, 1.0)
        idx = np.array(path, np.int64)
        load = np.array(part.amounts.hop_amounts_msat, np.float64) + np.array([used.get(e, 0) for e in path])
        p = success_probability_array(
            liquidity.prior, cap[idx], lower[idx], upper[idx], load + inflight[idx], liquidity.scale_msat
        )
        for e, a in zip(path, part.amounts.hop_amounts_msat, strict=True):
            used[e] = used.get(e, 0) + a
        parts.append(PaymentPart(part.route, amt, float(math.prod(p.tolist())), part.amounts))
    return parts
