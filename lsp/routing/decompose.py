"""Decomposition of an s-t flow into paths (and discarded cycles).

Any feasible flow splits into at most ``|E|`` paths and cycles. Cycles carry nothing from the
sender to the recipient, so they are cancelled rather than paid for.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FlowEdge:
    edge_id: int
    tail: Hashable
    head: Hashable
    flow: int


def decompose_flow(edges: Iterable[FlowEdge], source: Hashable, target: Hashable) -> list[tuple[list[int], int]]:
    """Split a flow into ``(edge ids from source to target, amount)`` paths.

    The flow must conserve at every node except ``source`` and ``target``. Paths are returned
    largest first so that callers which must round amounts can put the remainder on the
    sturdiest part.
    """
    out_edges: dict[Hashable, list[list[int | Hashable]]] = defaultdict(list)
    remaining: dict[int, int] = {}
    heads: dict[int, Hashable] = {}
    for e in edges:
        if e.flow > 0 and e.tail != e.head:
            out_edges[e.tail].append([e.edge_id, e.head])
            remaining[e.edge_id] = remaining.get(e.edge_id, 0) + e.flow
            heads[e.edge_id] = e.head

    def next_edge(node: Hashable) -> int | None:
        lst = out_edges.get(node)
        while lst:
            eid = lst[-1][0]
            assert isinstance(eid, int)
            if remaining[eid] > 0:
                return eid
            lst.pop()
        return None

    paths: list[tuple[list[int], int]] = []
    while True:
        path: list[int] = []
        pos: dict[Hashable, int] = {source: 0}
        node = source
        while node != target:
            eid = next_edge(node)
            if eid is None:
                break
            path.append(eid)
            node = heads[eid]
            if node in pos:
                # A cycle: cancel it and resume the walk from where it began.
                cyc = path[pos[node] :]
                m = min(remaining[c] for c in cyc)
                for c in cyc:
                    remaining[c] -= m
                del path[pos[node] :]
                for n in [k for k, v in pos.items() if v > pos[node]]:
                    del pos[n]
                continue
            pos[node] = len(path)
        if node != target or not path:
            break
        amt = min(remaining[eid] for eid in path)
        for eid in path:
            remaining[eid] -= amt
        paths.append((path, amt))
    merged: dict[tuple[int, ...], int] = {}
    for p, a in paths:
        merged[tuple(p)] = merged.get(tuple(p), 0) + a
    return sorted(((list(p), a) for p, a in merged.items()), key=lambda x: -x[1])
