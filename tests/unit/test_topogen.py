"""The seeded topology generator (harness/topogen.py): deterministic, connected, valid, and
clear about bad parameters. Pure logic: nothing is started."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from harness.cli import main
from harness.errors import TopologyError
from harness.topogen import GenSpec, generate, to_yaml
from harness.topology import LND_MIN_CLTV_DELTA, Topology, parse_topology

pytestmark = pytest.mark.unit


def _components(nodes: list[str], pairs: list[tuple[str, str]]) -> int:
    """Connected components by union-find (independent of the generator's spanning tree)."""
    parent = {n: n for n in nodes}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[root(a)] = root(b)
    return len({root(n) for n in nodes})


def _pairs(t: Topology, *, public_only: bool = False) -> list[tuple[str, str]]:
    return [(c.from_, c.to) for c in t.channels if not (public_only and c.private)]


def test_same_seed_same_topology_other_seed_other_topology() -> None:
    spec = GenSpec(nodes=20, degree=3, seed=7, private_fraction=0.2)
    assert generate(spec) == generate(GenSpec(nodes=20, degree=3, seed=7, private_fraction=0.2))
    assert generate(spec).channels != generate(spec.model_copy(update={"seed": 8})).channels


def test_yaml_round_trip_gives_the_same_topology() -> None:
    t = generate(GenSpec(nodes=12, degree=2.5, seed=3, private_fraction=0.1, attachment="preferential"))
    assert parse_topology(to_yaml(t, header="a header\nover two lines"), "gen.yaml") == t


@pytest.mark.parametrize("attachment", ["uniform", "preferential"])
@pytest.mark.parametrize(("nodes", "degree"), [(2, 1), (5, 1.6), (10, 2), (20, 3), (50, 3), (30, 6), (8, 7)])
def test_always_connected_with_the_asked_mean_degree(nodes: int, degree: float, attachment: str) -> None:
    for seed in range(5):
        t = generate(GenSpec(nodes=nodes, degree=degree, seed=seed, attachment=attachment))
        names = [n.name for n in t.nodes]
        assert len(names) == nodes
        assert _components(names, _pairs(t)) == 1
        # One channel per pair, none to itself.
        pairs = {frozenset(p) for p in _pairs(t)}
        assert len(pairs) == len(t.channels) and all(len(p) == 2 for p in pairs)
        # Mean degree: each channel adds one to the degree of both ends.
        assert len(t.channels) == max(round(nodes * degree / 2), nodes - 1)


def test_private_channels_leave_the_public_graph_connected() -> None:
    for seed in range(10):
        t = generate(GenSpec(nodes=15, degree=4, seed=seed, private_fraction=0.3))
        private = [c for c in t.channels if c.private]
        assert len(private) == round(0.3 * len(t.channels))
        assert _components([n.name for n in t.nodes], _pairs(t, public_only=True)) == 1


def test_policies_and_capacities_stay_in_their_bounds() -> None:
    spec = GenSpec(nodes=40, degree=4, seed=2, base_fee_msat=(10, 20), fee_rate_ppm=(0, 50), cltv_delta=[24, 100],
                   capacity_sat={"median": 500_000, "sigma": 2.0, "min": 100_000, "max": 1_000_000})
    t = generate(spec)
    policies = [c.policy for c in t.channels] + [c.peer_policy for c in t.channels if c.peer_policy]
    assert all(10 <= p.base_fee_msat <= 20 and 0 <= p.fee_rate_ppm <= 50 for p in policies)
    assert {p.cltv_delta for p in policies} <= {24, 100}
    assert all(p.cltv_delta >= LND_MIN_CLTV_DELTA for p in policies)
    assert all(100_000 <= c.capacity_sat <= 1_000_000 and c.push_sat < c.capacity_sat for c in t.channels)
    # sigma 2 around 500k reaches both clips.
    assert {100_000, 1_000_000} <= {c.capacity_sat for c in t.channels}


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"nodes": 1}, "nodes", "greater than or equal to 2"),
        ({"nodes": 10, "degree": 1.5}, "degree", "10 nodes need at least 9 channels"),
        ({"nodes": 4, "degree": 4}, "degree", "at most one channel per pair"),
        ({"nodes": 4, "degree": 1.5, "private_fraction": 0.5}, "private_fraction", "spanning tree"),
        ({"nodes": 4, "cltv_delta": [18]}, "cltv_delta", "outside 24..2016"),
        ({"nodes": 4, "fee_rate_ppm": (50, 10)}, "fee_rate_ppm", "low end must not exceed"),
        ({"nodes": 4, "capacity_sat": {"median": 50_000, "min": 100_000}}, "capacity_sat.min", "must not exceed median"),
        ({"nodes": 4, "capacity_sat": {"max": 10_000}}, "capacity_sat.max", "greater than or equal to 20000"),
    ],
)
def test_bad_parameters_name_the_field(fields: dict[str, object], field: str, says: str) -> None:
    with pytest.raises(ValidationError) as exc:
        GenSpec.model_validate(fields)
    errors = {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.value.errors()}
    assert field in errors and says in errors[field], errors


def test_a_generated_block_in_a_topology_file() -> None:
    text = "name: g\nflags: [--protocol.zero-conf]\ngenerated:\n  nodes: 6\n  degree: 2\n  seed: 5\n"
    t = parse_topology(text, "g.yaml")
    assert t == generate(GenSpec(nodes=6, degree=2, seed=5), name="g", flags=["--protocol.zero-conf"])
    with pytest.raises(TopologyError) as exc:
        parse_topology("name: g\nnodes: [{name: a}]\ngenerated:\n  nodes: 6\n  degree: 0.5\n", "g.yaml")
    msg = str(exc.value)
    assert "generated.degree (line 5): 0.5 is below" in msg
    assert "nodes (line 2): 'nodes' cannot be combined with 'generated'" in msg


def test_lab_gen_prints_a_loadable_file_and_names_bad_options() -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["gen", "--nodes", "7", "--degree", "2", "--seed", "9"])
    assert r.exit_code == 0, r.output
    assert parse_topology(r.output) == generate(GenSpec(nodes=7, degree=2, seed=9))
    bad = runner.invoke(main, ["gen", "--nodes", "10", "--degree", "1"])
    assert bad.exit_code == 1 and "--degree: 1 is below 1.8" in bad.output and "Traceback" not in bad.output
    assert runner.invoke(main, ["gen", "--nodes", "1"]).exit_code == 2
