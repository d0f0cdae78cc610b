"""Report rendering from a hand-built result (pure logic; the live test renders a real run)."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from harness.report import charts
from harness.report.render import junit_xml, write_report
from harness.scenario.results import ChannelSnapshot, PaymentRecord, RunResult, ScenarioResult, StepResult
from harness.scenario.steps.expect import percentile

pytestmark = pytest.mark.unit


def run_result(run_id: str, *, fail: bool) -> RunResult:
    pays = [PaymentRecord("a", "b", 1000 * i, "SUCCEEDED", 1000 + i, 0.1 * i) for i in range(1, 11)]
    steps = [
        StepResult(0, "pay", "ten", payments=pays, detail="10/10 succeeded"),
        StepResult(
            1,
            "expect",
            "check",
            status="failed" if fail else "passed",
            message="fee 5 msat, expected <b>7</b>" if fail else "",
            failures=["x"] if fail else [],
            log_excerpt=["a: 2026 [ERR] HSWC: boom"] if fail else [],
        ),
        StepResult(2, "lsp", "balance", status="skipped", message="no LSP"),
    ]
    sc = ScenarioResult(
        "s1",
        "d",
        "pair",
        3,
        "s1.yaml",
        status="failed" if fail else "passed",
        steps=steps,
        nodes=["a", "b"],
        channels_before=[ChannelSnapshot("a", "b", 100_000, 100_000, 0, True)],
        channels_after=[ChannelSnapshot("a", "b", 100_000, 45_000, 55_000, True)],
    )
    return RunResult(
        run_id,
        "smoke",
        "process",
        f"2026-01-0{1 + fail}T00:00:00",
        status=sc.status,
        scenarios=[sc],
        versions={"lnd": "v0"},
    )


def test_percentile_nearest_rank() -> None:
    vals = [float(i) for i in range(1, 101)]
    assert (percentile(vals, 50), percentile(vals, 95), percentile(vals, 99)) == (50.0, 95.0, 99.0)
    assert percentile([], 50) == 0.0 and percentile([3.0], 99) == 3.0


def test_junit_counts_failures_and_skips() -> None:
    root = ET.fromstring(junit_xml(run_result("r1", fail=True)).split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "expected <b>7</b>" in (failure.get("message") or "")
    assert "[ERR] HSWC: boom" in (failure.text or "")


def test_report_escapes_text_and_index_lists_runs(tmp_path: Path) -> None:
    write_report(run_result("r1", fail=False), tmp_path)
    page = write_report(run_result("r2", fail=True), tmp_path)
    html = page.read_text()
    assert "expected &lt;b&gt;7&lt;/b&gt;" in html and "<b>7</b>" not in html
    assert 'class="err"' in html  # error log lines highlighted
    assert '"Segoe UI"' in html  # the inline CSS is not HTML-escaped (it would be ignored)
    index = (tmp_path / "index.html").read_text()
    assert index.index("r2/index.html") < index.index("r1/index.html")  # newest first
    assert "<polyline" in index


def test_topology_drawing_splits_each_channel_at_its_balance() -> None:
    svg = charts.topology_drawing(["a", "b"], [ChannelSnapshot("a", "b", 100, 25, 75, True)], size=400)
    assert svg.count("<line") == 2 and ">a<" in svg and ">b<" in svg
    assert "a: 25 sat | b: 75 sat" in svg
    inactive = charts.topology_drawing(["a", "b"], [ChannelSnapshot("a", "b", 100, 25, 75, False)])
    assert "stroke-dasharray" in inactive


def test_histogram_marks_percentiles() -> None:
    svg = charts.latency_histogram([0.1, 0.2, 0.3, 0.9], {"p50": 0.2, "p95": 0.9, "p99": 0.9})
    assert "p50 0.200s" in svg and "p99 0.900s" in svg
    assert charts.latency_histogram([], {}) == ""


def test_report_names_the_chain_and_the_lsps_clients_per_scenario(tmp_path: Path) -> None:
    result = run_result("r1", fail=False)
    result.scenarios[0].chain = "bitcoind"
    steps = result.scenarios[0].steps
    steps[0].outcome = {"client_implementation": "lab client on LND"}
    steps[1].outcome = {"client_implementation": "ldk-node 0.7.1 (lightning-liquidity)"}
    html = write_report(result, tmp_path).read_text()
    assert "LSPS clients: <b>lab client on LND, ldk-node 0.7.1 (lightning-liquidity)</b>" in html
    assert "on <b>bitcoind</b>" in html
