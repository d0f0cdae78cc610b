"""HTML report of the routing simulation (``python -m bench.routing --report``), from a real
(small, fast) simulation run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import routing as bench_routing
from harness.report import charts
from harness.report.routing import render_routing, routing_view

pytestmark = pytest.mark.unit

SIZES = (10_000, 200_000, 1_000_000)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:  # type: ignore[type-arg]
    d = tmp_path_factory.mktemp("routing")
    out, report = d / "r.json", d / "r.html"
    graph = ["--nodes", "400", "--channels", "1600", "--payments", "4", "--seed", "3"]
    rc = bench_routing.main([*graph, "--sizes", ",".join(map(str, SIZES)), "--out", str(out), "--report", str(report)])
    assert rc == 0
    return json.loads(out.read_text()), report.read_text()


def _svg_titles(html: str) -> list[str]:
    return re.findall(r"<title>([^<]*)</title>", html)


def test_report_has_a_chart_per_figure_with_both_strategies_at_every_amount(run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    data, html = run
    assert html.startswith("<!doctype html>") and "<script src" not in html  # self-contained
    for heading in (
        "Success rate by amount",
        "Median fee ppm over payments both strategies completed",
        "Planning time per call",
    ):
        assert heading in html
    assert html.count("<svg") >= 6
    titles = _svg_titles(html)
    for name in ("lnd-apriori", "mcf-uniform"):
        for amount in ("10k", "200k", "1M"):
            # every bar (or its "no data" mark) names its strategy and amount
            assert any(t.startswith(f"{name} at {amount}:") for t in titles), (name, amount)
            assert any(t.startswith(f"{name} p50 at {amount}:") for t in titles), (name, amount)
    # The success bars show the measured rates.
    for row in data["rows"]:
        s = row["summary"]
        label = {10_000: "10k", 200_000: "200k", 1_000_000: "1M"}[row["amount_sat"]]
        assert f"{row['strategy']} at {label}: {s['success_rate'] * 100:.0f}" in titles
    # The full table lists every amount for both strategies.
    for sat in SIZES:
        assert html.count(f">{sat:,}<") >= 2


def test_targets_verdict_follows_the_numbers(run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    data, _ = run
    view = routing_view(data)
    assert {t["amount_sat"] for t in view["targets"]} == {200_000, 1_000_000}  # above 100k only
    for t in view["targets"]:
        assert t["met"] == (t["success"] > t["base_success"] and t["fee_ok"] is not False)
    # Make mcf lose at one amount: the banner turns to "missed".
    worse = json.loads(json.dumps(data))
    for row in worse["rows"]:
        if row["amount_sat"] == 1_000_000 and row["strategy"] != "lnd-apriori":
            row["summary"]["success"] = 0
    assert routing_view(worse)["status"] == "failed"
    assert "TARGETS MISSED" in render_routing(worse)


def test_report_from_saved_json(run: tuple[dict, str], tmp_path: Path) -> None:  # type: ignore[type-arg]
    data, _ = run
    src = tmp_path / "saved.json"
    src.write_text(json.dumps(data))
    assert bench_routing.main(["--from-json", str(src), "--report", str(tmp_path / "again.html")]) == 0
    assert "mcf-uniform" in (tmp_path / "again.html").read_text()


def test_grouped_bars_marks_missing_values() -> None:
    svg = charts.grouped_bars(["1M", "5M"], {"a": [10.0, None], "b": [20.0, 5.0]}, ylabel="ppm")
    assert svg.startswith("<svg") and svg.count("<rect") == 3 + 2  # 3 bars + 2 legend swatches
    assert "a at 5M: no data" in svg
    assert charts.grouped_bars([], {}, ylabel="x") == ""
