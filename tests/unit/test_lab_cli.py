"""`lab` command options: the runtime defaults (no lab is started)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner

from harness.cli import main

pytestmark = pytest.mark.unit


def _default(command: str, option: str) -> Any:
    cmd = main.commands[command]
    return next(p.default for p in cmd.params if isinstance(p, click.Option) and p.name == option)


def test_up_and_run_default_to_auto() -> None:
    # README: `auto` is the CLI's default (pytest's --lab-runtime is `process`).
    assert _default("up", "runtime") == "auto"
    assert _default("run", "runtime") == "auto"


@pytest.mark.parametrize(("daemon", "chosen"), [(False, "process"), (True, "docker")])
def test_run_resolves_auto_and_prints_the_choice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, daemon: bool, chosen: str
) -> None:
    import harness.runtime.docker_client as docker_client
    import harness.scenario.engine as engine

    seen: dict[str, str] = {}

    def fake_run_target(target: str, *, runtime: str, **_: Any) -> tuple[Any, Path]:
        seen["runtime"] = runtime
        return SimpleNamespace(scenarios=[], status="passed", duration_s=0.0), tmp_path / "index.html"

    monkeypatch.setattr(docker_client, "docker_available", lambda timeout=3.0: daemon)
    monkeypatch.setattr(engine, "run_target", fake_run_target)
    r = CliRunner().invoke(main, ["run", "smoke"])
    assert r.exit_code == 0, r.output
    assert seen["runtime"] == chosen
    assert f"runtime: {chosen}" in r.output
