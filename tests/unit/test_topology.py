"""Topology validation: what a user sees for a bad file (pure logic, no nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.errors import TopologyError
from harness.topology import TOPOLOGY_DIR, Node, Topology, load_topology, parse_topology

pytestmark = pytest.mark.unit


def problems(text: str) -> str:
    with pytest.raises(TopologyError) as exc:
        parse_topology(text, "bad.yaml")
    return str(exc.value)


def test_shipped_topologies_are_valid() -> None:
    names = {p.stem for p in TOPOLOGY_DIR.glob("*.yaml")}
    assert {"line3", "star5", "ring4", "mesh8", "pair"} <= names
    star = load_topology("star5")
    assert [n.role for n in star.nodes].count("lsp") == 1 and len(star.nodes) == 5
    assert len(load_topology("mesh8").nodes) == 8


def test_unknown_node_in_channel_names_field_and_line() -> None:
    msg = problems("name: x\nnodes:\n  - name: a\n  - name: b\nchannels:\n  - {from: a, to: zed, capacity_sat: 100000}\n")
    assert "bad.yaml" in msg
    assert "channels[0].to (line 6): unknown node 'zed'" in msg


def test_duplicate_names_point_at_the_second_occurrence() -> None:
    msg = problems("name: x\nnodes:\n  - name: a\n  - name: b\n  - name: a\n")
    assert "nodes[2].name (line 5): duplicate node name 'a' (first at nodes[0])" in msg
    assert "(top level)" not in msg


def test_topology_built_in_code_gets_the_same_cross_field_checks() -> None:
    with pytest.raises(ValidationError, match=r"nodes\[1\]\.name: duplicate node name 'a'"):
        Topology(name="x", nodes=[Node(name="a"), Node(name="a")])
    with pytest.raises(ValidationError, match=r"channels\[0\]\.to: unknown node 'b'"):
        Topology.model_validate(
            {"name": "x", "nodes": [{"name": "a"}], "channels": [{"from": "a", "to": "b", "capacity_sat": 100_000}]}
        )


def test_capacity_outside_lnd_limits() -> None:
    base = "name: x\nnodes:\n  - name: a\n  - name: b\nchannels:\n  - {from: a, to: b, capacity_sat: %d}\n"
    assert "outside LND's limits 20000..16777215" in problems(base % 19_999)
    assert "--protocol.wumbo-channels" in problems(base % 20_000_000)
    wumbo = base.replace("nodes:", "flags: [--protocol.wumbo-channels]\nnodes:") % 20_000_000
    assert parse_topology(wumbo).channels[0].capacity_sat == 20_000_000


def test_unknown_keys_are_rejected_with_their_path() -> None:
    msg = problems("name: x\nnodes:\n  - name: a\n    colour: red\n")
    assert "nodes[0].colour (line 4): unknown key" in msg


def test_yaml_syntax_error_has_line_number() -> None:
    msg = problems("name: x\nnodes: [\n  - a\n")
    assert "YAML syntax error" in msg and "line 3" in msg


def test_push_must_be_below_capacity_and_no_self_channels() -> None:
    msg = problems(
        "name: x\nnodes: [{name: a}, {name: b}]\nchannels:\n"
        "  - {from: a, to: b, capacity_sat: 100000, push_sat: 100000}\n"
        "  - {from: a, to: a, capacity_sat: 100000}\n"
    )
    assert "channels[0].push_sat (line 4): push_sat (100000) must be below capacity_sat (100000)" in msg
    assert "channels[1].to (line 5): a channel cannot connect 'a' to itself" in msg


def test_bad_flag_and_bad_name() -> None:
    msg = problems("name: x\nnodes:\n  - name: Alice\n  - name: b\n    flags: [protocol.zero-conf]\n")
    assert "nodes[0].name (line 3)" in msg and "starting with a letter" in msg
    assert "nodes[1].flags" in msg and "must start with '--'" in msg


def test_missing_file_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="no such topology"):
        load_topology("nosuchthing")
    with pytest.raises(TopologyError, match="file not found"):
        load_topology(tmp_path / "absent.yaml")


def test_funding_plan_gives_one_output_per_opened_channel() -> None:
    t = load_topology("star5")
    plan = t.funding_plan()
    assert len(plan["hub"]) == 4 + 1  # four channels it opens, plus its free balance
    assert plan["c1"] == [100_000_000]


def test_chain_defaults_to_bitcoind_and_an_unknown_one_is_named_with_its_line() -> None:
    assert parse_topology("name: x\nnodes:\n  - name: a\n").chain == "bitcoind"
    assert parse_topology("name: x\nchain: btcd\nnodes:\n  - name: a\n").chain == "btcd"
    msg = problems("name: x\nchain: core\nnodes:\n  - name: a\n")
    assert "chain (line 2): Input should be 'bitcoind' or 'btcd'" in msg
    assert all(load_topology(p).chain == "bitcoind" for p in TOPOLOGY_DIR.glob("*.yaml"))


def test_ldk_nodes_and_their_lsp_are_validated_with_field_and_line() -> None:
    ok = parse_topology(
        "name: x\nnodes:\n  - {name: lsp, role: lsp}\n  - {name: w, implementation: ldk, lsp: lsp, trust_lsp_reserve: true}\n"
        "channels:\n  - {from: w, to: lsp, capacity_sat: 100000}\n"
    )
    assert ok.has_ldk and ok.node("w").lsp == "lsp" and ok.flags_for(ok.node("w")) == []

    msg = problems("name: x\nnodes:\n  - {name: a}\n  - {name: w, implementation: ldk, lsp: zed}\n")
    assert "nodes[1].lsp (line 4): unknown node 'zed'" in msg
    msg = problems("name: x\nnodes:\n  - {name: v, implementation: ldk}\n  - {name: w, implementation: ldk, lsp: v}\n")
    assert "nodes[1].lsp (line 4): 'v' is an ldk node; the LSP runs on lnd" in msg
    msg = problems("name: x\nchain: btcd\nnodes:\n  - {name: w, implementation: ldk}\n")
    assert "nodes[0].implementation (line 4): ldk nodes need chain: bitcoind" in msg
    assert "flags are LND command-line flags" in problems(
        "name: x\nnodes:\n  - {name: w, implementation: ldk, flags: [--foo]}\n"
    )
    assert "role 'lsp' needs LND" in problems("name: x\nnodes:\n  - {name: w, implementation: ldk, role: lsp}\n")
    assert "'lsp' is for ldk nodes" in problems("name: x\nnodes:\n  - {name: a}\n  - {name: b, lsp: a}\n")
    assert "'trust_lsp_reserve' needs 'lsp'" in problems(
        "name: x\nnodes:\n  - {name: w, implementation: ldk, trust_lsp_reserve: true}\n"
    )
    msg = problems(
        "name: x\nnodes:\n  - {name: a}\n  - {name: w, implementation: ldk}\nchannels:\n"
        "  - {from: w, to: a, capacity_sat: 100000, policy: {base_fee_msat: 5}}\n"
        "  - {from: a, to: w, capacity_sat: 100000, peer_policy: {base_fee_msat: 5}}\n"
    )
    assert "channels[0].policy (line 6): 'w' is an ldk node" in msg
    assert "channels[1].peer_policy (line 7): 'w' is an ldk node" in msg
    assert "implementation" in problems("name: x\nnodes:\n  - {name: w, implementation: cln}\n")


def test_a_file_that_is_not_utf8_text_or_not_a_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\nnodes:\n  - name: a\n".encode("latin-1"))
    with pytest.raises(TopologyError) as exc:
        load_topology(bad)
    assert "latin1.yaml: invalid topology" in str(exc.value)
    assert "is not UTF-8 text (byte 0xe9 on line 1)" in str(exc.value)
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    with pytest.raises(TopologyError, match="is a directory"):
        load_topology(folder)


def test_cltv_delta_below_what_lnd_accepts_is_refused_before_bring_up() -> None:
    msg = problems(
        "name: x\nnodes:\n  - {name: a}\n  - {name: b}\nchannels:\n"
        "  - {from: a, to: b, capacity_sat: 100000, policy: {cltv_delta: 20}}\n"
    )
    assert "channels[0].policy.cltv_delta (line 6)" in msg and "greater than or equal to 24" in msg
