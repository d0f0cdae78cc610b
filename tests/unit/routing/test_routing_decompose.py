"""Flow decomposition into s-t paths."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.routing.decompose import FlowEdge, decompose_flow

pytestmark = pytest.mark.unit


def test_diamond_splits_into_two_paths_largest_first() -> None:
    edges = [FlowEdge(0, "s", "a", 3), FlowEdge(1, "a", "t", 3), FlowEdge(2, "s", "b", 5), FlowEdge(3, "b", "t", 5)]
    assert decompose_flow(edges, "s", "t") == [([2, 3], 5), ([0, 1], 3)]


def test_cycles_are_cancelled() -> None:
    edges = [
        FlowEdge(0, "s", "a", 2),
        FlowEdge(1, "a", "t", 2),
        FlowEdge(2, "a", "b", 7),
        FlowEdge(3, "b", "a", 7),  # a 7-unit cycle a->b->a
    ]
    assert decompose_flow(edges, "s", "t") == [([0, 1], 2)]


def test_parallel_edges_stay_distinct() -> None:
    edges = [FlowEdge(0, "s", "t", 1), FlowEdge(1, "s", "t", 4)]
    assert sorted(decompose_flow(edges, "s", "t")) == [([0], 1), ([1], 4)]


@settings(max_examples=150, deadline=None)
@given(
    paths=st.lists(
        st.tuples(st.lists(st.integers(1, 6), max_size=4, unique=True), st.integers(1, 9)), min_size=1, max_size=6
    ),
    cycles=st.lists(
        st.tuples(st.lists(st.integers(1, 6), min_size=2, max_size=4, unique=True), st.integers(1, 9)), max_size=3
    ),
)
def test_random_flows_decompose_exactly(
    paths: list[tuple[list[int], int]], cycles: list[tuple[list[int], int]]
) -> None:
    # Build a flow as a sum of s(0)-t(7) paths and cycles over nodes 1..6; one edge id per arc.
    flow: Counter[tuple[int, int]] = Counter()
    total = 0
    for mids, amt in paths:
        nodes = [0, *mids, 7]
        for u, v in itertools.pairwise(nodes):
            flow[(u, v)] += amt
        total += amt
    for ring, amt in cycles:
        for u, v in zip(ring, ring[1:] + ring[:1], strict=False):
            flow[(u, v)] += amt
    ids = {arc: i for i, arc in enumerate(flow)}
    edges = [FlowEdge(ids[a], a[0], a[1], f) for a, f in flow.items()]
    out = decompose_flow(edges, 0, 7)
    assert sum(a for _, a in out) == total
    used: Counter[int] = Counter()
    arcs = {i: a for a, i in ids.items()}
    for path, amt in out:
        assert arcs[path[0]][0] == 0 and arcs[path[-1]][1] == 7
        for e1, e2 in itertools.pairwise(path):
            assert arcs[e1][1] == arcs[e2][0]
        for e in path:
            used[e] += amt
    assert all(used[i] <= flow[a] for a, i in ids.items())
