"""Write a run's report: ``<root>/<run-id>/index.html`` (self-contained),
``junit.xml``, ``results.json``, and refresh ``<root>/index.html`` (all runs)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from harness.report import charts
from harness.scenario.results import RunResult, ScenarioResult, result_from_json
from harness.scenario.steps.expect import percentile

TEMPLATES = Path(__file__).parent / "templates"
REPORTS_DIR = Path(__file__).resolve().parent.parent.parent / "reports"


@dataclass
class Figures:
    payments: int
    succeeded: int
    success_rate: float
    p50_s: float
    p95_s: float
    p99_s: float
    fees_msat: int
    steps: int
    steps_failed: int
    failed_as_expected: int


def figures(scenarios: list[ScenarioResult]) -> Figures:
    pays = [p for sc in scenarios for p in sc.payments]
    ok = [p for p in pays if p.status == "SUCCEEDED"]
    lat = [p.latency_s for p in ok]
    steps = [s for sc in scenarios for s in sc.steps]
    return Figures(
        payments=len(pays),
        succeeded=len(ok),
        success_rate=len(ok) / len(pays) if pays else 1.0,
        p50_s=percentile(lat, 50),
        p95_s=percentile(lat, 95),
        p99_s=percentile(lat, 99),
        fees_msat=sum(p.fee_msat for p in ok),
        steps=len(steps),
        steps_failed=sum(s.status in ("failed", "error") for s in steps),
        failed_as_expected=sum(p.status == "FAILED" and p.expected_status == "FAILED" for p in pays),
    )


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    env.filters["svg"] = lambda s: Markup(s)  # our own generated SVG, escaped where it embeds text
    env.filters["pct"] = lambda v: f"{v:.0%}" if v * 100 == int(v * 100) else f"{v:.1%}"
    env.filters["secs"] = lambda v: f"{v:.2f}s" if v < 60 else f"{int(v // 60)}m{v % 60:04.1f}s"
    return env


def _scenario_view(sc: ScenarioResult) -> dict[str, Any]:
    ok = [p for p in sc.payments if p.status == "SUCCEEDED"]
    lat = [p.latency_s for p in ok]
    pct = {"p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99)} if lat else {}
    return {
        "sc": sc,
        "fig": figures([sc]),
        "histogram": charts.latency_histogram(lat, pct),
        "fees": charts.fee_scatter([(p.amount_sat, p.fee_msat, p.expected_fee_msat in (None, p.fee_msat)) for p in ok]),
        "balances": charts.balance_bars(sc.channels_before, sc.channels_after),
        "topology": charts.topology_drawing(sc.nodes, sc.channels_after or sc.channels_before),
    }


def _outcomes(sc: ScenarioResult) -> tuple[str, int, int, int]:
    ok = sum(p.status == "SUCCEEDED" for p in sc.payments)
    expected = sum(p.status == "FAILED" and p.expected_status == "FAILED" for p in sc.payments)
    return sc.name, ok, expected, len(sc.payments) - ok - expected


def render_run(run: RunResult) -> str:
    ok = [p for p in run.payments if p.status == "SUCCEEDED"]
    lat = [p.latency_s for p in ok]
    fig = figures(run.scenarios)
    pct = {"p50": fig.p50_s, "p95": fig.p95_s, "p99": fig.p99_s} if lat else {}
    success = charts.success_bars([_outcomes(sc) for sc in run.scenarios])
    return (
        _env()
        .get_template("run.html.j2")
        .render(
            run=run,
            fig=fig,
            step_counts={
                st: n
                for st in ("passed", "failed", "error", "skipped")
                if (n := sum(x.status == st for sc in run.scenarios for x in sc.steps))
            },
            histogram=charts.latency_histogram(lat, pct),
            success=success,
            scenarios=[_scenario_view(sc) for sc in run.scenarios],
            load=run.load,
            load_chart=charts.percentile_bars(
                [(f"{x.method} {x.name}".strip(), x.p50_ms, x.p95_ms, x.p99_ms) for x in run.load.stats]
            )
            if run.load
            else "",
        )
    )


def junit_xml(run: RunResult) -> str:
    """One testsuite per scenario, one testcase per step (CI systems read this)."""
    root = ET.Element("testsuites", name=f"lab run {run.target}", time=f"{run.duration_s:.2f}")
    for sc in run.scenarios:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=sc.name,
            tests=str(len(sc.steps)),
            failures=str(sum(s.status == "failed" for s in sc.steps)),
            errors=str(sum(s.status == "error" for s in sc.steps)),
            skipped=str(sum(s.status == "skipped" for s in sc.steps)),
            time=f"{sc.duration_s:.2f}",
        )
        for st in sc.steps:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"scenario.{sc.name}",
                name=f"{st.index:02d} {st.name}",
                time=f"{st.duration_s:.3f}",
            )
            if st.status in ("failed", "error"):
                el = ET.SubElement(case, "failure" if st.status == "failed" else "error", message=st.message[:500])
                el.text = "\n".join([*st.failures, "", *st.log_excerpt])
            elif st.status == "skipped":
                ET.SubElement(case, "skipped", message=st.message[:500])
        if sc.message and sc.status == "error" and not any(s.status == "error" for s in sc.steps):
            case = ET.SubElement(suite, "testcase", classname=f"scenario.{sc.name}", name="bring-up")
            ET.SubElement(case, "error", message=sc.message[:500])
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def _past_runs(root: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in sorted(root.glob("*/results.json")):
        try:
            run = result_from_json(json.loads(f.read_text()))
        except (ValueError, TypeError, KeyError):
            continue  # a results.json from an older format: leave it out of the index
        fig = figures(run.scenarios)
        load_rps = None
        if run.load is not None:
            agg = [s for s in run.load.stats if s.name == "Aggregated"]
            load_rps = agg[0].rps if agg else None
        rows.append({"run": run, "fig": fig, "href": f"{f.parent.name}/index.html", "load_rps": load_rps})
    rows.sort(key=lambda r: r["run"].started)
    return rows


def render_index(root: Path) -> str:
    rows = _past_runs(root)
    trend = {
        "p95": charts.trend_spark([r["fig"].p95_s for r in rows if r["fig"].payments]),
        "rate": charts.trend_spark([r["fig"].success_rate for r in rows if r["fig"].payments], color=charts.OK),
        "duration": charts.trend_spark([r["run"].duration_s for r in rows], color=charts.GREY),
    }
    return _env().get_template("index.html.j2").render(rows=list(reversed(rows)), trend=trend)


def write_report(run: RunResult, root: Path = REPORTS_DIR) -> Path:
    out = root / run.run_id
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(run.to_json(), indent=1))
    (out / "junit.xml").write_text(junit_xml(run))
    (out / "index.html").write_text(render_run(run))
    (root / "index.html").write_text(render_index(root))
    return out / "index.html"
