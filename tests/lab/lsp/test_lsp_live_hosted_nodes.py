"""Hosted nodes, live: the LSP on star5's hub runs a dedicated LND per client as Docker containers
on the operator's daemon, with the lab's Bitcoin Core as their chain.

The node is driven only with what the API hands back (endpoint, macaroon, certificate), through the
lab's own gRPC client, never the LSP's. Expected charges come from the seed's fee structure and the
settings given here (monthly fee, opening fee = base + capacity x rate, push), not from the LSP.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from harness.harness import LightningTestHarness
from harness.hosted import dial, remove_instance
from harness.lsp_process import hosting_env
from harness.runtime.docker_client import client as docker_client
from harness.runtime.docker_client import docker_available
from harness.wait import wait_for
from harness.webhooks import WebhookReceiver
from lsp.client import LSPAPIError
from tests.lab.lsp.conftest import LiveLsp, ws_events  # type: ignore[import-not-found]

pytestmark = [
    pytest.mark.topology("star5"),
    pytest.mark.skipif(not docker_available(), reason="hosted nodes run on a Docker daemon: start one with scripts/dockerd.sh"),
]

MONTHLY_FEE = 50_000
TX_FEE = 100
BASE_FEE = 1_000  # LSP_CHANNEL_BASE_FEE
FEE_RATE = 0.001  # LSP_CHANNEL_FEE_RATE
CAPACITY = 1_000_000
PUSH = 20_000


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[str]:
    """This test's LSP instance name on the daemon. Hosted nodes outlive the LSP by design: this
    test's are removed afterwards (their logs kept in tmp_path) so the lab's network can go."""
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    remove_instance(name, tmp_path)


def settings(lab: LightningTestHarness, instance: str, tmp_path: Path) -> dict[str, str]:
    # One hosted node per client (the standard tier's limit, lowered from 3 so the test can reach it).
    policy = tmp_path / "compliance.yaml"
    policy.write_text(
        "default_tier: standard\n"
        "tiers:\n"
        "  standard: {per_payment_sat: 10000000, daily_volume_sat: 100000000, monthly_volume_sat: 1000000000,\n"
        "             max_channel_sat: 100000000, max_hosted_nodes: 1}\n"
    )
    return {
        **hosting_env(lab, instance=instance),
        "LSP_COMPLIANCE_CONFIG_PATH": str(policy),
        "LSP_HOSTING_MONTHLY_FEE": str(MONTHLY_FEE),
        "LSP_HOSTING_TRANSACTION_FEE": str(TX_FEE),
        "LSP_CHANNEL_BASE_FEE": str(BASE_FEE),
        "LSP_CHANNEL_FEE_RATE": str(FEE_RATE),
        "LSP_MIN_CHANNEL_SIZE": "100000",
    }


def wait_state(live: LiveLsp, node_id: str, state: str, *, mine: bool = False, timeout_s: str = "HOSTED_NODE") -> dict[str, Any]:
    lab = live.lab

    def check() -> dict[str, Any] | None:
        got = live.client.get_node(node_id)
        if got["state"] == state:
            return dict(got)
        if mine:
            lab.mine(1)
        if got["state"] in ("failed", "deleted") and state not in ("failed", "deleted"):
            pytest.fail(f"hosted node {node_id} is {got['state']}: {got['reason']}")  # ends the wait at once
        return None

    return wait_for(check, what=f"hosted node {node_id} to be {state}", timeout_s=timeout_s)


def denied(fn: Callable[[], Any]) -> str:
    with pytest.raises(Exception) as err:
        fn()
    text = str(err.value)
    assert "permission denied" in text or "verification failed" in text, text
    return text


@pytest.mark.parametrize("lsp_db_url", ["sqlite"], indirect=True)
def test_hosted_node_lifecycle(lab: LightningTestHarness, lsp_factory: Any, tmp_path: Path, instance: str) -> None:
    # The hub's LND on a node that lives for seconds: when the container dies it cannot look up the
    # private node's address to redial it, and it still tries to announce the public channel the
    # deletion closed before its announcement depth.
    lab.expect_log_errors(
        "Unable to retrieve advertised address for peer",
        "channel output has been spent",
        "unable to store the proof for short_chan_id",
        "Unable to send channel proof",
    )
    live: LiveLsp = lsp_factory(**settings(lab, instance, tmp_path))
    live.fund_client(150_000)
    before = live.client.balance()["balance"]
    daemon = docker_client()

    with connect(live.ws_url()) as ws:
        created = live.client.create_node(
            {
                "alias": "acme-node",
                "color": "#ff9900",
                "features": ["keysend", "scid-alias"],  # scid-alias: like every node of star5
                "channels": [{"capacity": CAPACITY, "pushAmount": PUSH}, {"capacity": CAPACITY, "isPrivate": True}],
            }
        )
        node_id = created["nodeId"]
        assert created["state"] == "provisioning" and created["macaroon"] is None
        node = wait_state(live, node_id, "running")
        ws_events(ws, lambda m: m["type"] == "node_running" and m["data"]["nodeId"] == node_id)

    # Charged: the first period, two opening fees and the push (the seed's fee structure).
    expected = MONTHLY_FEE + 2 * (BASE_FEE + int(CAPACITY * FEE_RATE)) + PUSH
    assert live.client.balance()["balance"] == before - expected
    assert node["pubkey"] and len(node["channelPoints"]) == 2
    assert node["tlsCert"].startswith("-----BEGIN CERTIFICATE-----")

    # A second node is over the tier's limit of one.
    with pytest.raises(LSPAPIError) as over:
        live.client.create_node({"alias": "second"})
    assert over.value.status == 403 and over.value.code == "limit_hosted_nodes"

    hosted = dial(node, tmp_path)  # the returned macaroon and certificate only
    rpc = hosted.ln
    try:
        assert rpc.get_info().pubkey == node["pubkey"]
        lab.mine(3)
        chans = wait_for(
            lambda: c if len(c := rpc.list_channels(active_only=True)) == 2 else None,
            what="both initial channels active on the hosted node",
            timeout_s="CHANNEL_OPEN",
        )
        assert sorted(c.capacity_sat for c in chans) == [CAPACITY, CAPACITY]
        assert sum(c.local_balance_sat for c in chans) == PUSH

        # Receive: an invoice on the hosted node (with a route hint over its private channel, the
        # public one is not announced yet), paid from c1 through the hub.
        # LND hints a private channel once it holds the peer's policy for it (a moment after it is active).
        inv = wait_for(
            lambda: i
            if (i := rpc._call("AddInvoice", rpc.s.ln.Invoice(value=5_000, memo="hosted", private=True)))
            and rpc.decode_invoice(i.payment_request).route_hints
            else None,
            what="an invoice of the hosted node with a route hint",
            timeout_s="GRAPH_SYNC",
        )
        paid = lab.node("c1").pay_invoice(inv.payment_request, fee_limit_sat=100)
        assert paid.succeeded, paid
        # Send: the hosted node pays c2 with its macaroon (offchain:write).
        out = lab.node("c2").ln.add_invoice(2_000, memo="from hosted")
        sent = hosted.router.pay_invoice(out.payment_request, fee_limit_sat=100)
        assert sent.succeeded, sent

        metrics = wait_for(
            lambda: m if (m := live.client.node_metrics(node_id))["paymentsSent"] == 1 else None,
            what="the hosted node's metrics to show its payment",
            timeout_s="PAYMENT",
        )
        assert metrics["channelCount"] == 2 and metrics["totalCapacity"] == 2 * CAPACITY
        assert metrics["successRate"] == 1.0 and metrics["uptime"] > 0 and metrics["forwardingEvents"] == []
        # Billed per payment: one received, one sent.
        wait_for(
            lambda: live.client.balance()["byKind"].get("hosting_tx_fee") == -2 * TX_FEE,
            what="the two transaction fees on the ledger",
            timeout_s="PAYMENT",
        )

        # What the macaroon must not do: on-chain sends, baking macaroons, dialling peers.
        c3_addr = lab.node("c3").ln.new_address()
        s = rpc.s
        denied(lambda: rpc._call("SendCoins", s.ln.SendCoinsRequest(addr=c3_addr, amount=10_000)))
        perm = s.ln.MacaroonPermission(entity="offchain", action="write")
        denied(lambda: rpc._call("BakeMacaroon", s.ln.BakeMacaroonRequest(permissions=[perm])))
        hub = lab.node("hub")
        denied(lambda: rpc.connect(hub.pubkey, hub.p2p_address))
    finally:
        hosted.close()

    # Kill its container: the LSP sees it die, says so, and restarts it.
    container = daemon.containers.get(f"lsp-{instance}-{node_id}")
    started = container.attrs["State"]["StartedAt"]
    with connect(live.ws_url()) as ws:
        container.kill()
        failed = ws_events(ws, lambda m: m["type"] == "node_failed" and m["data"]["nodeId"] == node_id)
        assert "exited" in failed["data"]["reason"]
        ws_events(ws, lambda m: m["type"] == "node_running" and m["data"]["nodeId"] == node_id, timeout_s=120)
    container.reload()
    assert container.status == "running" and container.attrs["State"]["StartedAt"] != started

    # Delete: refused without an address while it holds funds; then closed, swept, removed.
    with pytest.raises(LSPAPIError) as no_addr:
        live.client.delete_node(node_id)
    assert no_addr.value.status == 409 and no_addr.value.code == "sweep_address_required"
    assert no_addr.value.field == "query.sweepAddress"
    sweep_to = lab.node("c3").ln.new_address()
    c3_before = lab.node("c3").ln.balances().onchain_confirmed_sat
    assert live.client.delete_node(node_id, sweep_address=sweep_to, sweep_sat_per_vbyte=2)["state"] == "deleting"
    gone = wait_state(live, node_id, "deleted", mine=True, timeout_s="CHANNEL_CLOSE")
    assert gone["sweepTxid"] and gone["macaroon"] is None and gone["endpoint"] is None
    lab.mine(1)
    # The node held the push plus the 5,000 received less the 2,000 sent and its fee; the LSP opened
    # the channels, so it pays the closes; the sweep at 2 sat/vB costs a few hundred sat.
    got = wait_for(
        lambda: b if (b := lab.node("c3").ln.balances().onchain_confirmed_sat - c3_before) > 0 else None,
        what="the sweep to reach c3",
        timeout_s="CHANNEL_OPEN",
    )
    assert PUSH + 5_000 - 2_000 - 1_000 < got < PUSH + 5_000 - 2_000
    assert not daemon.containers.list(all=True, filters={"label": f"lsp.hosting.instance={instance}"})
    assert not [v for v in daemon.volumes.list() if v.name.startswith(f"lsp-{instance}-")]
    # The audit chain holds both, intact, each with its request id.
    audit = live.server.admin_get("/api/admin/audit")
    assert audit["intact"]
    mine = [e for e in audit["log"] if e["target"] == f"node:{node_id}"]
    assert sorted(e["action"] for e in mine) == ["node.create", "node.delete"] and all(e["requestId"] for e in mine)


def test_hosted_node_bad_input_creates_nothing(
    lab: LightningTestHarness, lsp_factory: Any, tmp_path: Path, instance: str
) -> None:
    live: LiveLsp = lsp_factory(**settings(lab, instance, tmp_path))
    live.fund_client(60_000)
    before = live.client.balance()["balance"]
    cases = [
        ({"alias": "x", "features": ["teleport"]}, 422, "body.features[0]"),
        ({"alias": "x", "channels": [{"capacity": 50_000}]}, 422, "body.channels[0].capacity"),
        ({"alias": "x", "channels": [{"capacity": 200_000, "pushAmount": 200_000}]}, 422, "body.channels[0].pushAmount"),
        ({"alias": "x", "color": "red"}, 422, "body.color"),
        ({"alias": "x" * 33}, 422, "body.alias"),
        ({"alias": "x", "channels": [{"capacity": 200_000}] * 6}, 422, "body.channels"),
        # 50,000 + 1,000 + 200 + 10,000 push > 60,000
        ({"alias": "x", "channels": [{"capacity": 200_000, "pushAmount": 10_000}]}, 402, None),
    ]
    for body, status, field in cases:
        with pytest.raises(LSPAPIError) as err:
            live.client.create_node(body)
        assert err.value.status == status, (body, err.value)
        assert err.value.field == field, (body, err.value)

    # A stopped Docker daemon: a clear 503, nothing charged, nothing created.
    down = live.onboard("down")[1]
    broken = lsp_factory(**{**settings(lab, instance, tmp_path), "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    with pytest.raises(LSPAPIError) as err:
        broken.client.create_node({"alias": "x"})
    assert err.value.status == 503 and err.value.code == "orchestrator_unavailable"
    assert "Docker daemon" in err.value.message
    assert broken.client.list_nodes() == []
    assert down.list_nodes() == []
    assert live.client.list_nodes() == [] and live.client.balance()["balance"] == before
    assert not docker_client().containers.list(all=True, filters={"label": f"lsp.hosting.instance={instance}"})


@pytest.mark.parametrize("lsp_db_url", ["sqlite"], indirect=True)
def test_hosted_node_stop_start_and_reconcile_after_lsp_restart(
    lab: LightningTestHarness, lsp_factory: Any, tmp_path: Path, instance: str, hook: WebhookReceiver
) -> None:
    # A 5-second billing period of 10,000 sat, paid in advance: the balance covers the first one only.
    period_fee = 10_000
    live: LiveLsp = lsp_factory(
        **{**settings(lab, instance, tmp_path), "LSP_HOSTING_BILLING_PERIOD_S": "5", "LSP_HOSTING_MONTHLY_FEE": str(period_fee)}
    )
    live.fund_client(15_000)
    live.client.set_webhook(hook.url, ["node_running", "node_stopped", "node_failed"])
    daemon = docker_client()
    with connect(live.ws_url()) as ws:
        node_id = live.client.create_node({"alias": "restarts"})["nodeId"]
        wait_state(live, node_id, "running")
        # The second period cannot be paid (5,000 sat left): the node is stopped, not deleted.
        stopped = ws_events(ws, lambda m: m["type"] == "node_stopped" and m["data"]["nodeId"] == node_id, timeout_s=60)
        assert "could not be paid (balance 5000 sat)" in stopped["data"]["reason"]
    assert live.client.get_node(node_id)["state"] == "stopped"
    with pytest.raises(LSPAPIError) as broke:
        live.client.start_node(node_id)
    assert broke.value.status == 402
    live.fund_client(300_000)
    live.client.start_node(node_id)  # pays the new period first
    wait_state(live, node_id, "running")
    assert live.client.balance()["byKind"]["hosting_fee"] <= -2 * period_fee
    container = daemon.containers.get(f"lsp-{instance}-{node_id}")

    # Stopped by its client: it stays stopped (the supervisor does not "repair" it), then starts again.
    with connect(live.ws_url()) as ws:
        assert live.client.stop_node(node_id)["state"] == "stopped"
        ws_events(ws, lambda m: m["type"] == "node_stopped" and m["data"]["nodeId"] == node_id)
        container.reload()
        assert container.status == "exited"
        assert live.client.start_node(node_id)["state"] == "stopped"  # 202: running once its LND is
        ws_events(ws, lambda m: m["type"] == "node_running" and m["data"]["nodeId"] == node_id, timeout_s=120)
    assert live.client.get_node(node_id)["state"] == "running"

    # The LSP dies; meanwhile the node's container dies too and a stranger's container with this
    # instance's labels appears. The restarted LSP restarts the node and reports the stranger.
    live.server.kill9()
    container.kill()
    image = container.image.tags[0]
    orphan = daemon.containers.create(
        image,
        command=["--version"],
        name=f"lsp-{instance}-hn-orphan",
        labels={"lsp.hosting.instance": instance, "lsp.hosting.node": "hn-orphan"},
    )
    live.server.start()
    wait_for(
        lambda: container.reload() or container.status == "running",
        what="the restarted LSP to restart the node's container",
        timeout_s="HOSTED_NODE",
    )
    wait_state(live, node_id, "running")
    admin = wait_for(
        lambda: got if (got := live.server.admin_get("/api/admin/nodes"))["lastPass"] else None,
        what="the supervisor's first pass",
        timeout_s="LSP_READY",
    )
    assert admin["orphans"] == ["hn-orphan"]
    assert [(n["nodeId"], n["state"], n["container"]) for n in admin["nodes"]] == [(node_id, "running", "running")]
    orphan.reload()  # reported, not deleted
    assert orphan.status == "created"
    # The webhook heard the node's life as the WebSocket did, the restart after the LSP's death included.
    wait_for(
        lambda: [b["type"] for b in hook.bodies() if b["data"]["nodeId"] == node_id][-2:] == ["node_failed", "node_running"],
        what="node_failed then node_running on the webhook",
        timeout_s=60,
    )
    kinds = [b["type"] for b in hook.bodies() if b["data"]["nodeId"] == node_id]
    assert kinds[0] == "node_running" and kinds.count("node_stopped") == 2  # unpaid, then by the client

    # Nothing in it: deleted at once, no sweep address needed.
    live.client.delete_node(node_id)
    gone = wait_state(live, node_id, "deleted")
    assert gone["sweepTxid"] is None
    assert [c.name for c in daemon.containers.list(all=True, filters={"label": f"lsp.hosting.instance={instance}"})] == [
        orphan.name
    ]
