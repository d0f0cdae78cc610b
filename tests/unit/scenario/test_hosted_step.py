"""The hosted_node step: what a user sees for a bad file, and what the step and engine do without a
Docker daemon (pure logic, no nodes)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import pytest

from harness.scenario.context import HostingSetup, StepContext
from harness.scenario.loader import SCENARIO_DIR, load_scenario, parse_scenario
from harness.scenario.model import RECORDED_FIELDS, HostedFeature, HostedNodeStep, ScenarioError
from harness.scenario.results import StepResult

pytestmark = pytest.mark.unit

HOSTED = """\
name: h
topology: star5
lsp: hub
steps:
  - {kind: lsp, call: receive, amount_sat: 100000, payer: c1}
  - kind: hosted_node
    name: shop
    alias: shop-node
    features: [keysend, scid-alias]
    channels:
      - {capacity_sat: 250000, push_sat: 20000}
      - {capacity_sat: 200000, private: true}
    receive_from: c1
    receive_sat: 5000
    pay_to: c2
    pay_sat: 2000
    delete_sweep_to: c3
  - kind: expect
    results:
      - {step: shop, field: charged_sat, min: 72450, max: 72450}
      - {step: shop, field: time_to_running_s, max: 120.5}
"""


def problems(text: str, **kw: Any) -> str:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(text, "bad.yaml", **kw)
    return str(exc.value)


def test_valid_hosted_step_parses_with_its_defaults() -> None:
    step = parse_scenario(HOSTED, "h.yaml").scenario.steps[1]
    assert isinstance(step, HostedNodeStep)
    assert [(c.capacity_sat, c.push_sat, c.private) for c in step.channels] == [(250000, 20000, False), (200000, 0, True)]
    assert step.fee_limit_sat == 100 and step.timeout_s is None and step.color is None
    minimal = parse_scenario("name: m\ntopology: star5\nlsp: hub\nsteps:\n  - {kind: hosted_node}\n", "m.yaml").scenario.steps[0]
    assert isinstance(minimal, HostedNodeStep) and minimal.channels == [] and minimal.alias == "lab-hosted"


def test_the_shipped_scenario_loads() -> None:
    ls = load_scenario(SCENARIO_DIR / "star5-hosted.yaml")
    assert ls.scenario.lsp == "hub" and any(isinstance(s, HostedNodeStep) for s in ls.scenario.steps)


def test_features_are_the_ones_the_lsp_offers() -> None:
    from lsp.hosting.features import FEATURES

    assert set(get_args(HostedFeature)) == set(FEATURES)
    msg = problems(HOSTED.replace("features: [keysend, scid-alias]", "features: [keysend, teleport]"))
    assert "steps[1].features[1] (line 9): Input should be 'keysend'" in msg


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("receive_from: c1", "receive_from: zed", "receive_from"),
        ("pay_to: c2", "pay_to: zed", "pay_to"),
        ("delete_sweep_to: c3", "delete_sweep_to: zed", "delete_sweep_to"),
    ],
)
def test_unknown_nodes_name_the_field(old: str, new: str, field: str) -> None:
    msg = problems(HOSTED.replace(old, new))
    assert f"steps[1].{field} (line " in msg and "unknown node 'zed' in topology star5" in msg


def test_needs_an_lsp() -> None:
    no_lsp = HOSTED.replace("lsp: hub\n", "").replace("  - {kind: lsp, call: receive, amount_sat: 100000, payer: c1}\n", "")
    msg = problems(no_lsp)
    assert "steps[0].kind (line 4): hosted_node needs an LSP: set `lsp: <node>` on the scenario" in msg


def test_push_must_be_below_capacity() -> None:
    msg = problems(HOSTED.replace("{capacity_sat: 250000, push_sat: 20000}", "{capacity_sat: 250000, push_sat: 250000}"))
    assert "steps[1].channels[0].push_sat (line 11): must be below capacity_sat (250000)" in msg


def test_channel_fields_are_checked() -> None:
    msg = problems(HOSTED.replace("{capacity_sat: 200000, private: true}", "{capacity_sat: 1000, privat: true}"))
    assert "steps[1].channels[1].capacity_sat" in msg and "greater than or equal to 20000" in msg
    assert "steps[1].channels[1].privat" in msg and "unknown key" in msg
    two = "channels:\n      - {capacity_sat: 250000, push_sat: 20000}\n      - {capacity_sat: 200000, private: true}"
    six = "channels: [" + ", ".join(["{capacity_sat: 100000}"] * 6) + "]"
    msg = problems(HOSTED.replace(two, six))
    assert "steps[1].channels" in msg and "at most 5 items" in msg


def test_amounts_and_their_nodes_come_together() -> None:
    msg = problems(HOSTED.replace("    receive_sat: 5000\n", ""))
    assert "steps[1].receive_sat" in msg and "needed with receive_from" in msg
    msg = problems(HOSTED.replace("    pay_to: c2\n", ""))
    assert "steps[1].pay_to" in msg and "needed with pay_sat" in msg


def test_money_needs_channels_and_room() -> None:
    no_channels = HOSTED.replace(
        "    channels:\n      - {capacity_sat: 250000, push_sat: 20000}\n      - {capacity_sat: 200000, private: true}\n", ""
    )
    msg = problems(no_channels)
    assert "steps[1].channels" in msg and "receive_from needs at least one channel" in msg
    # inbound: 250,000 - 20,000 + 200,000
    msg = problems(HOSTED.replace("receive_sat: 5000", "receive_sat: 430000"))
    assert "steps[1].receive_sat (line 14): must be below the channels' inbound capacity (430000 sat" in msg
    # held: the push plus what it received
    msg = problems(HOSTED.replace("pay_sat: 2000", "pay_sat: 25000"))
    assert "steps[1].pay_sat (line 16): must be below what the hosted node holds (25000 sat" in msg


def test_a_shared_network_needs_the_node_deleted() -> None:
    msg = problems(HOSTED.replace("lsp: hub\n", "lsp: hub\nshare_network: true\n").replace("    delete_sweep_to: c3\n", ""))
    assert "steps[1].delete_sweep_to" in msg and "needed with share_network: true" in msg
    parse_scenario(HOSTED.replace("    delete_sweep_to: c3\n", ""), "ok.yaml")  # a network of its own: the engine cleans up


def test_alias_is_checked_in_bytes() -> None:
    msg = problems(HOSTED.replace("alias: shop-node", "alias: " + "é" * 20))
    assert "steps[1].alias (line 8)" in msg and "longer than 32 bytes" in msg


def test_hosted_nodes_need_bitcoin_core(tmp_path: Path) -> None:
    topo = (SCENARIO_DIR.parent / "topologies" / "star5.yaml").read_text()
    (tmp_path / "star5-btcd.yaml").write_text(topo.replace("name: star5", "name: star5-btcd") + "chain: btcd\n")
    msg = problems(HOSTED.replace("topology: star5", "topology: star5-btcd.yaml"), base_dir=tmp_path)
    assert "steps[1].kind" in msg and "hosted nodes run on Bitcoin Core; topology star5-btcd runs on btcd" in msg


def test_results_name_what_the_step_records() -> None:
    assert {"charged_sat", "time_to_running_s", "received_sat", "sent_sat", "swept_sat"} <= set(RECORDED_FIELDS["hosted_node"])
    msg = problems(HOSTED.replace("field: charged_sat", "field: charge"))
    assert "steps[2].results[0].field" in msg and "a hosted_node step records no 'charge'" in msg


def _ctx(hosting: HostingSetup | None, lsp: Any = object()) -> StepContext:
    sc = parse_scenario(HOSTED, "h.yaml").scenario
    return StepContext(None, sc, 1, StepResult(1, "hosted_node", "shop"), lsp=lsp, hosting=hosting)  # type: ignore[arg-type]


def test_without_docker_the_step_fails_saying_why(tmp_path: Path) -> None:
    from harness.scenario.steps import hosted

    step = parse_scenario(HOSTED, "h.yaml").scenario.steps[1]
    ctx = _ctx(HostingSetup("sc0001", tmp_path, unavailable="no Docker daemon answers at unix:///x.sock"))
    hosted.run(step, ctx)  # no exception: a failed step with the reason
    assert ctx.result.failures == ["hosted nodes cannot run here: no Docker daemon answers at unix:///x.sock"]
    ctx = _ctx(None)
    hosted.run(step, ctx)
    assert ctx.result.failures and "started without hosting" in ctx.result.failures[0]


def test_the_engine_starts_the_lsp_without_hosting_when_no_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import ExitStack

    from harness.runtime import docker_client
    from harness.scenario.engine import Runner

    monkeypatch.setattr(docker_client, "docker_available", lambda timeout=3.0: False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    ls = parse_scenario(HOSTED, "h.yaml")
    runner = Runner(progress=lambda _m: None)
    lab = SimpleNamespace(lab_dir=tmp_path)
    with ExitStack() as stack:
        env = runner._hosting_for(ls, lab, stack)  # type: ignore[arg-type]
    assert env == {}
    assert runner._hosting is not None and runner._hosting.unavailable is not None
    assert "none answers at unix:///nonexistent/docker.sock" in runner._hosting.unavailable
    assert runner._hosting.instance.startswith("sc") and len(runner._hosting.instance) == 10


def test_no_hosted_step_no_hosting(tmp_path: Path) -> None:
    from contextlib import ExitStack

    from harness.scenario.engine import Runner

    ls = parse_scenario(HOSTED.split("  - kind: hosted_node")[0], "x.yaml")  # the lsp step alone
    runner = Runner(progress=lambda _m: None)
    with ExitStack() as stack:
        assert runner._hosting_for(ls, SimpleNamespace(lab_dir=tmp_path), stack) == {}  # type: ignore[arg-type]
    assert runner._hosting is None


def test_result_ranges_take_fractions() -> None:
    from harness.scenario.model import ResultCheck
    from harness.scenario.steps.expect import _check_result

    ctx = _ctx(None)
    ctx.history["shop"] = StepResult(1, "hosted_node", "shop", outcome={"time_to_running_s": 4.41, "charged_sat": 72450})
    _check_result(ctx, ResultCheck(step="shop", field="time_to_running_s", max=120.5))
    _check_result(ctx, ResultCheck(step="shop", field="charged_sat", min=72450, max=72450))
    assert ctx.result.failures == []
    _check_result(ctx, ResultCheck(step="shop", field="time_to_running_s", max=4))
    assert ctx.result.failures == ["step 'shop': time_to_running_s = 4.41 outside [..4]"]
