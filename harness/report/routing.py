"""HTML report of a routing simulation (``python -m bench.routing --report``), in the same
self-contained format and style as the scenario reports (``lab run``): banner, cards, SVG
charts, tables; no JavaScript libraries and no network access.

Input is the JSON ``bench.routing --out`` writes: ``{"args": {...}, "elapsed_s": ...,
"rows": [{"amount_sat", "strategy", "summary": {...}}]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report import charts
from harness.report.render import _env

BASELINE = "lnd-apriori"
TARGET_ABOVE_SAT = 100_000
"""The routing issue's target: better success rate and fees than the baseline above this amount."""


def _amount(sat: int) -> str:
    return f"{sat / 1_000_000:g}M" if sat >= 1_000_000 else f"{sat / 1000:g}k"


def routing_view(data: dict[str, Any]) -> dict[str, Any]:
    """Everything the template shows, computed from the benchmark JSON."""
    rows = data["rows"]
    amounts = sorted({int(r["amount_sat"]) for r in rows})
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    by = {(int(r["amount_sat"]), r["strategy"]): r["summary"] for r in rows}
    baseline = BASELINE if BASELINE in strategies else strategies[0]
    others = [s for s in strategies if s != baseline]
    cats = [_amount(a) for a in amounts]

    def col(key: str, name: str, scale: float = 1.0) -> list[float | None]:
        out: list[float | None] = []
        for a in amounts:
            v = by.get((a, name), {}).get(key)
            out.append(None if v is None else float(v) * scale)
        return out

    targets = []
    for a in amounts:
        if a <= TARGET_ABOVE_SAT:
            continue
        base = by.get((a, baseline))
        for name in others:
            s = by.get((a, name))
            if base is None or s is None:
                continue
            fee, base_fee = s.get("fee_ppm_median_both_ok"), base.get("fee_ppm_median_both_ok")
            success_ok = s["success"] > base["success"]
            fee_ok = None if fee is None or base_fee is None else fee < base_fee
            targets.append(
                {
                    "amount_sat": a,
                    "strategy": name,
                    "success": s["success"],
                    "base_success": base["success"],
                    "success_ok": success_ok,
                    "fee": fee,
                    "base_fee": base_fee,
                    "fee_ok": fee_ok,
                    "both_ok": s.get("both_ok"),
                    "met": success_ok and fee_ok is not False,
                }
            )
    ordered = [baseline, *others]
    charts_ = {
        "success": charts.grouped_bars(
            cats, {n: col("success_rate", n, 100.0) for n in ordered}, ylabel="success %", ymax=100.0
        ),
        "success_feasible": charts.grouped_bars(
            cats, {n: col("success_rate_feasible", n, 100.0) for n in ordered}, ylabel="success/feasible %", ymax=100.0
        ),
        "fee_both": charts.grouped_bars(
            cats, {n: col("fee_ppm_median_both_ok", n) for n in ordered}, ylabel="fee ppm (both ok)"
        ),
        "fee_own": charts.grouped_bars(cats, {n: col("fee_ppm_median", n) for n in ordered}, ylabel="fee ppm (own ok)"),
        "plan_ms": charts.grouped_bars(
            cats,
            {f"{n} {q}": col(f"plan_ms_{q}", n) for n in ordered for q in ("p50", "p95")},
            ylabel="planning ms",
            value_fmt="{:.0f}",
        ),
        "parts": charts.grouped_bars(
            cats, {n: col("parts_mean", n) for n in ordered}, ylabel="HTLCs per payment", value_fmt="{:.1f}"
        ),
    }
    table = [dict(amount_sat=a, strategy=n, s=by[(a, n)]) for a in amounts for n in ordered if (a, n) in by]
    return {
        "args": data.get("args", {}),
        "elapsed_s": float(data.get("elapsed_s", 0.0)),
        "amounts": amounts,
        "strategies": ordered,
        "baseline": baseline,
        "targets": targets,
        "status": "passed" if targets and all(t["met"] for t in targets) else "failed",
        "charts": charts_,
        "table": table,
        "payments": max((s["payments"] for s in by.values()), default=0),
    }


def render_routing(data: dict[str, Any]) -> str:
    return _env().get_template("routing.html.j2").render(v=routing_view(data))


def write_routing_report(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_routing(data))
    return path
