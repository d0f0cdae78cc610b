"""Watchtower integration on live nodes: the LSP's LND registers the operator's tower, the LSP reports
its health and backups, and a client that broadcasts a revoked commitment against the LSP raises an
alert, an audit entry, a WebSocket event and a webhook, whether the LSP's node sweeps the breach
itself or, while the LSP's node is down, its tower does (the lab's breach recipe, harness/breach.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from harness.breach import Breach
from harness.harness import LightningTestHarness
from harness.wait import wait_for
from harness.webhooks import WebhookReceiver
from tests.lab.lsp.conftest import ADMIN_KEY, LiveLsp, ws_events  # type: ignore[import-not-found]

OPERATOR_PASSWORD = "breach-operator"
TOPOLOGY = str(Path(__file__).parents[1] / "topologies" / "lsp-breach.yaml")
pytestmark = pytest.mark.topology(TOPOLOGY)
# What the LSP's LND and the cheater log while the breach recipe stops and restores nodes on purpose.
BREACH_NOISE = (
    "Unable to connect to", "unable to connect", "connection refused", "Unable to retrieve advertised address",
    "dead epoch stream", "in the process of starting up", "shutting down", "error sending backup",
    "unable to dial tower",
    # the LSP's LND, back after its tower swept: its own justice transaction finds the outputs spent
    "output already spent", "unable to find closed channel summary",
    # gossip: the channel's announcement proof arrives after the breach closed it
    "unable to store the proof",
    # the LSP's watchers asking its LND while it starts again (the tower case stops it)
    "waiting to start, RPC services not available",
)


def open_client_channel(live: LiveLsp, lab: LightningTestHarness) -> str:
    """The client's channel, opened by the LSP through its API, with 1,000,000 sat pushed to the
    client (the balance it will later try to steal back with a revoked state)."""
    cheater = lab.node("cheater")
    ch = live.client.open_channel(cheater.pubkey, 2_000_000, push_amount=1_000_000, host=cheater.p2p_address)
    lab.chain.wait_for_tx(ch["fundingTxid"])
    lab.mine(6)
    wait_for(lambda: live.client.get_channel(ch["channelId"])["status"] == "open", what="the channel to open",
             timeout_s="CHANNEL_OPEN")
    return str(live.client.get_channel(ch["channelId"])["channelPoint"])


def admin(live: LiveLsp, path: str) -> Any:
    r = httpx.get(live.base_url + path, headers={"X-Admin-Key": ADMIN_KEY}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def check_raised(live: LiveLsp, point: str, received: list[dict[str, Any]]) -> None:
    breach = wait_for(
        lambda: next((b for b in admin(live, "/api/admin/security")["breaches"] if b["channelPoint"] == point), None),
        what="the LSP to record the breach", timeout_s=120,
    )
    assert breach["clientId"] == live.creds.client_id and breach["recovered"] > 0
    alerts = admin(live, "/api/admin/alerts")
    assert any(a["rule"] == "channel_breach" and a["severity"] == "critical" for a in alerts), alerts
    log = admin(live, "/api/admin/audit?limit=1000")
    assert any(e["action"] == "channel.breach" and point in e["target"] for e in log["log"]) and log["intact"]
    assert [b for b in received if b["type"] == "channel_breach" and b["data"]["channelPoint"] == point]


def test_the_lsps_own_node_sweeps_a_breach_and_the_lsp_raises_it(lab: LightningTestHarness, lsp_factory: Any) -> None:
    lab.expect_log_errors(*BREACH_NOISE)
    live: LiveLsp = lsp_factory()
    point = open_client_channel(live, lab)
    with WebhookReceiver() as hook, connect(live.ws_url(), open_timeout=20) as ws:
        live.client.set_webhook(hook.url, ["channel_breach"])
        ws_events(ws, lambda m: m["type"] == "hello")
        result = Breach(lab.net, lab.faults).run("cheater", "hub")
        assert result.close_type == "BREACH_CLOSE" and result.channel_point == point
        event = ws_events(ws, lambda m: m["type"] == "channel_breach", timeout_s=120)
        assert event["data"]["breachTxid"] == result.breach_txid
        wait_for(hook.bodies, what="the breach webhook", timeout_s=60)
        check_raised(live, point, hook.bodies())


def test_the_tower_sweeps_while_the_lsps_node_is_down_and_the_lsp_still_raises_it(
    lab: LightningTestHarness, lsp_factory: Any
) -> None:
    lab.expect_log_errors(*BREACH_NOISE)
    tower = lab.node("tower").tower_uri()
    live: LiveLsp = lsp_factory(LSP_WATCHTOWERS=tower, LSP_ADMIN_PASSWORD=OPERATOR_PASSWORD)
    point = open_client_channel(live, lab)
    # The LSP registered the operator's tower in its LND, and reports it healthy.
    report = wait_for(
        lambda: (r := admin(live, "/api/admin/security"))["towers"] and r["towers"][0]["registered"] and r,
        what="the LSP to register its tower", timeout_s=60,
    )
    assert report["watchtowerClient"] and report["towers"][0]["pubkey"] == tower.split("@")[0]
    assert report["towers"][0]["configured"] and report["towers"][0]["healthy"]
    with WebhookReceiver() as hook:
        live.client.set_webhook(hook.url, ["channel_breach"])
        result = Breach(lab.net, lab.faults).run("cheater", "hub", tower="tower", register_tower=False)
        assert result.swept_by == "tower" and result.close_type == "BREACH_CLOSE"
        # The LSP's node was down through the breach: the LSP learns of it once its LND is back.
        with connect(live.ws_url(), open_timeout=20) as ws:
            ws_events(ws, lambda m: m["type"] == "hello")
            wait_for(hook.bodies, what="the breach webhook", timeout_s=120)
        check_raised(live, point, hook.bodies())
    # The sessions' backup counts survive LND's restart (its Stats totals are since start-up).
    assert admin(live, "/api/admin/security")["towers"][0]["backups"] > 0
    # The operator sees the tower and the breach on the dashboard's channels page.
    with httpx.Client(base_url=live.base_url, timeout=30) as web:
        assert web.post("/dashboard/login", data={"password": OPERATOR_PASSWORD}).status_code == 303
        page = web.get("/dashboard/channels").text
    assert "Watchtowers and breaches" in page and tower.split("@")[0][:16] in page and point in page
