"""Piecewise-linear convex approximation of the per-channel uncertainty cost ``-log P(x)``.

Min-cost-flow solvers need linear arc costs; a convex cost becomes several parallel arcs with
increasing unit cost, and the solver fills cheaper pieces first. ``-log P`` is convex for the
uniform prior but not for the bimodal one (the steep start is followed by a flat middle), so
we take the lower convex envelope of sampled points: that is the tightest convex function below
the true cost, keeps the pieces' slopes increasing, and is exactly what a flow solver can honour.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from lsp.routing.graph import FloatArray


def lower_convex_envelope(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the points on the lower convex hull of ``(xs, ys)`` (xs strictly increasing)."""
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # Drop b if it lies on or above the chord from a to i (cross product >= 0).
            if (ys[b] - ys[a]) * (xs[i] - xs[a]) >= (ys[i] - ys[a]) * (xs[b] - xs[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def convex_pieces(xs: Sequence[float], costs: Sequence[float]) -> list[tuple[float, float]]:
    """``(width, slope)`` pieces of the convex envelope of ``costs`` sampled at ``xs``.

    Slopes are non-decreasing by construction; widths sum to ``xs[-1] - xs[0]``.
    """
    hull = lower_convex_envelope(xs, costs)
    pieces: list[tuple[float, float]] = []
    for a, b in itertools.pairwise(hull):
        width = xs[b] - xs[a]
        if width > 0:
            pieces.append((width, (costs[b] - costs[a]) / width))
    return pieces


def piece_breakpoints(start: FloatArray, end: FloatArray, n_pieces: int) -> FloatArray:
    """Breakpoints (shape ``(m, n_pieces + 1)``) for ``m`` channels, denser near ``end``.

    ``-log P`` rises steeply toward the upper bound, so equal widths would waste pieces on
    the flat start; a quadratic spacing puts resolution where the cost changes.
    """
    t = 1.0 - (1.0 - np.linspace(0.0, 1.0, n_pieces + 1)) ** 1.5
    return start[:, None] + (end - start)[:, None] * t[None, :]
