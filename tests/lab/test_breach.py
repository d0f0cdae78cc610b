"""Revoked-state breaches end with the victim holding the whole channel."""

from __future__ import annotations

import pytest

from harness.harness import LightningTestHarness

# Justice and sweep transactions at the lab's fee rates.
MAX_SWEEP_FEES_SAT = 30_000


@pytest.mark.topology("breach")
def test_victim_sweeps_the_whole_channel(lab: LightningTestHarness) -> None:
    r = lab.breach("cheater", "victim")
    assert r.close_type == "BREACH_CLOSE"
    assert r.breach_txid != r.justice_txid
    assert r.cheater_revoked_balance_sat > r.cheater_loss_sat > 0
    gained = r.victim_onchain_after_sat - r.victim_onchain_before_sat
    whole = r.victim_channel_balance_sat + r.cheater_loss_sat
    assert whole - MAX_SWEEP_FEES_SAT <= gained <= whole + 10_000
    assert lab.node("cheater").list_channels() == []


@pytest.mark.topology("watchtower")
def test_watchtower_sweeps_for_an_offline_victim(lab: LightningTestHarness) -> None:
    r = lab.breach("cheater", "victim", tower="tower")
    assert r.swept_by == "tower"
    assert r.close_type == "BREACH_CLOSE"
    gained = r.victim_onchain_after_sat - r.victim_onchain_before_sat
    whole = r.victim_channel_balance_sat + r.cheater_loss_sat
    assert whole - MAX_SWEEP_FEES_SAT <= gained <= whole + 10_000
