"""Baseline: LND's single-path finder with the apriori probability estimator.

This mirrors ``routing/pathfind.go`` + ``routing/probability_apriori.go`` of LND closely
enough to serve as the "what LND does on its own" reference:

* Search runs backwards from the recipient so that the amount each hop must carry (payment
  plus downstream fees) is known when the hop is relaxed.
* ``weight(edge) = fee + amt_to_forward * cltv_delta * 15 / 1e9``  (``RiskFactorBillionths``
  = 15; the sender's own channel has neither fee nor CLTV term).
* ``route_probability`` = product of hop probabilities; a candidate whose probability falls
  under ``min_probability`` (0.01) is dropped.
* ``distance = cumulative_weight + attempt_cost / route_probability`` with
  ``attempt_cost = 100 sat + 1000 ppm * amount`` (LND's ``AttemptCost``/``AttemptCostPPM``).
  This distance is not additive; LND nevertheless runs a plain Dijkstra on it, and so do we.
* Hop probability without history: ``0.6 * capacity_factor(amt)`` where
  ``capacity_factor = 1 - 1 / (1 + exp(-(amt - f*c) / (0.1*c)))``, f = ``capacity_fraction``
  (LND ``apriori.capacityfraction``, default 0.9999), so it only bites near capacity.
* Mission control (within one payment, so no decay): a direction that failed for ``a`` has
  probability 0 for amounts ``>= a``; a direction that succeeded for ``a`` has probability
  0.95 (``prevSuccessProbability``) for amounts ``<= a``. Our own channels are certain:
  usable iff the local balance covers the amount (LND's bandwidth hints).
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass, field

import numpy as np

from lsp.routing.fees import hop_fee_msat
from lsp.routing.graph import ChannelGraph
from lsp.routing.plan import NoRouteError, PaymentPart, PaymentPlan


@dataclass(frozen=True, slots=True)
class AprioriConfig:
    hop_probability: float = 0.6
    prev_success_probability: float = 0.95
    capacity_fraction: float = 0.9999
    capacity_smearing: float = 0.1
    attempt_cost_msat: int = 100_000
    attempt_cost_ppm: int = 1000
    risk_factor_billionths: int = 15
    min_probability: float = 0.01
    max_hops: int = 20


@dataclass(slots=True)
class MissionControl:
    """Per-direction outcomes of this payment's earlier attempts (index -> msat)."""

    fail_amount: dict[int, int] = field(default_factory=dict)
    success_amount: dict[int, int] = field(default_factory=dict)
    local_inflight: dict[int, int] = field(default_factory=dict)

    def report_failure(self, edge: int, amount_msat: int) -> None:
        self.fail_amount[edge] = min(self.fail_amount.get(edge, amount_msat), amount_msat)

    def report_success(self, edge: int, amount_msat: int) -> None:
        self.success_amount[edge] = max(self.success_amount.get(edge, 0), amount_msat)


def capacity_factor(amount_msat: float, capacity_msat: float, fraction: float, smearing: float) -> float:
    if capacity_msat <= 0:
        return 1.0
    z = -(amount_msat - capacity_msat * fraction) / (capacity_msat * smearing)
    if z > 700:  # exp overflow: amount far below the cutoff
        return 1.0
    return 1.0 - 1.0 / (1.0 + math.exp(z))


class AprioriDijkstra:
    def __init__(
        self, graph: ChannelGraph, mission: MissionControl | None = None, config: AprioriConfig | None = None
    ) -> None:
        self.graph = graph
        self.mission = mission or MissionControl()
        self.config = config or AprioriConfig()
        dst = graph.array("dst")
        order = np.argsort(dst, kind="stable")
        counts = np.bincount(dst, minlength=graph.node_count)
        self._in_ptr = np.r_[0, np.cumsum(counts)].tolist()
        self._in_edges = order.tolist()
        self._src = graph.array("src").tolist()

    def edge_probability(self, edge: int, amount_msat: int, is_local: bool) -> float:
        cfg = self.config
        ch = self.graph.channels[edge]
        if is_local:
            bal = self.graph.local_balances_msat.get(ch.key)
            if bal is not None:
                return 1.0 if amount_msat <= bal - self.mission.local_inflight.get(edge, 0) else 0.0
        failed = self.mission.fail_amount.get(edge)
        if failed is not None and amount_msat >= failed:
            return 0.0
        ok = self.mission.success_amount.get(edge)
        if ok is not None and amount_msat <= ok:
            return cfg.prev_success_probability
        return cfg.hop_probability * capacity_factor(
            amount_msat, ch.capacity_msat, cfg.capacity_fraction, cfg.capacity_smearing
        )

    def plan(self, source: str, target: str, amount_msat: int) -> PaymentPlan:
        t0 = time.perf_counter()
        cfg = self.config
        g = self.graph
        s, t = g.node_index.get(source), g.node_index.get(target)
        if s is None or t is None or s == t:
            raise NoRouteError(source, target, amount_msat, "unknown or identical endpoints")
        attempt_cost = cfg.attempt_cost_msat + amount_msat * cfg.attempt_cost_ppm / 1e6
        risk = cfg.risk_factor_billionths / 1e9
        # Per node: (distance, weight, probability, amount it must receive, hops, next edge).
        dist: dict[int, float] = {t: 0.0}
        state: dict[int, tuple[float, float, int, int, int]] = {t: (0.0, 1.0, amount_msat, 0, -1)}
        settled: set[int] = set()
        heap: list[tuple[float, int]] = [(0.0, t)]
        channels, srcs, in_ptr, in_edges = g.channels, self._src, self._in_ptr, self._in_edges
        while heap:
            _d, v = heapq.heappop(heap)
            if v in settled:
                continue
            settled.add(v)
            if v == s:
                break
            weight_v, prob_v, amt_v, hops_v, _ = state[v]
            if hops_v >= cfg.max_hops:
                continue
            for k in range(in_ptr[v], in_ptr[v + 1]):
                e = in_edges[k]
                u = srcs[e]
                if u in settled or u == t:
                    continue
                ch = channels[e]
                if not ch.enabled or amt_v < ch.htlc_min_msat or amt_v > ch.max_forward_msat:
                    continue
                is_local = u == s
                p_edge = self.edge_probability(e, amt_v, is_local)
                prob = prob_v * p_edge
                if prob < cfg.min_probability:
                    continue
                fee = 0 if is_local else hop_fee_msat(ch, amt_v)
                amt_u = amt_v + fee
                lock = 0 if is_local else ch.cltv_delta
                weight = weight_v + fee + amt_u * lock * risk
                cand = weight + attempt_cost / prob
                if cand < dist.get(u, math.inf):
                    dist[u] = cand
                    state[u] = (weight, prob, amt_u, hops_v + 1, e)
                    heapq.heappush(heap, (cand, u))
        if s not in settled:
            raise NoRouteError(source, target, amount_msat, "no path with enough apriori probability")
        route = []
        node = s
        while node != t:
            e = state[node][4]
            route.append(channels[e])
            node = int(g.array("dst")[e])
        part = PaymentPart.build(route, amount_msat, state[s][1])
        return PaymentPlan((part,), (time.perf_counter() - t0) * 1000.0)
