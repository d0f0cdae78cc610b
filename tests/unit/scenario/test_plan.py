"""Seeded replays: same seed, same amounts, payers, payees and memos, in the same order."""

from __future__ import annotations

import math
import statistics

import pytest

from harness.scenario.loader import load_scenario, parse_scenario
from harness.scenario.plan import plan_scenario

pytestmark = pytest.mark.unit

TEXT = """\
name: t
topology: star5
seed: {seed}
steps:
  - kind: pay
    from: [c1, c2]
    to: [c3, c4]
    amount_sat: {{dist: lognormal, median: 5000, sigma: 1.0, min: 100, max: 400000}}
    count: 200
  - kind: mine
  - kind: keysend
    from: c1
    to: [c2, c3, c4]
    amount_sat: {{dist: uniform, low: 10, high: 20}}
    count: 50
"""


def plan(seed: int) -> dict:
    return plan_scenario(parse_scenario(TEXT.format(seed=seed), "t.yaml").scenario)


def test_same_seed_same_payments_in_the_same_order() -> None:
    a, b = plan(42), plan(42)
    assert a == b
    assert [p.amount_sat for p in a[0]] == [p.amount_sat for p in b[0]]
    assert [p.memo for p in a[0]] == [p.memo for p in b[0]]
    assert [p.client_data for p in a[2]] == [p.client_data for p in b[2]]


def test_other_seed_other_payments() -> None:
    assert [p.amount_sat for p in plan(42)[0]] != [p.amount_sat for p in plan(43)[0]]
    assert [p.memo for p in plan(42)[0]] != [p.memo for p in plan(43)[0]]


def test_a_steps_draws_do_not_depend_on_other_steps() -> None:
    base = plan(42)
    changed = parse_scenario(TEXT.format(seed=42).replace("count: 200", "count: 3"), "t.yaml").scenario
    assert plan_scenario(changed)[2] == base[2]


def test_draws_follow_the_declared_distributions() -> None:
    p = plan(7)
    amounts = [x.amount_sat for x in p[0]]
    assert all(100 <= a <= 400_000 for a in amounts)
    # lognormal with median 5000: the sample median is near it (wide band: 200 draws)
    assert 3000 < statistics.median(amounts) < 8000
    assert statistics.pstdev([math.log(a) for a in amounts]) == pytest.approx(1.0, abs=0.25)
    ks = p[2]
    assert all(10 <= x.amount_sat <= 20 for x in ks)
    assert {x.payee for x in ks} == {"c2", "c3", "c4"} and {x.payer for x in ks} == {"c1"}
    assert {x.payer for x in p[0]} == {"c1", "c2"} and {x.payee for x in p[0]} == {"c3", "c4"}


def test_payer_never_pays_itself_when_lists_overlap() -> None:
    text = TEXT.format(seed=1).replace("to: [c3, c4]", "to: [c1, c2]")
    for pp in plan_scenario(parse_scenario(text, "t.yaml").scenario)[0]:
        assert pp.payer != pp.payee


def test_client_data_is_generated_per_payment() -> None:
    pays = plan(42)[0]
    assert len({p.client_data["order_id"] for p in pays}) > 150
    assert all("@" in p.client_data["email"] for p in pays)


def test_shipped_scenario_plan_is_stable() -> None:
    """The shipped star5 run draws the same amounts every time (pinned values)."""
    sc = load_scenario("star5-distribution").scenario
    first = [p.amount_sat for p in plan_scenario(sc)[0][:5]]
    assert first == [p.amount_sat for p in plan_scenario(sc)[0][:5]]
    assert len(plan_scenario(sc)[0]) == 40
