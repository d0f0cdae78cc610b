"""Integer min-cost-flow backends.

OR-tools' ``SimpleMinCostFlow`` (C++ cost scaling) is the backend: it solves the
few-thousand-arc problems the planner builds in milliseconds, and it is a core dependency
(its protobuf pin agrees with the LND stubs' runtime, see pyproject.toml). networkx's network
simplex is kept only for platforms without an OR-tools wheel and as an independent second
solver in the tests: same answers, pure Python, 10-100x slower.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lsp.routing.graph import IntArray


@dataclass(frozen=True, slots=True)
class FlowProblem:
    """Arcs ``tail[i] -> head[i]`` with integer ``capacity`` and per-unit ``cost``."""

    n_nodes: int
    tail: IntArray
    head: IntArray
    capacity: IntArray
    cost: IntArray
    source: int
    sink: int
    supply: int


class InfeasibleFlow(Exception):
    """The arcs cannot carry ``supply`` units from source to sink."""


def ortools_available() -> bool:
    try:
        from ortools.graph.python import min_cost_flow  # noqa: F401
    except ImportError:
        return False
    return True


def solve_ortools(p: FlowProblem) -> IntArray:
    from ortools.graph.python import min_cost_flow

    mcf = min_cost_flow.SimpleMinCostFlow()
    arcs = mcf.add_arcs_with_capacity_and_unit_cost(p.tail, p.head, p.capacity, p.cost)
    supplies = np.zeros(p.n_nodes, np.int64)
    supplies[p.source] = p.supply
    supplies[p.sink] = -p.supply
    mcf.set_nodes_supplies(np.arange(p.n_nodes), supplies)
    status = mcf.solve()
    if status != mcf.OPTIMAL:
        raise InfeasibleFlow(f"or-tools status {status}")
    return np.asarray(mcf.flows(arcs), np.int64)


def solve_networkx(p: FlowProblem) -> IntArray:
    import networkx as nx

    # network_simplex needs a simple DiGraph; parallel arcs get a private midpoint node.
    g = nx.DiGraph()
    g.add_node(p.source, demand=-p.supply)
    g.add_node(p.sink, demand=p.supply)
    for i, (u, v, c, w) in enumerate(zip(p.tail, p.head, p.capacity, p.cost, strict=True)):
        mid = ("arc", i)
        g.add_edge(int(u), mid, capacity=int(c), weight=int(w))
        g.add_edge(mid, int(v), capacity=int(c), weight=0)
    try:
        _, flow = nx.network_simplex(g)
    except nx.NetworkXUnfeasible as e:
        raise InfeasibleFlow(str(e)) from e
    return np.array([flow[int(u)][("arc", i)] for i, u in enumerate(p.tail)], np.int64)


def solve(p: FlowProblem, backend: str = "auto") -> IntArray:
    """Flow per arc of an optimal solution; raises ``InfeasibleFlow``."""
    if p.supply == 0:
        return np.zeros(len(p.tail), np.int64)
    if backend == "ortools" or (backend == "auto" and ortools_available()):
        return solve_ortools(p)
    return solve_networkx(p)
