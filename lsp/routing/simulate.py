"""Synthetic Lightning network and a payment simulator against hidden balances.

The generator is deterministic from a seed and sized like mainnet by default. Topology is
preferential attachment (Barabasi-Albert), which reproduces the hub-dominated degree
distribution of the public graph. Capacities are log-normal, fees are mostly base 0 or 1 sat
with log-normal ppm. Each channel's hidden balance split is drawn from Beta(0.4, 0.4): many
channels sit near one side (as LND's bimodal model assumes) but not all of them.

The simulator plays the sender: a strategy plans parts, each part is checked hop by hop
against the hidden liquidity (minus HTLCs this payment already locked), a failure reports the
failing hop like an onion error, successes lock liquidity until the whole amount arrived.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lsp.routing.dijkstra import AprioriConfig, AprioriDijkstra, MissionControl
from lsp.routing.graph import Channel, ChannelGraph, FloatArray
from lsp.routing.liquidity import LiquidityModel, Prior
from lsp.routing.mcf import McfConfig, McfPlanner
from lsp.routing.plan import NoRouteError, PaymentPart, PaymentPlan

MAX_ROUTING_ATTEMPTS = 5


@dataclass(slots=True)
class SyntheticNetwork:
    graph: ChannelGraph
    liquidity_msat: FloatArray
    """Hidden spendable liquidity per direction; the two directions sum to the capacity."""


def generate_network(
    n_nodes: int = 15_000,
    n_channels: int = 60_000,
    seed: int = 1,
    *,
    median_capacity_sat: float = 3_000_000,
    capacity_sigma: float = 1.1,
    median_ppm: float = 100.0,
    ppm_sigma: float = 1.3,
    disabled_fraction: float = 0.03,
    balance_beta: float = 0.4,
) -> SyntheticNetwork:
    rng = np.random.default_rng(seed)
    m = max(1, n_channels // n_nodes)
    pairs: list[tuple[int, int]] = []
    # Preferential attachment: picking uniformly from the list of channel endpoints picks a
    # node with probability proportional to its degree.
    endpoints: list[int] = []
    core = m + 1
    for a in range(core):
        for b in range(a + 1, core):
            pairs.append((a, b))
            endpoints += [a, b]
    for v in range(core, n_nodes):
        targets: set[int] = set()
        picks = rng.integers(0, len(endpoints), size=4 * m)
        for i in picks:
            targets.add(endpoints[int(i)])
            if len(targets) == m:
                break
        for u in targets:
            pairs.append((v, u))
            endpoints += [v, u]
    # Top up to the requested channel count with extra preferential channels.
    while len(pairs) < n_channels:
        a = int(rng.integers(0, n_nodes))
        b = endpoints[int(rng.integers(0, len(endpoints)))]
        if a != b:
            pairs.append((a, b))
            endpoints += [a, b]
    pairs = pairs[:n_channels]
    k = len(pairs)

    cap_sat = np.clip(rng.lognormal(np.log(median_capacity_sat), capacity_sigma, k), 20_000, 2_000_000_000)
    cap_sat = np.round(cap_sat).astype(np.int64)
    split = rng.beta(balance_beta, balance_beta, k)

    def policies(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        kind = rng.choice(4, size=size, p=[0.45, 0.35, 0.15, 0.05])
        base = np.select(
            [kind == 0, kind == 1, kind == 2],
            [np.full(size, 1000), np.zeros(size, np.int64), rng.integers(0, 1001, size)],
            rng.integers(1000, 5001, size),
        )
        ppm = np.clip(np.round(rng.lognormal(np.log(median_ppm), ppm_sigma, size)), 0, 5000).astype(np.int64)
        ppm[rng.random(size) < 0.1] = 0
        cltv = rng.choice(np.array([40, 80, 144]), size=size, p=[0.5, 0.3, 0.2])
        enabled = rng.random(size) >= disabled_fraction
        return base, ppm, cltv, enabled

    b1, p1, c1, e1 = policies(k)
    b2, p2, c2, e2 = policies(k)
    channels: list[Channel] = []
    liquidity = np.empty(2 * k)
    names = [f"n{i:05d}" for i in range(n_nodes)]
    for i, (a, b) in enumerate(pairs):
        scid = f"{700_000 + i // 1000}x{i % 1000}x0"
        cap = int(cap_sat[i])
        htlc_max = cap * 990  # LND's default max_htlc is 99 % of capacity (in msat)
        channels.append(
            Channel(scid, names[a], names[b], cap, int(b1[i]), int(p1[i]), int(c1[i]), 1000, htlc_max, bool(e1[i]))
        )
        channels.append(
            Channel(scid, names[b], names[a], cap, int(b2[i]), int(p2[i]), int(c2[i]), 1000, htlc_max, bool(e2[i]))
        )
        liquidity[2 * i] = np.floor(split[i] * cap * 1000)
        liquidity[2 * i + 1] = cap * 1000 - liquidity[2 * i]
    return SyntheticNetwork(ChannelGraph.from_channels(channels), liquidity)


# --- strategies ---------------------------------------------------------------------------


class Strategy(Protocol):
    name: str

    def start(self, graph: ChannelGraph) -> None: ...
    def plan(self, source: str, target: str, amount_msat: int) -> PaymentPlan: ...
    def on_success(self, part: PaymentPart) -> None: ...
    def on_failure(self, part: PaymentPart, failing_hop: int) -> None: ...


class McfStrategy:
    """Our router: MCF over the liquidity model, learning bounds from every outcome."""

    def __init__(self, graph: ChannelGraph, config: McfConfig | None = None, prior: Prior | str = Prior.BIMODAL):
        self.name = f"mcf-{Prior(prior).value}"
        self.prior = Prior(prior)
        self.graph = graph
        # Simulated time stands still within a payment: no decay between attempts.
        self.liquidity = LiquidityModel(self.prior, clock=lambda: 0.0)
        self.planner = McfPlanner(graph, self.liquidity, config)

    def start(self, graph: ChannelGraph) -> None:
        self.liquidity = LiquidityModel(self.prior, clock=lambda: 0.0)
        self.planner.liquidity = self.liquidity

    def plan(self, source: str, target: str, amount_msat: int) -> PaymentPlan:
        return self.planner.plan(source, target, amount_msat)

    def _reverse(self, ch: Channel) -> Channel | None:
        r = self.graph.reverse_index(self.graph.edge_index(ch.scid, ch.source))
        return None if r < 0 else self.graph.channels[r]

    def on_success(self, part: PaymentPart) -> None:
        for ch, amt in zip(part.route, part.amounts.hop_amounts_msat, strict=True):
            self.liquidity.learn_success(ch, amt, self._reverse(ch))
            self.liquidity.add_inflight(ch, amt)

    def on_failure(self, part: PaymentPart, failing_hop: int) -> None:
        for i, (ch, amt) in enumerate(zip(part.route, part.amounts.hop_amounts_msat, strict=True)):
            if i < failing_hop:
                self.liquidity.learn_success(ch, amt, self._reverse(ch))
            elif i == failing_hop:
                self.liquidity.learn_failure(ch, amt, self._reverse(ch))


class LndStrategy:
    """Baseline: LND's apriori single-path search, with mission control across retries."""

    name = "lnd-apriori"

    def __init__(self, graph: ChannelGraph, config: AprioriConfig | None = None) -> None:
        self.graph = graph
        self.finder = AprioriDijkstra(graph, MissionControl(), config)

    def start(self, graph: ChannelGraph) -> None:
        self.finder.mission = MissionControl()

    def plan(self, source: str, target: str, amount_msat: int) -> PaymentPlan:
        return self.finder.plan(source, target, amount_msat)

    def _idx(self, ch: Channel) -> int:
        return self.graph.edge_index(ch.scid, ch.source)

    def on_success(self, part: PaymentPart) -> None:
        for i, (ch, amt) in enumerate(zip(part.route, part.amounts.hop_amounts_msat, strict=True)):
            self.finder.mission.report_success(self._idx(ch), amt)
            if i == 0:
                e = self._idx(ch)
                self.finder.mission.local_inflight[e] = self.finder.mission.local_inflight.get(e, 0) + amt

    def on_failure(self, part: PaymentPart, failing_hop: int) -> None:
        for i, (ch, amt) in enumerate(zip(part.route, part.amounts.hop_amounts_msat, strict=True)):
            if i < failing_hop:
                self.finder.mission.report_success(self._idx(ch), amt)
            elif i == failing_hop:
                self.finder.mission.report_failure(self._idx(ch), amt)


# --- simulator ----------------------------------------------------------------------------


@dataclass(slots=True)
class PaymentResult:
    strategy: str
    amount_msat: int
    success: bool
    attempts: int
    parts_sent: int
    fee_msat: int
    planning_ms: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def fee_ppm(self) -> float:
        return self.fee_msat * 1e6 / self.amount_msat


def send_part(net: SyntheticNetwork, locked: dict[int, float], part: PaymentPart) -> int | None:
    """Index of the first hop that lacks liquidity, or ``None`` if the part arrives."""
    g = net.graph
    for i, (ch, amt) in enumerate(zip(part.route, part.amounts.hop_amounts_msat, strict=True)):
        e = g.edge_index(ch.scid, ch.source)
        if net.liquidity_msat[e] - locked.get(e, 0.0) < amt:
            return i
    return None


def simulate_payment(
    net: SyntheticNetwork,
    strategy: Strategy,
    source: str,
    target: str,
    amount_msat: int,
    max_attempts: int = MAX_ROUTING_ATTEMPTS,
    out_edges: dict[str, list[int]] | None = None,
) -> PaymentResult:
    g = net.graph
    # The sender knows its own balances exactly; nobody else's.
    if out_edges is None:
        out_edges = out_edges_by_node(g)
    g.local_balances_msat = {g.channels[i].key: int(net.liquidity_msat[i]) for i in out_edges.get(source, [])}
    strategy.start(g)
    res = PaymentResult(strategy.name, amount_msat, False, 0, 0, 0)
    locked: dict[int, float] = {}
    delivered = 0
    fee = 0
    while delivered < amount_msat and res.attempts < max_attempts:
        res.attempts += 1
        t0 = time.perf_counter()
        try:
            plan = strategy.plan(source, target, amount_msat - delivered)
        except NoRouteError as err:
            res.planning_ms.append((time.perf_counter() - t0) * 1000.0)
            res.error = err.reason
            break
        res.planning_ms.append((time.perf_counter() - t0) * 1000.0)
        for part in plan.parts:
            res.parts_sent += 1
            failing = send_part(net, locked, part)
            if failing is None:
                for ch, amt in zip(part.route, part.amounts.hop_amounts_msat, strict=True):
                    e = g.edge_index(ch.scid, ch.source)
                    locked[e] = locked.get(e, 0.0) + amt
                delivered += part.amount_msat
                fee += part.fee_msat
                strategy.on_success(part)
            else:
                strategy.on_failure(part, failing)
    res.success = delivered == amount_msat
    res.fee_msat = fee if res.success else 0
    g.local_balances_msat = {}
    return res


def out_edges_by_node(graph: ChannelGraph) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, ch in enumerate(graph.channels):
        out.setdefault(ch.source, []).append(i)
    return out


def pick_pairs(net: SyntheticNetwork, count: int, seed: int, min_degree: int = 2) -> Sequence[tuple[str, str]]:
    """Random sender/recipient pairs; senders need ``min_degree`` channels (an LSP is connected)."""
    rng = np.random.default_rng(seed)
    g = net.graph
    deg = np.bincount(g.array("src"), minlength=g.node_count)
    senders = np.flatnonzero(deg >= max(min_degree, 1))
    names = g.node_names
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        s = int(rng.choice(senders))
        t = int(rng.integers(0, g.node_count))
        if s != t:
            pairs.append((names[s], names[t]))
    return pairs
