"""The monitoring rules, pure: thresholds, windows and exactly which transactions count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lsp.compliance.policy import ConfigError, Rules, parse_policy
from lsp.compliance.rules import Tx, evaluate

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
OLD_CLIENT = T0 - timedelta(days=365)


def tx(n: int, amount: int, *, kind: str = "out", minutes: float = 0, client: str = "c1", to: str | None = None) -> Tx:
    return Tx(f"payment:{n}", kind, client, amount, T0 + timedelta(minutes=minutes), to)


def rules(**over: dict) -> Rules:
    base = {name: {"enabled": False} for name in Rules.model_fields}
    for name, cfg in over.items():
        base[name] = {"enabled": True, **cfg}
    return Rules.model_validate(base)


def names(hits) -> list[str]:
    return [h.rule for h in hits]


def test_large_amount_fires_at_the_threshold_not_below() -> None:
    r = rules(large_amount={"threshold_sat": 1_000_000})
    assert names(evaluate(r, tx(1, 999_999), [], OLD_CLIENT)) == []
    hits = evaluate(r, tx(2, 1_000_000), [], OLD_CLIENT)
    assert names(hits) == ["large_amount"] and hits[0].refs == ("payment:2",)
    assert hits[0].evidence == {"amountSat": 1_000_000, "thresholdSat": 1_000_000}


def test_structuring_needs_min_count_inside_the_band_and_window() -> None:
    r = rules(structuring={"threshold_sat": 100_000, "band": 0.1, "window_s": 3600, "min_count": 3})
    history = [tx(1, 95_000, minutes=0), tx(2, 99_999, minutes=10)]
    # Third amount just under the threshold within the hour: fires, with all three as evidence.
    hits = evaluate(r, tx(3, 90_000, minutes=20), history, OLD_CLIENT)
    assert names(hits) == ["structuring"]
    assert hits[0].refs == ("payment:1", "payment:2", "payment:3")
    assert hits[0].evidence["amountsSat"] == [95_000, 99_999, 90_000]
    # At the threshold itself is not "just under"; below the band is not either.
    assert evaluate(r, tx(4, 100_000, minutes=20), history, OLD_CLIENT) == []
    assert evaluate(r, tx(5, 89_999, minutes=20), history, OLD_CLIENT) == []
    # Outside the window the first one no longer counts.
    assert evaluate(r, tx(6, 95_000, minutes=61), history, OLD_CLIENT) == []
    # Incoming amounts are a different pattern from outgoing ones.
    assert evaluate(r, tx(7, 95_000, kind="in", minutes=20), history, OLD_CLIENT) == []


def test_velocity_counts_and_sums_inside_the_sliding_window() -> None:
    r = rules(velocity={"window_s": 600, "max_count": 3, "max_sum_sat": 10_000_000})
    history = [tx(i, 1000, minutes=i) for i in range(1, 4)]  # minutes 1, 2, 3
    assert evaluate(r, tx(9, 1000, minutes=20), history, OLD_CLIENT) == []  # older ones left the window
    hits = evaluate(r, tx(9, 1000, minutes=5), history, OLD_CLIENT)
    assert names(hits) == ["velocity"] and hits[0].evidence["count"] == 4
    r2 = rules(velocity={"window_s": 600, "max_count": 100, "max_sum_sat": 3500})
    assert names(evaluate(r2, tx(9, 1000, minutes=5), history, OLD_CLIENT)) == ["velocity"]
    assert evaluate(r2, tx(9, 500, minutes=5), history, OLD_CLIENT) == []  # 3500 is not above 3500


def test_rapid_in_out_compares_outgoing_to_what_came_in() -> None:
    r = rules(rapid_in_out={"window_s": 600, "min_ratio": 0.9, "min_amount_sat": 100_000})
    received = [tx(1, 200_000, kind="in", minutes=0)]
    assert evaluate(r, tx(2, 170_000, minutes=3), received, OLD_CLIENT) == []  # 85 %
    hits = evaluate(r, tx(3, 180_000, minutes=3), received, OLD_CLIENT)  # 90 %
    assert names(hits) == ["rapid_in_out"] and hits[0].refs == ("payment:1", "payment:3")
    assert evaluate(r, tx(4, 190_000, minutes=11), received, OLD_CLIENT) == []  # in left the window
    assert evaluate(r, tx(5, 99_000, minutes=1), [tx(1, 99_000, kind="in")], OLD_CLIENT) == []  # too small


def test_new_client_rule_only_for_young_clients() -> None:
    r = rules(new_client={"age_s": 86_400, "window_s": 3600, "max_sum_sat": 500_000})
    history = [tx(1, 300_000, kind="in")]
    assert names(evaluate(r, tx(2, 300_000, minutes=5), history, T0 - timedelta(hours=2))) == ["new_client"]
    assert evaluate(r, tx(2, 300_000, minutes=5), history, T0 - timedelta(days=2)) == []


def test_deny_list_matches_the_destination() -> None:
    bad = "02" + "ab" * 32
    r = rules(deny_list={"pubkeys": [bad]})
    assert names(evaluate(r, tx(1, 10, to=bad), [], OLD_CLIENT)) == ["deny_list"]
    assert evaluate(r, tx(2, 10, to="03" + "ab" * 32), [], OLD_CLIENT) == []


def test_policy_file_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"rules.structuring.band"):
        parse_policy({"rules": {"structuring": {"band": 2}}})
    with pytest.raises(ConfigError, match="default_tier 'gold' is not in tiers"):
        parse_policy({"default_tier": "gold"})
    p = parse_policy({"rules": {"large_amount": {"threshold_sat": 5, "severity": "low"}}})
    assert p.rules.large_amount.threshold_sat == 5 and p.rules.structuring.threshold_sat == 1_000_000


@given(
    offsets=st.lists(st.integers(min_value=0, max_value=7_200), max_size=60),
    at=st.integers(min_value=0, max_value=7_200),
    window_s=st.integers(min_value=1, max_value=4_000),
)
def test_a_window_holds_exactly_the_transactions_within_it(offsets: list[int], at: int, window_s: int) -> None:
    """The velocity rule counts what a plain scan of the history finds in its window (the rules find
    windows by bisection of the sorted history)."""
    history = sorted(
        (Tx(f"payment:{i}", "out", "c1", 1_000, T0 + timedelta(seconds=s)) for i, s in enumerate(offsets)),
        key=lambda t: (t.at, t.ref),
    )
    current = Tx("payment:new", "out", "c1", 1_000, T0 + timedelta(seconds=at))
    start = current.at - timedelta(seconds=window_s)
    expected = [t.ref for t in history if start <= t.at <= current.at] + [current.ref]
    r = rules(velocity={"window_s": window_s, "max_count": 10**6, "max_sum_sat": 1})  # always fires
    (hit,) = evaluate(r, current, history, OLD_CLIENT)
    assert list(hit.refs) == expected
