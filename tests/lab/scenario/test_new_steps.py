"""The breach, jit_receive and swap steps, replayed by the engine against live nodes.

Each scenario runs on its own fresh network (breach, jit, swaps3); the test
asserts what a release manager reads: the scenario passed, and the figures its
steps recorded for ``expect: results`` are the real ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.engine import Runner
from harness.scenario.loader import load_scenario


def test_breach_jit_and_swap_scenarios_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path / "labs"))
    lines: list[str] = []
    run = Runner(progress=lines.append).run("new-steps", [load_scenario(n) for n in ("breach", "jit", "swaps")])

    assert run.status == "passed", "\n".join(lines[-60:])
    by_name = {s.name: s for s in run.scenarios}
    breach = by_name["breach"].steps[0].outcome
    assert breach["close_type"] == "BREACH_CLOSE" and breach["swept_by"] == "victim"
    assert breach["cheater_loss_sat"] == 700_000
    jit = by_name["jit"].steps[0].outcome
    assert jit["received_msat"] == 50_000_123 and jit["new_channel"] is True
    assert jit["lsp_fee_msat"] == jit["formula_fee_msat"] == 2_000_000
    swaps = by_name["swaps"].steps
    assert swaps[0].outcome["state"] == "claimed" and swaps[0].outcome["received_sat"] == 100_000
    assert swaps[1].outcome["state"] == "invoice_settled" and swaps[1].outcome["received_sat"] > 97_000
