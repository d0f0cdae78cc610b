"""Tier limit maths and period boundaries (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from lsp.compliance.kyc import Usage, limit_breach, period_starts
from lsp.compliance.policy import Tier

pytestmark = pytest.mark.unit

TIER = Tier(per_payment_sat=100_000, daily_volume_sat=250_000, monthly_volume_sat=1_000_000, max_channel_sat=1)


@pytest.mark.parametrize(
    ("amount", "used", "code"),
    [
        (100_000, Usage(0, 0), None),  # exactly the per-payment limit is allowed
        (100_001, Usage(0, 0), "limit_per_payment"),
        (100_000, Usage(150_000, 150_000), None),  # 250 000 reaches the daily limit exactly
        (100_000, Usage(150_001, 150_001), "limit_daily_volume"),
        (100_000, Usage(0, 900_001), "limit_monthly_volume"),
        (100_000, Usage(0, 900_000), None),
    ],
)
def test_limit_breach(amount: int, used: Usage, code: str | None) -> None:
    breach = limit_breach(TIER, amount, used)
    assert (breach[0] if breach else None) == code
    if breach:
        assert str(amount) in breach[1]


def test_periods_are_utc_calendar_day_and_month() -> None:
    # 00:30 on 1 March in UTC+2 is still 28 February in UTC.
    local = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    day, month = period_starts(local)
    assert day == datetime(2026, 2, 28, tzinfo=UTC)
    assert month == datetime(2026, 2, 1, tzinfo=UTC)
