"""`lab run` against live nodes: the report a release manager reads, and the exit code CI gates on."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from lncore.versions import LND_VERSION

PASSING = """\
name: tiny-pass
description: keysend and an expected failure on pair
topology: pair
seed: 99
steps:
  - kind: keysend
    name: tips
    from: nodea
    to: nodeb
    amount_sat: {dist: uniform, low: 1000, high: 3000}
    count: 3
    expect: {status: SUCCEEDED, fee_msat: 0}
  - kind: pay
    name: too big
    from: nodea
    to: nodeb
    amount_sat: 1500000
    expect: {status: FAILED, failure_reason: FAILURE_REASON_INSUFFICIENT_BALANCE}
  - kind: expect
    payments: [{step: tips, count: 3, min_success_rate: 1.0}]
    channels: [{node: nodea, peer: nodeb, state: active}]
  - {kind: lsp, call: balance}
"""

FAILING = """\
name: tiny-fail
description: expects a fee the channel does not charge
topology: pair
seed: 1
steps:
  - kind: pay
    name: wrong fee
    from: nodea
    to: nodeb
    amount_sat: 5000
    expect: {status: SUCCEEDED, fee_msat: 777}
  - kind: mine
    blocks: 1
"""


def lab_run(target: Path, report: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_RUNS_DIR": str(tmp_path / "labs"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(target), "--runtime", "process", "--report", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def report_path(stdout: str) -> Path:
    m = re.search(r"^report: (\S+)$", stdout.strip().splitlines()[-1])
    assert m, f"last line should name the report: {stdout!r}"
    return Path(m.group(1))


def test_passing_scenario_writes_a_self_contained_report(tmp_path: Path) -> None:
    sc = tmp_path / "tiny-pass.yaml"
    sc.write_text(PASSING)
    reports = tmp_path / "reports"
    r = lab_run(sc, reports, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[1/4] keysend: tips" in r.stderr and "PASSED" in r.stderr
    page = report_path(r.stdout)
    assert page.parent.parent == reports and page.exists()

    html = page.read_text()
    assert "tiny-pass" in html and ">PASSED<" in html
    assert LND_VERSION in html  # LND version from lncore/versions.py
    assert "seed · tiny-pass" in html
    assert html.count("<svg") >= 4  # latency histogram, success bars, topology, balances
    assert "FAILURE_REASON_INSUFFICIENT_BALANCE" in html
    # self-contained: nothing fetched from anywhere
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")

    data = json.loads((page.parent / "results.json").read_text())
    assert data["status"] == "passed" and data["runtime"] == "process"
    steps = data["scenarios"][0]["steps"]
    # no LSP in this scenario: the lsp step is skipped, not failed
    assert [s["status"] for s in steps] == ["passed", "passed", "passed", "skipped"]
    assert "no LSP runs" in steps[3]["message"]
    tips = steps[0]["payments"]
    assert len(tips) == 3 and all(p["status"] == "SUCCEEDED" and p["fee_msat"] == 0 for p in tips)
    assert all(1000 <= p["amount_sat"] <= 3000 for p in tips)
    assert steps[1]["payments"][0]["status"] == "FAILED"
    after = data["scenarios"][0]["channels_after"][0]
    assert after["a"] == "nodea" and after["remote_sat"] == sum(p["amount_sat"] for p in tips)

    junit = ET.parse(page.parent / "junit.xml").getroot()
    suite = junit.find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "0"
    assert suite.get("skipped") == "1"

    index = (reports / "index.html").read_text()
    assert page.parent.name in index and "tiny-pass" in index

    # Same seed, same amounts: a second run replays the identical plan.
    r2 = lab_run(sc, reports, tmp_path)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    data2 = json.loads((report_path(r2.stdout).parent / "results.json").read_text())
    assert [p["amount_sat"] for p in data2["scenarios"][0]["steps"][0]["payments"]] == [p["amount_sat"] for p in tips]
    index = (reports / "index.html").read_text()
    assert index.count("tiny-pass") >= 2 and "<polyline" in index  # trend line over the two runs


def test_failed_expectation_exits_non_zero_with_the_reason_and_node_logs(tmp_path: Path) -> None:
    sc = tmp_path / "tiny-fail.yaml"
    sc.write_text(FAILING)
    reports = tmp_path / "reports"
    r = lab_run(sc, reports, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "fee 0 msat, expected 777 msat" in r.stderr
    page = report_path(r.stdout)
    html = page.read_text()
    assert ">FAILED<" in html and "fee 0 msat, expected 777 msat" in html
    assert "node log lines while this step ran" in html and "nodea: " in html
    data = json.loads((page.parent / "results.json").read_text())
    assert data["status"] == "failed"
    steps = data["scenarios"][0]["steps"]
    assert steps[0]["status"] == "failed" and steps[1]["status"] == "passed"  # the run went on
    assert steps[0]["log_excerpt"], "a failed step carries the node log lines around it"
    junit = ET.parse(page.parent / "junit.xml").getroot()
    failure = junit.find("testsuite/testcase/failure")
    assert failure is not None and "expected 777 msat" in (failure.get("message") or "")


def test_invalid_scenario_is_refused_before_any_node_starts(tmp_path: Path) -> None:
    sc = tmp_path / "bad.yaml"
    sc.write_text(FAILING.replace("to: nodeb", "to: nodez"))
    r = lab_run(sc, tmp_path / "reports", tmp_path)
    assert r.returncode == 1
    assert "steps[0].to (line 9): unknown node 'nodez'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "labs").exists() or not any((tmp_path / "labs").iterdir())
