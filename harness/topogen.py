"""Seeded topology generator: N nodes, a mean degree, distributions for
capacities, fees and time-lock deltas, a share of private channels.

The same parameters (seed included) give the same ``Topology`` on every
machine and Python version: everything is drawn from one ``random.Random``
seeded with the seed, in a fixed order. The graph is always connected: a
random spanning tree first (each node, in a shuffled order, attaches to one
placed before it), then channels between pairs not yet linked until the mean
degree is reached. Private channels are picked among those extra channels
only, so the public channels alone keep every node reachable (for routing and
for the graph the lab waits on).

Used three ways: ``lab gen --nodes 20 --degree 3 --seed 1 > t.yaml``; a
topology file with a ``generated:`` block instead of ``nodes``/``channels``
(``lab up t.yaml`` expands it); ``generate(GenSpec(...))`` from code
(``lab bench scale``).
"""

from __future__ import annotations

import math
import random
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from harness.topology import LND_MIN_CLTV_DELTA, MAX_CHANNEL_SAT, MIN_CHANNEL_SAT, Topology

# Capacities are rounded to this many sat (readable files, no false precision).
CAPACITY_STEP_SAT = 10_000
MAX_NODES = 500


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapacitySpec(_Spec):
    """Log-normal channel sizes around ``median`` (sat), clipped to ``min``..``max``."""

    median: int = Field(2_000_000, ge=MIN_CHANNEL_SAT, le=MAX_CHANNEL_SAT)
    sigma: float = Field(0.7, ge=0, le=3)
    min: int = Field(100_000, ge=MIN_CHANNEL_SAT, le=MAX_CHANNEL_SAT)
    max: int = Field(10_000_000, ge=MIN_CHANNEL_SAT, le=MAX_CHANNEL_SAT)

    @field_validator("min")
    @classmethod
    def _min_at_most_median(cls, v: int, info: ValidationInfo) -> int:
        median = info.data.get("median")
        if median is not None and v > median:
            raise ValueError(f"min ({v}) must not exceed median ({median})")
        return v

    @field_validator("max")
    @classmethod
    def _max_at_least_min_and_median(cls, v: int, info: ValidationInfo) -> int:
        for other in ("min", "median"):
            got = info.data.get(other)
            if got is not None and v < got:
                raise ValueError(f"max ({v}) must be at least {other} ({got})")
        return v


def _check_range(v: tuple[int, int]) -> tuple[int, int]:
    lo, hi = v
    if lo > hi:
        raise ValueError(f"[{lo}, {hi}]: the low end must not exceed the high end")
    return v


class GenSpec(_Spec):
    """What to generate. Every field has a default except ``nodes``."""

    nodes: int = Field(ge=2, le=MAX_NODES)
    # Mean number of channels per node: the graph gets round(nodes * degree / 2) channels.
    degree: float = Field(3.0, gt=0)
    seed: int = 1
    # uniform: extra channels between random pairs; preferential: pairs drawn by degree (hubs grow).
    attachment: Literal["uniform", "preferential"] = "uniform"
    capacity_sat: CapacitySpec = Field(default_factory=CapacitySpec)
    # Share of each channel's capacity the opener pushes to the peer: uniform in 0..push_fraction.
    push_fraction: float = Field(0.5, ge=0, lt=1)
    base_fee_msat: tuple[int, int] = (0, 2000)
    # Drawn log-uniformly (most channels cheap, a few expensive), like fees on mainnet.
    fee_rate_ppm: tuple[int, int] = (1, 1000)
    cltv_delta: list[int] = Field(default_factory=lambda: [40, 80, 144], min_length=1)
    # Share of channels whose peer side also declares a policy (else LND's default for that side).
    peer_policy_fraction: float = Field(0.5, ge=0, le=1)
    private_fraction: float = Field(0.0, ge=0, le=1)
    # Free on-chain balance of every node besides its channel funding (None: the lab's default, 1 BTC,
    # which also covers the opener's fees and leaves LND's coin selection room).
    balance_sat: int | None = Field(None, ge=0, le=100 * 100_000_000)
    prefix: str = Field("n", pattern=r"^[a-z][a-z0-9_-]{0,20}$")

    @field_validator("degree")
    @classmethod
    def _degree_fits_nodes(cls, v: float, info: ValidationInfo) -> float:
        n = info.data.get("nodes")
        if n is None:
            return v
        lo, hi = 2 * (n - 1) / n, n - 1
        if v < lo - 1e-9:
            raise ValueError(
                f"{v:g} is below {lo:g}: {n} nodes need at least {n - 1} channels to be connected "
                f"(mean degree 2*(N-1)/N)"
            )
        if v > hi + 1e-9:
            raise ValueError(f"{v:g} is above {hi:g}: {n} nodes have at most one channel per pair")
        return v

    @field_validator("base_fee_msat")
    @classmethod
    def _base_fee(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 0 or v[1] > 2**32 - 1:
            raise ValueError(f"[{v[0]}, {v[1]}] is outside 0..{2**32 - 1}")
        return _check_range(v)

    @field_validator("fee_rate_ppm")
    @classmethod
    def _fee_rate(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 0 or v[1] > 1_000_000:
            raise ValueError(f"[{v[0]}, {v[1]}] is outside 0..1000000")
        return _check_range(v)

    @field_validator("cltv_delta")
    @classmethod
    def _cltv(cls, v: list[int]) -> list[int]:
        for d in v:
            if not LND_MIN_CLTV_DELTA <= d <= 2016:
                raise ValueError(f"{d} is outside {LND_MIN_CLTV_DELTA}..2016 (LND refuses a delta below "
                                 f"routing.MinCLTVDelta, {LND_MIN_CLTV_DELTA})")
        return v

    @field_validator("private_fraction")
    @classmethod
    def _private_leaves_public_tree(cls, v: float, info: ValidationInfo) -> float:
        n, degree = info.data.get("nodes"), info.data.get("degree")
        if n is None or degree is None:
            return v
        total = channel_count(n, degree)
        private, spare = round(v * total), total - (n - 1)
        if private > spare:
            raise ValueError(
                f"{v:g} of {total} channels is {private} private, but only {spare} channel(s) lie beyond the "
                f"spanning tree that keeps the public graph connected (raise degree or lower private_fraction)"
            )
        return v

    def default_name(self) -> str:
        return f"gen-n{self.nodes}-d{self.degree:g}-s{self.seed}"


def channel_count(nodes: int, degree: float) -> int:
    return min(max(round(nodes * degree / 2), nodes - 1), nodes * (nodes - 1) // 2)


def _log_uniform(rng: random.Random, lo: int, hi: int) -> int:
    # Shifted by one so a range starting at 0 works.
    return round(math.exp(rng.uniform(math.log(lo + 1), math.log(hi + 1)))) - 1


def _edges(spec: GenSpec, rng: random.Random, names: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(spanning-tree edges, extra edges), each an unordered pair as a sorted tuple."""
    order = names[:]
    rng.shuffle(order)
    degree = dict.fromkeys(names, 0)
    linked: set[tuple[str, str]] = set()

    def pick(cands: list[str]) -> str:
        if spec.attachment == "preferential":
            return rng.choices(cands, weights=[degree[c] + 1 for c in cands])[0]
        return rng.choice(cands)

    def add(a: str, b: str) -> tuple[str, str]:
        pair = (min(a, b), max(a, b))
        linked.add(pair)
        degree[a] += 1
        degree[b] += 1
        return pair

    tree = [add(order[i], pick(order[:i])) for i in range(1, len(order))]
    want = channel_count(spec.nodes, spec.degree) - len(tree)
    extra: list[tuple[str, str]] = []
    if spec.attachment == "uniform":
        free = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if (a, b) not in linked]
        extra = [add(a, b) for a, b in rng.sample(free, want)]
    else:
        attempts = 0
        while len(extra) < want:
            attempts += 1
            if attempts > 200 * (want + 1):
                # A nearly complete graph: draw what is left uniformly from the free pairs.
                free = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if (a, b) not in linked]
                extra += [add(a, b) for a, b in rng.sample(free, want - len(extra))]
                break
            a, b = pick(names), pick(names)
            if a != b and (min(a, b), max(a, b)) not in linked:
                extra.append(add(a, b))
    return tree, extra


def generate(spec: GenSpec, *, name: str | None = None, description: str | None = None,
             chain: str = "bitcoind", flags: list[str] | None = None) -> Topology:
    """The topology ``spec`` describes (validated by the ``Topology`` model)."""
    rng = random.Random(spec.seed)
    width = len(str(spec.nodes))
    names = [f"{spec.prefix}{i:0{width}d}" for i in range(1, spec.nodes + 1)]
    tree, extra = _edges(spec, rng, names)
    private = set(rng.sample(extra, round(spec.private_fraction * (len(tree) + len(extra)))))
    cap = spec.capacity_sat

    def policy() -> dict[str, int]:
        return {
            "base_fee_msat": rng.randint(*spec.base_fee_msat),
            "fee_rate_ppm": _log_uniform(rng, *spec.fee_rate_ppm),
            "cltv_delta": rng.choice(spec.cltv_delta),
        }

    channels: list[dict[str, Any]] = []
    for pair in sorted([*tree, *extra]):
        a, b = pair if rng.random() < 0.5 else pair[::-1]
        raw = rng.lognormvariate(math.log(cap.median), cap.sigma) if cap.sigma else float(cap.median)
        capacity = min(max(round(raw / CAPACITY_STEP_SAT) * CAPACITY_STEP_SAT, cap.min), cap.max)
        push = round(rng.uniform(0, spec.push_fraction) * capacity / 1000) * 1000
        ch: dict[str, Any] = {"from": a, "to": b, "capacity_sat": capacity, "policy": policy()}
        if push:
            ch["push_sat"] = min(push, capacity - 1000)
        if pair in private:
            ch["private"] = True
        if rng.random() < spec.peer_policy_fraction:
            ch["peer_policy"] = policy()
        channels.append(ch)
    return Topology.model_validate({
        "name": name or spec.default_name(),
        "description": description if description is not None else (
            f"generated: {spec.nodes} nodes, mean degree {spec.degree:g} ({spec.attachment}), seed {spec.seed}"),
        "chain": chain,
        "flags": flags or [],
        "nodes": [{"name": n} if spec.balance_sat is None else {"name": n, "balance_sat": spec.balance_sat}
                  for n in names],
        "channels": channels,
    })


class GeneratedFile(_Spec):
    """A topology file with ``generated:`` in place of ``nodes`` and ``channels``."""

    name: str | None = None
    description: str | None = None
    chain: Literal["bitcoind", "btcd"] = "bitcoind"
    flags: list[str] = Field(default_factory=list)
    generated: GenSpec


def expand(data: dict[str, Any]) -> Topology:
    """A parsed YAML mapping with a ``generated`` block -> the generated topology.

    Raises pydantic's ``ValidationError`` located at ``generated.<field>``
    (the topology loader adds the file's line numbers)."""
    f = GeneratedFile.model_validate(data)
    return generate(f.generated, name=f.name, description=f.description, chain=f.chain, flags=f.flags)


def to_yaml(topology: Topology, *, header: str = "") -> str:
    """A topology file for ``topology``: one line per node and per channel."""

    def flow(d: dict[str, Any]) -> str:
        return yaml.safe_dump(d, default_flow_style=True, sort_keys=False, width=10_000).strip()

    out = [f"# {line}" if line else "#" for line in header.splitlines()]
    out.append(yaml.safe_dump({"name": topology.name, "description": topology.description}, sort_keys=False).strip())
    if topology.chain != "bitcoind":
        out.append(f"chain: {topology.chain}")
    if topology.flags:
        out.append("flags:")
        out += [f"  - {f}" for f in topology.flags]
    out.append("nodes:")
    for n in topology.nodes:
        out.append(f"  - {flow(n.model_dump(exclude_defaults=True))}")
    out.append("channels:")
    for c in topology.channels:
        d = c.model_dump(by_alias=True, exclude_defaults=True)
        # Policies spelled out in full: the generator drew every field.
        d["policy"] = c.policy.model_dump()
        if c.peer_policy is not None:
            d["peer_policy"] = c.peer_policy.model_dump()
        out.append(f"  - {flow(d)}")
    return "\n".join(out) + "\n"
