"""The dynamic fee policy's arithmetic and its pacing (the live test drives it on LND)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from lsp.services.fees import FeeEngine, step, targets
from lsp.services.fees_config import FeeSettings

pytestmark = pytest.mark.unit
S = FeeSettings(min_ppm=10, max_ppm=1_010, max_inbound_discount_ppm=300, max_step_ppm=100, min_change_ppm=5)


def test_targets_run_from_the_bounds_of_a_full_channel_to_those_of_a_drained_one() -> None:
    assert targets(S, 1_000_000, 1_000_000) == (10, 0)
    assert targets(S, 0, 1_000_000) == (1_010, -300)
    assert targets(S, 250_000, 1_000_000) == (760, -225)
    assert targets(S, 1_200_000, 1_000_000) == (10, 0)  # clamped (never seen, but never out of bounds)


def test_a_run_moves_at_most_max_step() -> None:
    assert step(10, 760, 100) == 110
    assert step(760, 10, 100) == 660
    assert step(0, -225, 100) == -100
    assert step(700, 703, 100) == 703


@dataclass
class _Fee:
    channel_point: str
    fee_per_mil: int
    inbound_fee_per_mil: int
    base_fee_msat: int = 1_000
    inbound_base_fee_msat: int = 0


@dataclass
class _Chan:
    channel_point: str
    local_balance: int
    capacity: int
    chan_id: int = 7
    remote_pubkey: str = "02" + "11" * 32


class FakeLndFees:
    """Named fake of FeeReport and ListChannels: the plan reads nothing else."""

    def __init__(self, fees: list[_Fee], chans: list[_Chan]) -> None:
        self.fees, self.chans = fees, chans

    async def fee_report(self) -> list[_Fee]:
        return self.fees

    async def list_channels(self, *, active_only: bool = False) -> list[_Chan]:
        return self.chans


def test_small_moves_are_not_worth_a_channel_update_unless_they_reach_the_target() -> None:
    lnd = FakeLndFees(
        [_Fee("a:0", 758, -225), _Fee("b:0", 10, 0), _Fee("c:0", 757, -225)],
        [_Chan("a:0", 250_000, 1_000_000), _Chan("b:0", 0, 1_000_000), _Chan("c:0", 250_000, 1_000_000)],
    )
    plans = {p.channel_point: p for p in asyncio.run(FeeEngine(lnd, None, S).plan())}  # type: ignore[arg-type]
    # a: 2 ppm short of its target (760): a move that reaches the target is made even if small.
    assert (plans["a:0"].next_fee_rate_ppm, plans["a:0"].change) == (760, True)
    # b: drained, at the floor: moves by one step towards 1,010 and -300.
    assert (plans["b:0"].next_fee_rate_ppm, plans["b:0"].next_inbound_fee_rate_ppm) == (110, -100)
    assert plans["b:0"].change
    lnd.fees[0] = _Fee("a:0", 760, -225)
    plans = {p.channel_point: p for p in asyncio.run(FeeEngine(lnd, None, S).plan())}  # type: ignore[arg-type]
    assert not plans["a:0"].change  # at its target: left alone
