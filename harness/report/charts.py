"""Charts as inline SVG strings, drawn here so a report needs no JavaScript
library and no network access. Each function returns an ``<svg>`` element
(or an empty string when there is nothing to draw)."""

from __future__ import annotations

import math
from html import escape

from harness.scenario.results import ChannelSnapshot

FONT = 'font-family="Segoe UI,Roboto,Helvetica Neue,Arial,Liberation Sans,sans-serif" font-size="11"'
OK = "#2e9d5b"
BAD = "#d64545"
BLUE = "#3b6fd8"
GREY = "#8a94a6"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(v))
    # Multiples that divide into the 4 grid steps of _axes without fractions.
    for m in (1, 2, 4, 8, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:.0f}k" if v >= 10_000 else f"{v / 1000:.1f}k"
    if v >= 10 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.2f}"


def _axes(w: int, h: int, pad: tuple[int, int, int, int], ymax: float, ylabel: str) -> list[str]:
    left, top, right, bottom = pad
    out = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#999"/>']
    for k in range(5):
        v = ymax * k / 4
        y = h - bottom - (h - top - bottom) * k / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - right}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="#555">{_fmt(v)}</text>')
    out.append(
        f'<text x="12" y="{top + (h - top - bottom) / 2:.0f}" {FONT} fill="#555" '
        f'transform="rotate(-90 12 {top + (h - top - bottom) / 2:.0f})" text-anchor="middle">{escape(ylabel)}</text>'
    )
    return out


def latency_histogram(latencies_s: list[float], percentiles: dict[str, float], *, w: int = 560, h: int = 220) -> str:
    """Histogram of payment latencies with p50/p95/p99 markers."""
    if not latencies_s:
        return ""
    pad = (48, 24, 16, 36)
    left, top, right, bottom = pad
    lo, hi = min(latencies_s), max(latencies_s)
    if hi - lo < 0.01:  # all about equal: centre them in a small window
        lo, hi = max(0.0, lo - 0.01), hi + 0.01
    nb = min(20, max(5, int(math.sqrt(len(latencies_s))) + 1))
    width = (hi - lo) / nb or 0.01
    counts = [0] * nb
    for v in latencies_s:
        counts[min(nb - 1, int((v - lo) / width))] += 1
    ymax = _nice_max(max(counts) * 1.3)  # headroom for the percentile legend
    pw, ph = w - left - right, h - top - bottom
    bw = pw / nb
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">']
    out += _axes(w, h, pad, ymax, "payments")
    for i, c in enumerate(counts):
        bh = ph * c / ymax
        x = left + i * bw
        out.append(
            f'<rect x="{x + 1:.1f}" y="{h - bottom - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" fill="{BLUE}">'
            f"<title>{lo + i * width:.3f} to {lo + (i + 1) * width:.3f}s: {c}</title></rect>"
        )
    for k in range(0, nb + 1, max(1, nb // 5)):
        x = left + k * bw
        out.append(
            f'<text x="{x:.1f}" y="{h - bottom + 14}" text-anchor="middle" {FONT} fill="#555">'
            f"{lo + k * width:.2f}s</text>"
        )
    colors = {"p50": OK, "p95": "#d08a1e", "p99": BAD}
    for i, (name, v) in enumerate(percentiles.items()):
        x = left + pw * (v - lo) / (width * nb)
        colour = colors.get(name, GREY)
        out.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - bottom}" stroke="{colour}" stroke-dasharray="4 3"/>'
        )
        # Labels in a fixed legend (top right), so close percentiles do not overprint.
        out.append(
            f'<text x="{w - right - 4}" y="{top + 10 + 13 * i}" text-anchor="end" {FONT} fill="{colour}">'
            f"{name} {v:.3f}s</text>"
        )
    out.append(f'<text x="{left + pw / 2:.0f}" y="{h - 4}" text-anchor="middle" {FONT} fill="#555">latency</text>')
    out.append("</svg>")
    return "".join(out)


def success_bars(rows: list[tuple[str, int, int, int]], *, w: int = 560) -> str:
    """One horizontal bar per scenario: payments that succeeded (green), failed
    as the scenario expected (grey) and failed unexpectedly (red)."""
    rows = [r for r in rows if sum(r[1:]) > 0]
    if not rows:
        return ""
    row_h, left, right = 24, 170, 150
    h = 20 + row_h * len(rows)
    total_max = max(sum(r[1:]) for r in rows)
    pw = w - left - right
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">']
    for i, (name, ok, expected, bad) in enumerate(rows):
        y = 10 + i * row_h
        out.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" {FONT}>{escape(name[:28])}</text>')
        x = float(left)
        for count, colour, what in (
            (ok, OK, "succeeded"),
            (expected, GREY, "failed as expected"),
            (bad, BAD, "failed"),
        ):
            width = pw * count / total_max
            if count:
                out.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="16" fill="{colour}">'
                    f"<title>{count} {what}</title></rect>"
                )
            x += width
        total = ok + expected + bad
        label = f"{(ok + expected) / total:.0%} as expected, {total}"
        out.append(f'<text x="{x + 6:.1f}" y="{y + 15}" {FONT}>{label}</text>')
    out.append("</svg>")
    return "".join(out)


def fee_scatter(points: list[tuple[int, int, bool]], *, w: int = 560, h: int = 220) -> str:
    """Fee (msat) against amount (sat) per succeeded payment; red dots missed their expected fee."""
    if not points:
        return ""
    pad = (56, 16, 16, 36)
    left, top, right, bottom = pad
    xmax = _nice_max(max(p[0] for p in points))
    ymax = _nice_max(max(p[1] for p in points))
    pw, ph = w - left - right, h - top - bottom
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">']
    out += _axes(w, h, pad, ymax, "fee msat")
    for k in range(5):
        x = left + pw * k / 4
        out.append(
            f'<text x="{x:.1f}" y="{h - bottom + 14}" text-anchor="middle" {FONT} fill="#555">'
            f"{_fmt(xmax * k / 4)}</text>"
        )
    out.append(f'<text x="{left + pw / 2:.0f}" y="{h - 4}" text-anchor="middle" {FONT} fill="#555">amount sat</text>')
    for amt, fee, good in points:
        x = left + pw * amt / xmax
        y = h - bottom - ph * fee / ymax
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{BLUE if good else BAD}" fill-opacity="0.75">'
            f"<title>{amt} sat, fee {fee} msat</title></circle>"
        )
    out.append("</svg>")
    return "".join(out)


def balance_bars(before: list[ChannelSnapshot], after: list[ChannelSnapshot], *, w: int = 560) -> str:
    """Per channel, the initiator's share of capacity before (thin) and after (thick)."""
    def key(c: ChannelSnapshot) -> tuple[str, str]:
        return (c.a, c.b)

    b_map = {key(c): c for c in before}
    chans = after or before
    if not chans:
        return ""
    left, right, row_h = 120, 130, 34
    h = 24 + row_h * len(chans)
    pw = w - left - right
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">']
    out.append(f'<text x="{left}" y="12" {FONT} fill="#555">local share (left of the bar end) — before / after</text>')
    for i, c in enumerate(chans):
        y = 20 + i * row_h
        cap = max(c.capacity_sat, 1)
        out.append(f'<text x="{left - 6}" y="{y + 17}" text-anchor="end" {FONT}>{escape(c.a)} → {escape(c.b)}</text>')
        out.append(f'<rect x="{left}" y="{y + 2}" width="{pw}" height="10" fill="#e6e9ef"/>')
        prev = b_map.get(key(c))
        if prev is not None:
            out.append(
                f'<rect x="{left}" y="{y + 2}" width="{pw * prev.local_sat / cap:.1f}" height="10" fill="{GREY}">'
                f"<title>before: {prev.local_sat} / {cap} sat</title></rect>"
            )
        out.append(f'<rect x="{left}" y="{y + 14}" width="{pw}" height="12" fill="#e6e9ef"/>')
        out.append(
            f'<rect x="{left}" y="{y + 14}" width="{pw * c.local_sat / cap:.1f}" height="12" fill="{BLUE}">'
            f"<title>after: {c.local_sat} / {cap} sat</title></rect>"
        )
        delta = c.local_sat - prev.local_sat if prev else 0
        sign = "+" if delta > 0 else ""
        out.append(f'<text x="{left + pw + 6}" y="{y + 24}" {FONT}>{c.local_sat:,} ({sign}{delta:,})</text>')
    out.append("</svg>")
    return "".join(out)


def topology_drawing(nodes: list[str], channels: list[ChannelSnapshot], *, size: int = 420) -> str:
    """Nodes on a circle; each channel a line split in two at the balance
    point (the part nearer a node is that node's local balance)."""
    if not nodes:
        return ""
    cx = cy = size / 2
    r = size / 2 - 60
    pos: dict[str, tuple[float, float]] = {}
    for i, n in enumerate(nodes):
        a = -math.pi / 2 + 2 * math.pi * i / len(nodes)
        pos[n] = (cx + r * math.cos(a), cy + r * math.sin(a))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" role="img">'
    ]
    for c in channels:
        if c.a not in pos or c.b not in pos:
            continue
        (x1, y1), (x2, y2) = pos[c.a], pos[c.b]
        f = c.local_sat / max(c.capacity_sat, 1)
        mx, my = x1 + (x2 - x1) * f, y1 + (y2 - y1) * f
        dash = "" if c.active else ' stroke-dasharray="5 4"'
        tip = f"{c.a}: {c.local_sat:,} sat | {c.b}: {c.remote_sat:,} sat | capacity {c.capacity_sat:,}"
        out.append(f"<g><title>{escape(tip)}</title>")
        out.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{mx:.1f}" y2="{my:.1f}" stroke="{BLUE}" stroke-width="6"{dash}/>'
        )
        out.append(
            f'<line x1="{mx:.1f}" y1="{my:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#e0a030" stroke-width="6"{dash}/>'
        )
        # The label sits beside the line (offset along its normal), not on it.
        length = math.hypot(x2 - x1, y2 - y1) or 1.0
        nx, ny = -(y2 - y1) / length, (x2 - x1) / length
        tx, ty = (x1 + x2) / 2 + nx * 16, (y1 + y2) / 2 + ny * 16 + 4
        out.append(
            f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="middle" {FONT} fill="#333" '
            f'paint-order="stroke" stroke="#fff" stroke-width="3">{_fmt(c.local_sat)} | {_fmt(c.remote_sat)}</text></g>'
        )
    for n, (x, y) in pos.items():
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="22" fill="#fff" stroke="#333" stroke-width="2"/>')
        out.append(
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" {FONT} font-weight="bold">{escape(n)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def trend_spark(values: list[float], *, w: int = 120, h: int = 28, color: str = BLUE) -> str:
    if len(values) < 2:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    pts = " ".join(
        f"{w * i / (len(values) - 1):.1f},{h - 3 - (h - 6) * (v - lo) / span:.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
        f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/></svg>'
    )


def percentile_bars(rows: list[tuple[str, float, float, float]], *, w: int = 560) -> str:
    """Per request name: p50, p95 and p99 response time (ms) as grouped horizontal bars."""
    rows = [r for r in rows if r[3] > 0]
    if not rows:
        return ""
    left, right, row_h = 190, 70, 34
    h = 26 + row_h * len(rows)
    pw = w - left - right
    top = _nice_max(max(r[3] for r in rows))
    colours = (("p50", OK), ("p95", "#d08a1e"), ("p99", BAD))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">']
    for k, (name, colour) in enumerate(colours):
        out.append(f'<rect x="{left + 70 * k}" y="4" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{left + 14 + 70 * k}" y="13" {FONT}>{name}</text>')
    for i, (label, *values) in enumerate(rows):
        y = 22 + i * row_h
        out.append(f'<text x="{left - 6}" y="{y + 17}" text-anchor="end" {FONT}>{escape(label[:32])}</text>')
        for k, ((name, colour), v) in enumerate(zip(colours, values, strict=True)):
            out.append(
                f'<rect x="{left}" y="{y + 2 + 9 * k}" width="{pw * v / top:.1f}" height="8" fill="{colour}">'
                f"<title>{escape(label)} {name}: {v:.0f} ms</title></rect>"
            )
        out.append(f'<text x="{left + pw * values[2] / top + 6:.1f}" y="{y + 24}" {FONT}>{values[2]:.0f} ms</text>')
    out.append("</svg>")
    return "".join(out)


SERIES_COLOURS = (GREY, BLUE, "#d08a1e", OK, "#8e44ad", BAD)


def grouped_bars(
    categories: list[str],
    series: dict[str, list[float | None]],
    *,
    ylabel: str,
    value_fmt: str = "{:.0f}",
    ymax: float | None = None,
    w: int = 560,
    h: int = 240,
) -> str:
    """Vertical bars per category (x axis), one bar per series side by side, with a legend.
    ``None`` values (nothing measured) leave a gap with a dash. Each bar carries its
    value as a tooltip and, when there is room, as a label above it."""
    if not categories or not series:
        return ""
    values = [v for vs in series.values() for v in vs if v is not None]
    top = ymax if ymax is not None else _nice_max(max(values, default=0.0) * 1.15)
    pad = (52, 30, 12, 40)
    left, top_pad, right, bottom = pad
    pw, ph = w - left - right, h - top_pad - bottom
    group_w = pw / len(categories)
    bar_w = max(3.0, (group_w - 10) / len(series))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">']
    out += _axes(w, h, pad, top, ylabel)
    names = list(series)
    step = min(150.0, (w - left - 8) / len(names))  # the legend fits on one line
    for k, name in enumerate(names):
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        x = left + 4 + step * k
        out.append(f'<rect x="{x:.0f}" y="6" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14:.0f}" y="15" {FONT}>{escape(name[: int(step / 6.5)])}</text>')
    for i, cat in enumerate(categories):
        gx = left + group_w * i + 5
        for k, name in enumerate(names):
            v = series[name][i] if i < len(series[name]) else None
            x = gx + bar_w * k
            colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
            if v is None:
                out.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{h - bottom - 3}" text-anchor="middle" {FONT} fill="#999">'
                    f"&#8211;<title>{escape(name)} at {escape(cat)}: no data</title></text>"
                )
                continue
            bh = ph * min(v, top) / top
            label = value_fmt.format(v)
            out.append(
                f'<rect x="{x:.1f}" y="{h - bottom - bh:.1f}" width="{bar_w - 1:.1f}" height="{bh:.1f}" '
                f'fill="{colour}"><title>{escape(name)} at {escape(cat)}: {escape(label)}</title></rect>'
            )
            if bar_w >= 22:
                out.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{h - bottom - bh - 3:.1f}" text-anchor="middle" '
                    f'{FONT} fill="#333">{escape(label)}</text>'
                )
        out.append(
            f'<text x="{left + group_w * (i + 0.5):.1f}" y="{h - bottom + 14}" text-anchor="middle" '
            f'{FONT} fill="#555">{escape(cat)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
