"""Bad arguments to `lab bench routing` are refused naming the option, before any work (found trying
`--nodes 1` as a new user would: it ended in an IndexError traceback)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from harness.cli import main

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--nodes", "1"], "--nodes must be within [10, 200000] (got 1)"),
        (["--nodes", "100", "--channels", "10"], "--channels must be within [99, 2000000] (got 10)"),
        (["--payments", "0"], "--payments must be within [1, 1000] (got 0)"),
    ],
)
def test_bench_routing_refuses_a_graph_it_cannot_build(args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["bench", "routing", "--live-rounds", "0", *args])
    assert result.exit_code == 2
    assert says in result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--concurrency", "1,0"], "'0' is not a concurrency in 1..16"),
        (["--concurrency", "four"], "'four' is not a concurrency in 1..16"),
        (["--db", "mysql://x"], "'mysql://x' is neither 'sqlite' nor a database URL"),
        # 2 x (3 x 500 x (1,000 + 10 max fee) + 10,000 margin)
        (["--payments", "500", "--db", "sqlite", "--db", "sqlite"], "need 3,050,000 sat of client funding"),
    ],
)
def test_bench_lsp_refuses_what_it_cannot_run_before_starting_a_lab(args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["bench", "lsp", *args])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output


def test_bench_kyc_usage_refuses_a_database_it_cannot_use_and_runs_small() -> None:
    bad = CliRunner().invoke(main, ["bench", "kyc-usage", "--db", "mysql://x"])
    assert bad.exit_code == 2 and "'mysql://x' is not a postgresql:// URL" in bad.output
    small = CliRunner().invoke(main, ["bench", "kyc-usage", "--payments", "1000", "--queries", "2"])
    assert small.exit_code == 0, small.output
    assert "sqlite: 1,000 payments over 180 days; usage query" in small.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--runs", "0"], "'--runs': 0 is not in the range 1<=x<=20"),
        (["--runs", "21"], "'--runs': 21 is not in the range 1<=x<=20"),
        (["--runtime", "k8s"], "'--runtime': 'k8s' is not one of 'process', 'docker'"),
    ],
)
def test_bench_hosted_refuses_bad_options_before_starting_a_lab(args: list[str], says: str) -> None:
    result = CliRunner().invoke(main, ["bench", "hosted", *args])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
