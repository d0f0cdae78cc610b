"""Channel graph model and the ``lncli describegraph`` adapter."""

from __future__ import annotations

import pytest

from lsp.routing.graph import Channel, ChannelGraph, from_lnd_describe_graph

pytestmark = pytest.mark.unit

DESCRIBE_GRAPH = {
    "nodes": [{"pub_key": "02aa", "alias": "alice"}, {"pub_key": "03bb", "alias": "bob"}, {"pub_key": "02cc"}],
    "edges": [
        {
            "channel_id": "123456789",
            "chan_point": "ab" * 32 + ":0",
            "last_update": 0,
            "node1_pub": "02aa",
            "node2_pub": "03bb",
            "capacity": "500000",
            "node1_policy": {
                "time_lock_delta": 80,
                "min_htlc": "1000",
                "fee_base_msat": "1000",
                "fee_rate_milli_msat": "250",
                "disabled": False,
                "max_htlc_msat": "495000000",
            },
            "node2_policy": {
                "time_lock_delta": 40,
                "min_htlc": "1",
                "fee_base_msat": "0",
                "fee_rate_milli_msat": "1",
                "disabled": True,
                "max_htlc_msat": "495000000",
            },
        },
        {
            "channel_id": "987",
            "chan_point": "cd" * 32 + ":1",
            "node1_pub": "03bb",
            "node2_pub": "02cc",
            "capacity": "100000",
            "node1_policy": None,  # never announced: that direction is unusable
            "node2_policy": {
                "time_lock_delta": 144,
                "min_htlc": "1000",
                "fee_base_msat": "1",
                "fee_rate_milli_msat": "10",
                "disabled": False,
                "max_htlc_msat": "0",
            },
        },
    ],
}


def test_describegraph_adapter_maps_both_policies() -> None:
    g = from_lnd_describe_graph(DESCRIBE_GRAPH)
    assert len(g) == 3
    fwd = g.channels[g.edge_index("123456789", "02aa")]
    assert fwd == Channel("123456789", "02aa", "03bb", 500_000, 1000, 250, 80, 1000, 495_000_000, True)
    rev = g.channels[g.edge_index("123456789", "03bb")]
    assert rev.dest == "02aa" and not rev.enabled and rev.fee_rate_ppm == 1
    only = g.channels[g.edge_index("987", "02cc")]
    assert only.htlc_max_msat is None and only.max_forward_msat == 100_000_000
    with pytest.raises(KeyError):
        g.edge_index("987", "03bb")


def test_arrays_and_reverse_index() -> None:
    g = from_lnd_describe_graph(DESCRIBE_GRAPH)
    assert g.node_count == 3
    i = g.edge_index("123456789", "02aa")
    assert g.reverse_index(i) == g.edge_index("123456789", "03bb")
    assert g.reverse_index(g.edge_index("987", "02cc")) == -1
    assert g.array("capacity_msat")[i] == 500_000_000
    assert list(g.array("enabled")) == [c.enabled for c in g.channels]


def test_from_dicts_and_local_balances() -> None:
    rows = [{"scid": "1", "source": "me", "dest": "x", "capacity_sat": 10}]
    g = ChannelGraph.from_dicts(rows, self_node="me")
    g.set_local_balance("1", "me", 7000)
    assert g.local_balances_msat == {("1", "me"): 7000}
    g.add(Channel("2", "x", "me", 5))
    assert g.node_count == 2 and len(g.array("src")) == 2  # cache rebuilt after add
