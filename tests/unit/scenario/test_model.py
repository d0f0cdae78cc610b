"""Scenario and suite files: what a user sees for a bad file (pure logic, no nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.loader import SCENARIO_DIR, load_target, parse_scenario, parse_suite
from harness.scenario.model import LogNormal, PayStep, ScenarioError, Uniform

pytestmark = pytest.mark.unit

GOOD = """\
name: t
topology: line3
seed: 7
steps:
  - kind: pay
    name: p
    from: alice
    to: carol
    amount_sat: {dist: lognormal, median: 2000, sigma: 1}
    count: 3
  - kind: expect
    payments: [{step: p, min_success_rate: 1.0}]
"""


def problems(text: str) -> str:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text, "bad.yaml")
    return str(exc.value)


def test_valid_scenario_parses_amount_distributions() -> None:
    ls = parse_scenario(GOOD, "good.yaml")
    step = ls.scenario.steps[0]
    assert isinstance(step, PayStep) and isinstance(step.amount_sat, LogNormal)
    assert ls.topology.name == "line3"


def test_every_shipped_scenario_and_suite_is_valid() -> None:
    names = {p.stem for p in SCENARIO_DIR.glob("*.yaml")}
    assert {
        "line3-payments",
        "star5-distribution",
        "pair-keysend",
        "pair-channels",
        "line3-restart",
        "pair-over-capacity",
    } <= names
    _, smoke = load_target("smoke")
    _, release = load_target("release")
    assert {s.scenario.name for s in smoke} < {s.scenario.name for s in release}
    assert {s.scenario.name for s in release} == names


def test_bad_field_names_file_step_index_field_and_line() -> None:
    msg = problems(GOOD.replace("count: 3", "count: 0"))
    assert msg.startswith("bad.yaml: invalid scenario")
    assert "steps[0].count (line 10): Input should be greater than or equal to 1" in msg


def test_unknown_key_in_a_step_is_an_error() -> None:
    msg = problems(GOOD.replace("    count: 3\n", "    count: 3\n    cuont: 4\n"))
    assert "steps[0].cuont (line 11): unknown key" in msg


def test_unknown_step_kind_lists_the_kinds() -> None:
    msg = problems(GOOD.replace("kind: expect", "kind: expectt"))
    assert "steps[1].kind (line 11): must be one of: pay, keysend" in msg


def test_bad_distribution_names_its_field() -> None:
    msg = problems(GOOD.replace("{dist: lognormal, median: 2000, sigma: 1}", "{dist: uniform, low: 10}"))
    assert "steps[0].amount_sat.high (line 9): Field required" in msg
    msg = problems(GOOD.replace("{dist: lognormal, median: 2000, sigma: 1}", "{dist: uniform, low: 50, high: 10}"))
    assert "steps[0].amount_sat (line 9): low (50) must not exceed high (10)" in msg
    msg = problems(GOOD.replace("{dist: lognormal, median: 2000, sigma: 1}", "{dist: pareto, alpha: 1}"))
    assert "steps[0].amount_sat.dist (line 9): must be one of: uniform, lognormal" in msg


def test_node_not_in_topology() -> None:
    msg = problems(GOOD.replace("to: carol", "to: zed"))
    assert "steps[0].to (line 8): unknown node 'zed' in topology line3 (nodes: alice, bob, carol)" in msg


def test_expect_must_reference_an_earlier_payment_step() -> None:
    msg = problems(GOOD.replace("{step: p,", "{step: nope,"))
    assert "steps[1].payments[0].step (line 12): no earlier pay/keysend step named 'nope' (named: p)" in msg


def test_unknown_topology_names_the_field() -> None:
    msg = problems(GOOD.replace("topology: line3", "topology: nowhere"))
    assert "topology (line 2): " in msg and "no such topology" in msg


def test_yaml_syntax_error_has_a_line() -> None:
    msg = problems("name: t\nsteps: [\n")
    assert "line 3" in msg and "YAML syntax error" in msg


def test_suite_with_a_broken_scenario_fails_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(GOOD.replace("to: carol", "to: zed"))
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\nscenarios: [pair-keysend, broken.yaml]\n")
    with pytest.raises(ScenarioError) as exc:
        load_target(str(suite))
    assert "broken.yaml" in str(exc.value) and "unknown node 'zed'" in str(exc.value)


def test_suite_unknown_key() -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_suite("name: s\nscenarios: [a]\nretries: 3\n", "suite.yaml")
    assert "retries (line 3): unknown key" in str(exc.value)


def test_uniform_model_rejects_zero() -> None:
    with pytest.raises(ValueError):
        Uniform(dist="uniform", low=0, high=5)


def test_lsp_receive_needs_a_payer_and_events_need_an_lsp() -> None:
    text = "name: t\ntopology: star5\nsteps:\n  - {kind: lsp, call: receive, amount_sat: 5}\n"
    assert "steps[0] (line 4): call 'receive' needs payer" in problems(text)
    text = "name: t\ntopology: star5\nsteps:\n  - kind: expect\n    events: [{type: payment_received}]\n"
    assert "steps[0].events (line 5): event expectations need an LSP: set `lsp: <node>`" in problems(text)
    text = "name: t\ntopology: star5\nlsp: hub\nsteps:\n  - kind: expect\n    events: [{type: paid}]\n"
    assert "steps[0].events[0].type (line 6): Input should be 'payment_received'" in problems(text)
    ok = "name: t\ntopology: star5\nlsp: hub\nsteps:\n  - {kind: lsp, call: send, amount_sat: 5, payee: c3}\n"
    assert parse_scenario(ok, "ok.yaml").scenario.lsp == "hub"
    assert "unknown node 'c9'" in problems(ok.replace("payee: c3", "payee: c9"))


def test_scenario_event_checks_accept_every_event_the_lsp_publishes() -> None:
    """The scenario model spells the WebSocket event names itself (the lab does not import the LSP);
    this keeps the two lists from drifting apart."""
    from typing import get_args

    from harness.scenario.model import EventType
    from lsp.services.events import EVENT_TYPES

    assert set(get_args(EventType)) == set(EVENT_TYPES)
