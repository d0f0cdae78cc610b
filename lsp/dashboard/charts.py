"""Tiny inline-SVG charts (no JavaScript, no chart library): bars over time and a histogram."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def stacked_bars(
    labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]], *, width: int = 560, height: int = 160
) -> str:
    """series: (name, colour, values per label). Returns an <svg> string with a legend."""
    n = max(len(labels), 1)
    totals = [sum(s[2][i] for s in series) for i in range(len(labels))]
    top = max([*totals, 1])
    pad_l, pad_b, pad_t = 30, 18, 16
    bw = (width - pad_l) / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="2" y="{pad_t}" font-size="10" fill="#666">{top}</text>',
        f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width}" y2="{height - pad_b}" stroke="#bbb"/>',
    ]
    usable = height - pad_b - pad_t
    for i, label in enumerate(labels):
        y: float = height - pad_b
        for name, colour, values in series:
            v = values[i]
            if v <= 0:
                continue
            h = usable * v / top
            y -= h
            parts.append(
                f'<rect x="{pad_l + i * bw + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(label)} {escape(name)}: {v}</title></rect>'
            )
        if n <= 12 or i % max(n // 8, 1) == 0:
            parts.append(
                f'<text x="{pad_l + i * bw + bw / 2:.1f}" y="{height - 4}" font-size="9" text-anchor="middle" '
                f'fill="#666">{escape(label)}</text>'
            )
    x = pad_l
    for name, colour, _ in series:
        parts.append(f'<rect x="{x}" y="2" width="9" height="9" fill="{colour}"/>')
        parts.append(f'<text x="{x + 12}" y="10" font-size="10">{escape(name)}</text>')
        x += 14 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def histogram(values: Sequence[float], edges: Sequence[float], unit: str, colour: str = "#3b6ea5") -> str:
    counts = [0] * len(edges)
    for v in values:
        idx = next((i for i, e in enumerate(edges) if v <= e), len(edges) - 1)
        counts[idx] += 1
    labels = [f"≤{e:g}{unit}" for e in edges[:-1]] + [f">{edges[-2]:g}{unit}"]
    return stacked_bars(labels, [("payments", colour, counts)])
