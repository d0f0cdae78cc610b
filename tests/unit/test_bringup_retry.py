"""A stalled bring-up is retried once on a fresh network, and says so even when the run passes.

Pure logic: ``fake_bringup`` stands in for ``_start_once`` (the real network start), so the
retry policy is checked without nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BringupRetried, WaitTimeout
from harness.harness import LightningTestHarness

pytestmark = pytest.mark.unit


def _harness_with_fake_bringup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stalls: int
) -> tuple[LightningTestHarness, list[Path]]:
    lab = LightningTestHarness("pair")
    attempts: list[Path] = []

    def fake_bringup() -> LightningTestHarness:
        attempts.append(lab.lab_dir)
        if len(attempts) <= stalls:
            raise WaitTimeout(what="every node's graph", seconds=90.0, last_state="c4 misses 1 channel")
        return lab

    monkeypatch.setattr(lab, "_start_once", fake_bringup)
    monkeypatch.setattr("harness.harness.new_lab_dir", lambda name: tmp_path / f"{name}-{len(attempts)}")
    return lab, attempts


def test_a_stalled_bringup_is_retried_on_a_fresh_network_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab, attempts = _harness_with_fake_bringup(monkeypatch, tmp_path, stalls=1)
    with pytest.warns(BringupRetried, match=r"lab pair: bring-up failed \(timed out after 90.0s .*pair-0"):
        assert lab.start(retries=1) is lab
    assert attempts == [tmp_path / "pair-0", tmp_path / "pair-1"]  # a fresh directory for the retry


def test_a_bringup_that_stalls_every_time_fails_after_the_retries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lab, attempts = _harness_with_fake_bringup(monkeypatch, tmp_path, stalls=2)
    with pytest.warns(BringupRetried), pytest.raises(WaitTimeout, match="every node's graph"):
        lab.start(retries=1)
    assert len(attempts) == 2
