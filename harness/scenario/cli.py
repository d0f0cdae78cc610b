"""``lab run`` (replay a suite or scenario, write the report, gate on expectations)
and ``lab load`` (Locust against the LSP on a star5 lab). Registered on the
``lab`` group by harness/cli.py."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from harness.runtime import RUNTIMES


def register(main: click.Group, *, console: Console, out: Console) -> None:
    @main.command("run")
    @click.argument("target")
    @click.option(
        "--runtime",
        type=click.Choice(RUNTIMES),
        # The CLI's default, as for `lab up`; pytest's --lab-runtime stays `process`.
        default="auto",
        show_default=True,
        help="auto: Docker when a daemon answers (DOCKER_HOST or scripts/dockerd.sh), else local processes",
    )
    @click.option(
        "--report",
        "report_root",
        type=click.Path(path_type=Path),
        default=None,
        help="reports directory (default: reports/ in the repository); the run goes to <DIR>/<run-id>/",
    )
    @click.option(
        "--chain",
        type=click.Choice(["bitcoind", "btcd"]),
        default=None,
        help="run every scenario's topology on this chain backend (default: what each topology names, bitcoind)",
    )
    def run_cmd(target: str, runtime: str, report_root: Path | None, chain: str | None) -> None:
        """Replay TARGET (a suite in scenarios/suites/, a scenario in scenarios/, or a YAML path).

        Exits 1 when any expectation fails or a step errors; prints the report path last."""
        import os

        from harness.report.render import REPORTS_DIR

        if chain is not None:
            os.environ["LAB_CHAIN"] = chain  # read by every LightningTestHarness this run starts
        from harness.scenario.engine import run_target

        def progress(msg: str) -> None:
            console.print(msg, highlight=False, markup=False)

        from harness.harness import resolve_runtime

        runtime = resolve_runtime(runtime)
        console.print(f"runtime: {runtime}", highlight=False, markup=False)
        result, report = run_target(target, runtime=runtime, progress=progress, report_root=report_root or REPORTS_DIR)
        for sc in result.scenarios:
            console.print(f"  {sc.status.upper():7} {sc.name} ({sc.duration_s:.1f}s)", highlight=False, markup=False)
        colour = "green" if result.status == "passed" else "red"
        console.print(f"[{colour}]{result.status.upper()}[/{colour}] {target} in {result.duration_s:.1f}s")
        out.print(f"report: {report}", highlight=False, soft_wrap=True)
        if result.status != "passed":
            sys.exit(1)

    @main.command("load")
    @click.option("--users", type=click.IntRange(1, 200), default=10, show_default=True)
    @click.option("--spawn-rate", type=click.FloatRange(0.1, 100), default=2.0, show_default=True)
    @click.option(
        "--duration", "duration_s", type=click.IntRange(5, 3600), default=60, show_default=True, help="seconds"
    )
    @click.option(
        "--workers",
        type=click.IntRange(0, 8),
        default=0,
        show_default=True,
        help="distributed Locust: one master and K worker processes on this machine",
    )
    @click.option("--report", "report_root", type=click.Path(path_type=Path), default=None)
    def load_cmd(users: int, spawn_rate: float, duration_s: int, workers: int, report_root: Path | None) -> None:
        """Bring up star5 (local processes) and the LSP, run Locust headless against the LSP API, and report."""
        from harness.load import run_load
        from harness.report.render import REPORTS_DIR

        def progress(msg: str) -> None:
            console.print(msg, highlight=False, markup=False)

        result, report = run_load(
            users=users,
            spawn_rate=spawn_rate,
            duration_s=duration_s,
            workers=workers,
            report_root=report_root or REPORTS_DIR,
            progress=progress,
        )
        assert result.load is not None
        agg = next((s for s in result.load.stats if s.name == "Aggregated"), None)
        if agg is not None:
            console.print(
                f"{agg.requests} requests, {agg.failures} failures, {agg.rps:.1f} req/s, "
                f"p50 {agg.p50_ms:.0f} ms, p95 {agg.p95_ms:.0f} ms, p99 {agg.p99_ms:.0f} ms",
                highlight=False,
            )
        out.print(f"report: {report}", highlight=False, soft_wrap=True)
        if result.status != "passed":
            sys.exit(1)
