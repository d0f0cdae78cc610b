"""Declarative topologies: ``topologies/*.yaml`` loaded and validated.

A bad file is reported as a ``TopologyError`` naming the file, the field path
(with its line in the file) and what is wrong, never a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from harness.errors import TopologyError
from harness.yamlerrors import _fmt_loc, _line_map, _locate, read_text, validation_problems, yaml_syntax_problem

# LND's limits on a channel's capacity (lnd/funding: MinChanFundingSize,
# MaxBtcFundingAmount and MaxBtcFundingAmountWumbo).
MIN_CHANNEL_SAT = 20_000
MAX_CHANNEL_SAT = 16_777_215
MAX_WUMBO_CHANNEL_SAT = 1_000_000_000
WUMBO_FLAG = "--protocol.wumbo-channels"
# lnd/routing: MinCLTVDelta, the smallest time-lock delta LND accepts in a channel policy.
LND_MIN_CLTV_DELTA = 24

DEFAULT_BALANCE_SAT = 100_000_000
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

TOPOLOGY_DIR = Path(__file__).resolve().parent.parent / "topologies"

# Validation context key: the caller runs ``_check_graph`` itself (see ``Topology._graph``).
GRAPH_CHECKS_DEFERRED = "graph_checks_deferred"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Policy(_Model):
    """Routing policy of one side of a channel."""

    base_fee_msat: int = Field(1000, ge=0, le=2**32 - 1)
    fee_rate_ppm: int = Field(1, ge=0, le=1_000_000)
    # LND refuses a time-lock delta below routing.MinCLTVDelta (24 in v0.21) when the policy is set.
    cltv_delta: int = Field(80, ge=LND_MIN_CLTV_DELTA, le=2016)


class Node(_Model):
    name: str
    # lnd (the LSP's implementation) or ldk (ldk-node, driven by interop/ldk).
    implementation: Literal["lnd", "ldk"] = "lnd"
    role: Literal["lsp", "client", "router", "watchtower", "payer"] | None = None
    flags: list[str] = Field(default_factory=list)
    balance_sat: int | None = Field(None, ge=0, le=100 * 100_000_000)
    # ldk nodes only: the LND node whose LSP this node's LSPS1/LSPS2 clients talk to.
    lsp: str | None = None
    # ldk nodes only: accept the LSP's anchor channels without an on-chain reserve of our own
    # (ldk-node's trusted_peers_no_reserve). Without it a wallet with no coins refuses them.
    trust_lsp_reserve: bool = False

    @model_validator(mode="after")
    def _implementation_fields(self) -> Node:
        if self.implementation == "ldk":
            if self.flags:
                raise ValueError("flags are LND command-line flags; an ldk node takes none")
            if self.role in ("lsp", "watchtower"):
                raise ValueError(f"role {self.role!r} needs LND; an ldk node can be a client, payer or router")
        else:
            if self.lsp is not None:
                raise ValueError("'lsp' is for ldk nodes (whose LSPS clients it names); this node is lnd")
            if self.trust_lsp_reserve:
                raise ValueError("'trust_lsp_reserve' is for ldk nodes; this node is lnd")
        if self.trust_lsp_reserve and self.lsp is None:
            raise ValueError("'trust_lsp_reserve' needs 'lsp' (the node to trust)")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("must be 1-32 characters of a-z, 0-9, '_' or '-', starting with a letter")
        return v

    @field_validator("flags")
    @classmethod
    def _flags(cls, v: list[str]) -> list[str]:
        for f in v:
            if not f.startswith("--"):
                raise ValueError(f"flag {f!r} must start with '--' (e.g. '--protocol.zero-conf')")
        return v


class Channel(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    capacity_sat: int
    push_sat: int = Field(0, ge=0)
    private: bool = False
    policy: Policy = Field(default_factory=Policy)
    peer_policy: Policy | None = None

    # Field validators reading earlier fields (``info.data``) rather than a
    # model validator, so the error points at ``channels[i].to`` or
    # ``channels[i].push_sat`` and its line, not at the whole channel. A field
    # missing from ``info.data`` failed its own validation and is reported there.
    @field_validator("to")
    @classmethod
    def _not_to_itself(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("from_") == v:
            raise ValueError(f"a channel cannot connect {v!r} to itself")
        return v

    @field_validator("push_sat")
    @classmethod
    def _push_below_capacity(cls, v: int, info: ValidationInfo) -> int:
        capacity = info.data.get("capacity_sat")
        if capacity is not None and v >= capacity:
            raise ValueError(f"push_sat ({v}) must be below capacity_sat ({capacity})")
        return v


class Topology(_Model):
    name: str
    description: str = ""
    # The chain backend: Bitcoin Core (the default, what production LND runs on) or btcd.
    chain: Literal["bitcoind", "btcd"] = "bitcoind"
    flags: list[str] = Field(default_factory=list, description="LND flags for every node")
    nodes: list[Node] = Field(min_length=1)
    channels: list[Channel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _graph(self, info: ValidationInfo) -> Topology:
        # A topology built in code gets the cross-field checks too. pydantic
        # locates a model validator's error at the model ("(top level)"), so
        # parse_topology defers them here and reports each at its field path
        # and line from _check_graph instead.
        if not (info.context or {}).get(GRAPH_CHECKS_DEFERRED):
            problems = _check_graph(self)
            if problems:
                raise ValueError("; ".join(f"{_fmt_loc(path)}: {msg}" for path, msg in problems))
        return self

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def flags_for(self, node: Node) -> list[str]:
        """LND flags of ``node`` (none for an ldk node: the topology's flags are LND's)."""
        if node.implementation != "lnd":
            return []
        return [*self.flags, *node.flags]

    @property
    def has_ldk(self) -> bool:
        return any(n.implementation == "ldk" for n in self.nodes)

    def funding_plan(self) -> dict[str, list[int]]:
        """On-chain outputs each node gets: one per channel it opens (capacity
        plus a fee margin, so all opens can run in parallel on confirmed coins)
        and its free balance."""
        plan: dict[str, list[int]] = {n.name: [] for n in self.nodes}
        for ch in self.channels:
            plan[ch.from_].append(ch.capacity_sat + 200_000)
        for n in self.nodes:
            bal = DEFAULT_BALANCE_SAT if n.balance_sat is None else n.balance_sat
            if bal > 0:
                plan[n.name].append(bal)
        return plan


def _check_graph(t: Topology) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-field checks that need the whole file; returns (path, message)."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    first_index: dict[str, int] = {}
    for i, n in enumerate(t.nodes):
        if n.name in first_index:
            problems.append((("nodes", i, "name"), f"duplicate node name {n.name!r} (first at nodes[{first_index[n.name]}])"))
        else:
            first_index[n.name] = i
    names = set(first_index)
    impl = {n.name: n.implementation for n in t.nodes}
    for i, n in enumerate(t.nodes):
        if n.implementation == "ldk" and t.chain != "bitcoind":
            problems.append((("nodes", i, "implementation"),
                             f"ldk nodes need chain: bitcoind (ldk-node has no {t.chain} chain source)"))
        if n.lsp is not None:
            if n.lsp not in names:
                problems.append((("nodes", i, "lsp"), f"unknown node {n.lsp!r} (nodes: {', '.join(sorted(names))})"))
            elif impl[n.lsp] != "lnd":
                problems.append((("nodes", i, "lsp"), f"{n.lsp!r} is an ldk node; the LSP runs on lnd"))
    default = Policy()
    for i, ch in enumerate(t.channels):
        if impl.get(ch.from_) == "ldk" and ch.policy != default:
            problems.append((("channels", i, "policy"),
                             f"{ch.from_!r} is an ldk node: the lab sets only LND's routing policies"))
        if impl.get(ch.to) == "ldk" and ch.peer_policy is not None:
            problems.append((("channels", i, "peer_policy"),
                             f"{ch.to!r} is an ldk node: the lab sets only LND's routing policies"))
        for side, key in ((ch.from_, "from"), (ch.to, "to")):
            if side not in names:
                problems.append((("channels", i, key), f"unknown node {side!r} (nodes: {', '.join(sorted(names))})"))
        if ch.from_ in names and ch.to in names:
            wumbo = all(WUMBO_FLAG in t.flags_for(t.node(x)) for x in (ch.from_, ch.to))
            hi = MAX_WUMBO_CHANNEL_SAT if wumbo else MAX_CHANNEL_SAT
            if not MIN_CHANNEL_SAT <= ch.capacity_sat <= hi:
                hint = "" if wumbo else f" (larger channels need {WUMBO_FLAG} on both nodes)"
                limits = f"{ch.capacity_sat} is outside LND's limits {MIN_CHANNEL_SAT}..{hi}{hint}"
                problems.append((("channels", i, "capacity_sat"), limits))
    return problems


def parse_topology(text: str, source: str = "<string>") -> Topology:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(source, [yaml_syntax_problem(exc)]) from None
    if not isinstance(data, dict):
        raise TopologyError(source, [("", "expected a mapping with 'name', 'nodes' and 'channels' (or 'generated')")])
    lines = _line_map(text)
    if "generated" in data:
        # nodes and channels drawn by the seeded generator (harness/topogen.py).
        from harness.topogen import expand

        both = [k for k in ("nodes", "channels") if k in data]
        problems = [(_locate((k,), lines), f"'{k}' cannot be combined with 'generated' (the generator draws them)")
                    for k in both]
        try:
            generated = expand({k: v for k, v in data.items() if k not in both})
        except ValidationError as exc:
            problems += validation_problems(exc, lines)
        if problems:
            raise TopologyError(source, problems)
        return generated
    try:
        topo = Topology.model_validate(data, context={GRAPH_CHECKS_DEFERRED: True})
    except ValidationError as exc:
        raise TopologyError(source, validation_problems(exc, lines)) from None
    graph_problems = _check_graph(topo)
    if graph_problems:
        raise TopologyError(source, [(_locate(p, lines), m) for p, m in graph_problems])
    return topo


def resolve_topology_path(name_or_path: str | Path) -> Path:
    """A name from ``topologies/`` (``star5``) or a path to a YAML file."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise TopologyError(str(p), [("", "file not found")])
        return p
    for ext in (".yaml", ".yml"):
        cand = TOPOLOGY_DIR / f"{name_or_path}{ext}"
        if cand.exists():
            return cand
    known = ", ".join(sorted(x.stem for x in TOPOLOGY_DIR.glob("*.yaml")))
    raise TopologyError(str(name_or_path), [("", f"no such topology (known: {known}) and no such file")])


def load_topology(name_or_path: str | Path) -> Topology:
    path = resolve_topology_path(name_or_path)
    text, problem = read_text(path)
    if text is None:
        raise TopologyError(str(path), [("", f"the file {problem}")])
    return parse_topology(text, str(path))
