"""Piecewise linearisation: convex envelope, increasing slopes, agreement of both implementations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.routing.linearize import convex_pieces, lower_convex_envelope, piece_breakpoints
from lsp.routing.liquidity import Prior, success_probability_array
from lsp.routing.mcf import gcm_slopes

pytestmark = pytest.mark.unit


def test_envelope_of_convex_points_keeps_all_points() -> None:
    xs = [0, 1, 2, 3, 4]
    ys = [0, 1, 4, 9, 16]
    assert lower_convex_envelope(xs, ys) == [0, 1, 2, 3, 4]


def test_envelope_drops_points_above_the_chord() -> None:
    # Concave bump in the middle (like the bimodal prior's flat section) is bridged.
    xs = [0, 1, 2, 3]
    ys = [0, 2, 2.5, 3]
    assert lower_convex_envelope(xs, ys) == [0, 3]
    assert convex_pieces(xs, ys) == [(3, 1.0)]


@pytest.mark.parametrize("prior", list(Prior))
def test_pieces_of_uncertainty_cost_are_convex_and_cover_the_range(prior: Prior) -> None:
    cap = 5_000_000_000.0
    bp = piece_breakpoints(np.array([0.0]), np.array([0.95 * cap]), 6)[0]
    cost = -np.log(
        success_probability_array(prior, np.full(len(bp), cap), np.zeros(len(bp)), np.full(len(bp), cap + 1), bp)
    )
    pieces = convex_pieces(list(bp), list(cost))
    slopes = [s for _, s in pieces]
    assert all(b >= a for a, b in itertools.pairwise(slopes))
    assert sum(w for w, _ in pieces) == pytest.approx(0.95 * cap)
    assert all(s >= 0 for s in slopes)


def test_breakpoints_are_increasing_and_denser_near_the_end() -> None:
    bp = piece_breakpoints(np.array([10.0]), np.array([110.0]), 5)[0]
    assert bp[0] == 10.0 and bp[-1] == pytest.approx(110.0)
    widths = np.diff(bp)
    assert np.all(widths > 0)
    assert widths[-1] < widths[0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.floats(-5, 5)), min_size=1, max_size=7))
def test_vectorised_gcm_equals_hull_envelope(segments: list[tuple[int, float]]) -> None:
    xs = [0.0]
    ys = [0.0]
    for w, y in segments:
        xs.append(xs[-1] + w)
        ys.append(y)
    slopes = gcm_slopes(np.array([xs]), np.array([ys]))[0]
    assert np.all(np.diff(slopes) >= -1e-9)
    # Reconstruct the envelope from the hull and compare slope per original piece.
    hull = lower_convex_envelope(xs, ys)
    for i in range(len(xs) - 1):
        a = max(h for h in hull if h <= i)
        b = min(h for h in hull if h >= i + 1)
        assert slopes[i] == pytest.approx((ys[b] - ys[a]) / (xs[b] - xs[a]), abs=1e-9)
