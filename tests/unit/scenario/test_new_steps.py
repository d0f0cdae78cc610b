"""The breach, jit_receive and swap steps and ``expect: results``: what a user sees for a bad file
(pure logic, no nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.loader import parse_scenario
from harness.scenario.model import BreachStep, JitReceiveStep, ScenarioError, SwapInStep, SwapOutStep

pytestmark = pytest.mark.unit

BREACH = """\
name: b
topology: breach
steps:
  - kind: breach
    name: cheat
    cheater: cheater
    victim: victim
  - kind: expect
    results:
      - {step: cheat, field: close_type, equals: BREACH_CLOSE}
      - {step: cheat, field: victim_gain_sat, min: 1}
"""

JIT = """\
name: j
topology: jit
steps:
  - kind: jit_receive
    name: first
    lsp: lsp
    client: client
    payer: payer
    amount_msat: 50000123
  - kind: expect
    results: [{step: first, field: fee_matches_formula, equals: true}]
"""

SWAPS = """\
name: s
topology: swaps3
lsp: hub
steps:
  - {kind: swap_in, name: in, node: c1, amount_sat: 100000}
  - {kind: swap_out, name: out, node: c2, amount_sat: 100000}
  - kind: expect
    results: [{step: in, field: state, equals: claimed}, {step: out, field: received_sat, min: 1}]
"""


def problems(text: str) -> str:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text, "bad.yaml")
    return str(exc.value)


def test_valid_new_steps_parse() -> None:
    b = parse_scenario(BREACH, "b.yaml").scenario.steps[0]
    assert isinstance(b, BreachStep) and b.tower is None
    j = parse_scenario(JIT, "j.yaml").scenario.steps[0]
    assert isinstance(j, JitReceiveStep) and j.menu_index == 0
    s = parse_scenario(SWAPS, "s.yaml").scenario.steps
    assert isinstance(s[0], SwapInStep) and isinstance(s[1], SwapOutStep)


def test_breach_with_tower_on_watchtower_topology_parses() -> None:
    text = BREACH.replace("topology: breach", "topology: watchtower").replace(
        "victim: victim\n", "victim: victim\n    tower: tower\n"
    )
    step = parse_scenario(text, "w.yaml").scenario.steps[0]
    assert isinstance(step, BreachStep) and step.tower == "tower"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("cheater: cheater", "cheater: mallory", "cheater"),
        ("victim: victim", "victim: bob", "victim"),
        ("victim: victim\n", "victim: victim\n    tower: tower\n", "tower"),  # no tower in topology breach
    ],
)
def test_breach_unknown_node_names_step_index_and_field(old: str, new: str, field: str) -> None:
    msg = problems(BREACH.replace(old, new))
    assert f"steps[0].{field} (line " in msg
    assert "unknown node" in msg and "topology breach" in msg


def test_breach_victim_without_nolisten_is_rejected_before_anything_starts() -> None:
    msg = problems(
        BREACH.replace("topology: breach", "topology: pair")
        .replace("cheater: cheater", "cheater: nodea")
        .replace("victim: victim", "victim: nodeb")
    )
    assert "steps[0].victim" in msg and "--nolisten --minbackoff=1h" in msg


def test_breach_cheater_and_victim_must_differ() -> None:
    msg = problems(BREACH.replace("cheater: cheater", "cheater: victim"))
    assert "steps[0]" in msg and "must be different nodes" in msg


def test_jit_unknown_node_and_bad_amount() -> None:
    assert "steps[0].client (line 7): unknown node 'zed'" in problems(JIT.replace("client: client", "client: zed"))
    assert "steps[0].lsp" in problems(JIT.replace("lsp: lsp", "lsp: hub"))
    msg = problems(JIT.replace("amount_msat: 50000123", "amount_msat: 5"))
    assert "steps[0].amount_msat" in msg


def test_jit_roles_must_differ() -> None:
    assert "must be different nodes" in problems(JIT.replace("payer: payer", "payer: client"))


def test_swaps_need_an_lsp_and_known_nodes() -> None:
    msg = problems(SWAPS.replace("lsp: hub\n", ""))
    assert "steps[0].kind" in msg and "swap_in needs an LSP" in msg
    assert "steps[1].kind" in msg and "swap_out needs an LSP" in msg
    assert "steps[1].node" in problems(SWAPS.replace("node: c2", "node: c9"))
    assert "steps[0].amount_sat" in problems(SWAPS.replace("amount_sat: 100000}", "amount_sat: 10}", 1))


def test_results_check_names_unknown_step_and_field() -> None:
    msg = problems(BREACH.replace("{step: cheat, field: close_type", "{step: cheet, field: close_type"))
    assert "steps[1].results[0].step" in msg
    assert "no earlier breach/jit_receive/lsps2_receive/lsps1_order/swap/hosted_node step named 'cheet'" in msg
    msg = problems(BREACH.replace("field: victim_gain_sat", "field: victim_gains"))
    assert "steps[1].results[1].field" in msg and "a breach step records no 'victim_gains'" in msg
    msg = problems(BREACH.replace(", min: 1}", "}"))
    assert "steps[1].results[1]" in msg and "needs 'equals', 'min' or 'max'" in msg


def test_results_check_cannot_refer_forward_or_to_duplicate_names() -> None:
    forward = """\
name: f
topology: breach
steps:
  - kind: expect
    results: [{step: cheat, field: close_type, equals: BREACH_CLOSE}]
  - {kind: breach, name: cheat, cheater: cheater, victim: victim}
"""
    assert "steps[0].results[0].step" in problems(forward)
    dup = BREACH.replace(
        "  - kind: expect", "  - {kind: breach, name: cheat, cheater: cheater, victim: victim}\n  - kind: expect"
    )
    assert "steps[1].name" in problems(dup) and "duplicate step name 'cheat'" in problems(dup)


LDK = """\
name: l
topology: ldk-lsp
steps:
  - kind: lsps2_receive
    name: jit
    lsp: lsp
    client: wallet
    payer: payer
    amount_msat: 60000000
  - kind: lsps1_order
    name: order
    lsp: lsp
    client: wallet
    payer: payer
    lsp_balance_sat: 500000
  - kind: expect
    results:
      - {step: jit, field: client_implementation, equals: x}
      - {step: order, field: channel_capacity_sat, min: 500000}
"""


def test_ldk_lsps_steps_parse_and_check_their_client() -> None:
    ls = parse_scenario(LDK, "l.yaml")
    assert [s.kind for s in ls.scenario.steps] == ["lsps2_receive", "lsps1_order", "expect"]

    msg = problems(LDK.replace("client: wallet\n    payer: payer\n    amount_msat", "client: client\n    payer: payer\n"
                                                                                    "    amount_msat"))
    assert "steps[0].client (line 7): lsps2_receive drives LDK's own LSPS client: 'client' is an lnd node" in msg
    msg = problems(LDK.replace("payer: payer\n    lsp_balance_sat", "payer: strict\n    lsp_balance_sat"))
    assert "steps[1].payer (line 14): 'strict' is an ldk node; the payer of a lsps1_order step must be an lnd node" in msg
    msg = problems(LDK.replace("    lsp_balance_sat: 500000\n", "    lsp_balance_sat: 500000\n  - kind: keysend\n"
                                                                 "    from: payer\n    to: wallet\n    amount_sat: 1000\n"))
    assert "'wallet' is an ldk node; keysend steps drive LND nodes" in msg
    msg = problems(LDK.replace("field: channel_capacity_sat", "field: capacity"))
    assert "a lsps1_order step records no 'capacity'" in msg


def test_scenario_files_that_are_not_utf8_or_not_yaml_get_an_error_not_a_traceback(tmp_path: Path) -> None:
    from harness.scenario.loader import load_target

    bad = tmp_path / "s.yaml"
    bad.write_bytes(b"name: s\ntopology: pair\nsteps: []\n# \xff\n")
    with pytest.raises(ScenarioError, match=r"is not UTF-8 text \(byte 0xff on line 4\)"):
        load_target(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: s\ntopology: pair\nsteps: [\n")
    with pytest.raises(ScenarioError) as exc:
        load_target(str(broken))
    assert "broken.yaml: invalid scenario" in str(exc.value) and "line" in str(exc.value)
