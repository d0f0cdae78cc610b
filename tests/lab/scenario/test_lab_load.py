"""`lab load`: Locust (one master, two workers) against the LSP on a live star5 lab, folded into the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path


def test_distributed_load_run_reports_locust_and_lnd_figures(tmp_path: Path) -> None:
    env = {**os.environ, "LAB_RUNS_DIR": str(tmp_path / "labs"), "COLUMNS": "200"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "load",
            "--users",
            "6",
            "--spawn-rate",
            "3",
            "--duration",
            "20",
            "--workers",
            "2",
            "--report",
            str(tmp_path / "reports"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "1 master + 2 workers" in r.stderr
    m = re.search(r"^report: (\S+)$", r.stdout.strip().splitlines()[-1])
    assert m
    page = Path(m.group(1))
    load = json.loads((page.parent / "results.json").read_text())["load"]
    assert load["workers"] == 2
    agg = next(s for s in load["stats"] if s["name"] == "Aggregated")
    assert agg["requests"] >= 20 and agg["failures"] == 0, agg
    assert agg["p50_ms"] > 0 and agg["p99_ms"] >= agg["p95_ms"] >= agg["p50_ms"]
    names = {s["name"] for s in load["stats"]}
    assert {"/api/balance", "/api/invoices/create", "/api/payments/send"} <= names
    # The users' payments really went through LND: the hub settled some during the run.
    assert load["lnd"]["payments settled by the hub during the run"] > 0, load["lnd"]
    assert "connect /ws/lightning" in names  # the WebSocket listener connected with a signed query
    assert {"lnd hub", "lsp serve"} <= set(load["resources"]) and load["resources"]["lnd hub"]["rss_mb"] > 10
    assert any(k.startswith("locust worker") for k in load["resources"])
    html = page.read_text()
    assert "Load (Locust)" in html and "Aggregated" in html and "HTLCs in flight" in html
    assert (page.parent / "locust.log").exists()
