"""Load scenario and suite files; every problem names the file, step and field (with its line)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.errors import TopologyError
from harness.scenario.model import (
    RECORDED_FIELDS,
    STEP_KINDS,
    BreachStep,
    ExpectStep,
    HostedNodeStep,
    KeysendStep,
    Lsps1OrderStep,
    Lsps2ReceiveStep,
    OpenChannelStep,
    PayStep,
    Scenario,
    ScenarioError,
    Suite,
    SwapInStep,
    SwapOutStep,
)
from harness.topology import Topology, load_topology
from harness.yamlerrors import _line_map, _locate, read_text, validation_problems, yaml_syntax_problem

SCENARIO_DIR = Path(__file__).resolve().parent.parent.parent / "scenarios"
SUITE_DIR = SCENARIO_DIR / "suites"


@dataclass(frozen=True)
class LoadedScenario:
    scenario: Scenario
    topology: Topology
    path: Path


def _read(text: str, source: str, what: str) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [yaml_syntax_problem(exc)], what=what) from None
    if not isinstance(data, dict):
        raise ScenarioError(source, [("", f"expected a mapping (a {what} file)")], what=what)
    return data, _line_map(text)


def _scenario_problems(
    exc: ValidationError, data: dict[str, Any], lines: dict[tuple[Any, ...], int]
) -> list[tuple[str, str]]:
    """pydantic puts the discriminator's value in the path (``steps.0.pay.amount_sat``);
    drop it so the location reads as the user wrote it, and say what a bad ``kind`` can be."""
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = list(err["loc"])
        if len(loc) >= 3 and loc[0] == "steps" and isinstance(loc[1], int) and loc[2] in STEP_KINDS:
            del loc[2]
        loc = [
            p
            for p in loc
            if not (
                isinstance(p, str)
                and (p.startswith(("function-", "literal[", "tagged-union[")) or p in ("int", "constrained-int"))
            )
        ]
        for i in range(len(loc) - 1):
            if loc[i] == "amount_sat" and loc[i + 1] in ("uniform", "lognormal"):
                del loc[i + 1]
                break
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "int_type" and loc and loc[-1] == "amount_sat" and isinstance(err["input"], dict):
            continue  # the input is a distribution: its own errors say what is wrong
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = "kind" if len(loc) == 2 and loc[0] == "steps" else "dist"
            loc.append(field)
            msg = f"must be one of: {', '.join(STEP_KINDS) if field == 'kind' else 'uniform, lognormal'}"
        problems.append((_locate(tuple(loc), lines), msg))
    # Union branches repeat the same location; keep the first message of each.
    seen: dict[str, str] = {}
    for where, msg in problems:
        seen.setdefault(where, msg)
    return list(seen.items())


def _node_refs(step: Any) -> list[tuple[str, str]]:
    refs: list[tuple[str, str]] = []
    for field in (
        "from_", "to", "node", "peer", "payer", "payee", "cheater", "victim", "tower", "lsp", "client",
        "receive_from", "pay_to", "delete_sweep_to",
    ):  # fmt: skip
        v = getattr(step, field, None)
        if v is None:
            continue
        key = "from" if field == "from_" else field
        for name in [v] if isinstance(v, str) else v:
            refs.append((key, name))
    return refs


def _hosted_problems(sc: Scenario, topo: Topology, i: int, step: HostedNodeStep) -> list[tuple[tuple[Any, ...], str]]:
    """What a hosted_node step needs beyond its own fields: an LSP (on Bitcoin Core), amounts with
    their nodes, pushes below capacities, channels to move money over, and a cleanup when the
    network is shared."""
    out: list[tuple[tuple[Any, ...], str]] = []
    if sc.lsp is None:
        out.append((("steps", i, "kind"), "hosted_node needs an LSP: set `lsp: <node>` on the scenario"))
    if topo.chain != "bitcoind":
        out.append((("steps", i, "kind"), f"hosted nodes run on Bitcoin Core; topology {topo.name} runs on {topo.chain}"))
    for j, ch in enumerate(step.channels):
        if ch.push_sat >= ch.capacity_sat:
            out.append((("steps", i, "channels", j, "push_sat"), f"must be below capacity_sat ({ch.capacity_sat})"))
    for node_key, amount_key in (("receive_from", "receive_sat"), ("pay_to", "pay_sat")):
        has_node, has_amount = getattr(step, node_key) is not None, getattr(step, amount_key) is not None
        if has_node and not has_amount:
            out.append((("steps", i, amount_key), f"needed with {node_key}: how many sat"))
        elif has_amount and not has_node:
            out.append((("steps", i, node_key), f"needed with {amount_key}: which node"))
        elif has_node and not step.channels:
            out.append((("steps", i, "channels"), f"{node_key} needs at least one channel to the hosted node"))
    inbound = sum(c.capacity_sat - c.push_sat for c in step.channels)
    if step.receive_sat is not None and step.channels and step.receive_sat >= inbound:
        out.append((("steps", i, "receive_sat"), f"must be below the channels' inbound capacity ({inbound} sat: "
                    "capacity_sat less push_sat)"))
    held = sum(c.push_sat for c in step.channels) + (step.receive_sat or 0)
    if step.pay_sat is not None and step.channels and step.pay_sat >= held:
        out.append((("steps", i, "pay_sat"), f"must be below what the hosted node holds ({held} sat: push_sat plus "
                    "receive_sat)"))
    if step.delete_sweep_to is None and sc.share_network:
        out.append((("steps", i, "delete_sweep_to"), "needed with share_network: true (a node left running is removed "
                    "when the scenario ends, leaving the LSP's node channels to nowhere on the shared network)"))
    return out


def _check_against(sc: Scenario, topo: Topology) -> list[tuple[tuple[Any, ...], str]]:
    names = {n.name for n in topo.nodes}
    known = ", ".join(sorted(names))
    problems: list[tuple[tuple[Any, ...], str]] = []
    named: dict[str, int] = {}
    recorded: dict[str, str] = {}  # name -> kind of the steps whose outcome `expect: results` may check
    if sc.lsp is not None and sc.lsp not in names:
        problems.append((("lsp",), f"unknown node {sc.lsp!r} (nodes: {known})"))
    elif sc.lsp is not None and topo.node(sc.lsp).implementation != "lnd":
        problems.append((("lsp",), f"{sc.lsp!r} is an ldk node; the LSP runs on lnd"))
    impl = {n.name: n.implementation for n in topo.nodes}
    for i, step in enumerate(sc.steps):
        ldk_step = step if isinstance(step, Lsps2ReceiveStep | Lsps1OrderStep) else None
        for key, name in _node_refs(step):
            if name not in names:
                problems.append((("steps", i, key), f"unknown node {name!r} in topology {topo.name} (nodes: {known})"))
            elif ldk_step is not None and key == "client":
                if impl[name] != "ldk":
                    problems.append((("steps", i, key), f"{step.kind} drives LDK's own LSPS client: {name!r} is an "
                                     f"{impl[name]} node (use jit_receive for an LND client)"))
                elif topo.node(name).lsp != ldk_step.lsp:
                    problems.append((("steps", i, key), f"{name!r} buys from {topo.node(name).lsp!r} in topology "
                                     f"{topo.name} (its `lsp:`), not from {ldk_step.lsp!r}"))
            elif impl[name] == "ldk" and ldk_step is not None:
                problems.append((("steps", i, key), f"{name!r} is an ldk node; the {key} of a {step.kind} step "
                                 "must be an lnd node"))
            elif impl[name] == "ldk":
                problems.append((("steps", i, key), f"{name!r} is an ldk node; {step.kind} steps drive LND nodes "
                                 "(LDK nodes take part through lsps2_receive and lsps1_order)"))
        if isinstance(step, OpenChannelStep) and step.push_sat >= step.capacity_sat:
            problems.append((("steps", i, "push_sat"), f"must be below capacity_sat ({step.capacity_sat})"))
        if isinstance(step, HostedNodeStep):
            problems += _hosted_problems(sc, topo, i, step)
        if isinstance(step, SwapInStep | SwapOutStep) and sc.lsp is None:
            problems.append((("steps", i, "kind"), f"{step.kind} needs an LSP: set `lsp: <node>` on the scenario"))
        if isinstance(step, BreachStep) and step.victim in names:
            from harness.breach import VICTIM_FLAGS

            have = set(topo.flags_for(topo.node(step.victim)))
            missing = [f for f in VICTIM_FLAGS if f not in have]
            if missing:
                problems.append(
                    (
                        ("steps", i, "victim"),
                        f"the victim {step.victim!r} must run with {' '.join(VICTIM_FLAGS)} in topology "
                        f"{topo.name} (missing: {' '.join(missing)}; see topologies/breach.yaml)",
                    )
                )
        if isinstance(step, ExpectStep) and step.events and sc.lsp is None:
            problems.append(
                (("steps", i, "events"), "event expectations need an LSP: set `lsp: <node>` on the scenario")
            )
        if isinstance(step, ExpectStep):
            for j, chk in enumerate(step.payments):
                if chk.step not in named:
                    earlier = ", ".join(named) or "none"
                    problems.append(
                        (
                            ("steps", i, "payments", j, "step"),
                            f"no earlier pay/keysend step named {chk.step!r} (named: {earlier})",
                        )
                    )
            for j, rc in enumerate(step.results):
                if rc.step not in recorded:
                    earlier = ", ".join(recorded) or "none"
                    problems.append(
                        (
                            ("steps", i, "results", j, "step"),
                            f"no earlier breach/jit_receive/lsps2_receive/lsps1_order/swap/hosted_node step named "
                            f"{rc.step!r} "
                            f"(named: {earlier})",
                        )
                    )
                elif rc.field not in RECORDED_FIELDS[recorded[rc.step]]:
                    fields = ", ".join(RECORDED_FIELDS[recorded[rc.step]])
                    problems.append(
                        (
                            ("steps", i, "results", j, "field"),
                            f"a {recorded[rc.step]} step records no {rc.field!r} (fields: {fields})",
                        )
                    )
            for group in ("balances", "channels"):
                for j, chk in enumerate(getattr(step, group)):
                    for key in ("node", "peer"):
                        v = getattr(chk, key, None)
                        if v is not None and v not in names:
                            problems.append(((("steps", i, group, j, key)), f"unknown node {v!r} (nodes: {known})"))
        if step.name is not None:
            if step.name in recorded:
                problems.append((("steps", i, "name"), f"duplicate step name {step.name!r}"))
            elif step.name in named:
                problems.append(
                    (("steps", i, "name"), f"duplicate step name {step.name!r} (also step {named[step.name]})")
                )
            elif isinstance(step, PayStep | KeysendStep):
                named[step.name] = i
            elif step.kind in RECORDED_FIELDS:
                recorded[step.name] = step.kind
    return problems


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ScenarioError(str(p), [("", "file not found")])
        return p
    cand = SCENARIO_DIR / f"{name_or_path}.yaml"
    if cand.exists():
        return cand
    known = ", ".join(sorted(x.stem for x in SCENARIO_DIR.glob("*.yaml")))
    suites = ", ".join(sorted(x.stem for x in SUITE_DIR.glob("*.yaml")))
    raise ScenarioError(
        str(name_or_path), [("", f"no such suite (known: {suites}), scenario (known: {known}) or file")], what="target"
    )


def parse_scenario(text: str, source: str = "<string>", *, base_dir: Path | None = None) -> LoadedScenario:
    data, lines = _read(text, source, "scenario")
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, _scenario_problems(exc, data, lines)) from None
    topo_ref = sc.topology
    if base_dir is not None and topo_ref.endswith((".yaml", ".yml")) and not Path(topo_ref).is_absolute():
        topo_ref = str(base_dir / topo_ref)
    try:
        topo = load_topology(topo_ref)
    except TopologyError as exc:
        raise ScenarioError(source, [(_locate(("topology",), lines), str(exc).replace("\n", " "))]) from None
    problems = _check_against(sc, topo)
    if problems:
        raise ScenarioError(source, [(_locate(p, lines), m) for p, m in problems])
    return LoadedScenario(sc, topo, Path(source))


def load_scenario(name_or_path: str | Path) -> LoadedScenario:
    path = resolve_scenario_path(name_or_path)
    return parse_scenario(_text(path, "scenario"), str(path), base_dir=path.parent)


def _text(path: Path, what: str) -> str:
    text, problem = read_text(path)
    if text is None:
        raise ScenarioError(str(path), [("", f"the file {problem}")], what=what)
    return text


def parse_suite(text: str, source: str = "<string>") -> Suite:
    data, lines = _read(text, source, "suite")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, validation_problems(exc, lines), what="suite") from None


def load_target(name_or_path: str) -> tuple[str, list[LoadedScenario]]:
    """A suite (name in scenarios/suites/ or a suite file) or one scenario.

    Returns (what ran, scenarios in order). Every scenario is validated before
    anything starts, so a typo in the last scenario fails in a second, not
    after the first ten minutes."""
    p = Path(name_or_path)
    suite_path: Path | None = None
    if p.suffix in (".yaml", ".yml") and p.is_file():
        try:
            head = yaml.safe_load(_text(p, "scenario"))
        except yaml.YAMLError:
            head = None  # parse_scenario below reports it with its line
        if isinstance(head, dict) and "scenarios" in head:
            suite_path = p
    elif (SUITE_DIR / f"{name_or_path}.yaml").exists():
        suite_path = SUITE_DIR / f"{name_or_path}.yaml"
    if suite_path is None:
        one = load_scenario(name_or_path)
        return one.scenario.name, [one]
    suite = parse_suite(_text(suite_path, "suite"), str(suite_path))
    loaded: list[LoadedScenario] = []
    problems: list[str] = []
    for ref in suite.scenarios:
        target: str | Path = ref
        if ref.endswith((".yaml", ".yml")) and not Path(ref).is_absolute():
            target = suite_path.parent / ref
        try:
            loaded.append(load_scenario(target))
        except ScenarioError as exc:
            problems.append(str(exc))
    if problems:
        raise ScenarioError(str(suite_path), [("", p) for p in problems], what="suite (a scenario failed validation)")
    return suite.name, loaded
