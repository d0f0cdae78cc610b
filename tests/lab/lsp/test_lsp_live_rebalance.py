"""Circular rebalancing and the health view, live, on a topology with a circle (topologies/lsp-circle.yaml)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from harness.wait import wait_for
from lsp.client import LSPAPIError
from tests.lab.lsp.conftest import ADMIN_KEY, LiveLsp  # type: ignore[import-not-found]


def health(live: LiveLsp) -> dict[str, object]:
    r = httpx.get(live.base_url + "/api/channels/health", headers={"X-Admin-Key": ADMIN_KEY}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def by_chan(h: dict[str, object], chan_id: int) -> dict[str, object]:
    return next(c for c in h["channels"] if c["chanId"] == str(chan_id))  # type: ignore[attr-defined]


@pytest.mark.topology("lsp-circle")
def test_rebalance_moves_liquidity_in_a_circle_and_health_shows_it(lsp_factory: Callable[..., LiveLsp]) -> None:
    live = lsp_factory(LSP_REBALANCE_THRESHOLD="0.25")
    lab, lsp = live.lab, live.client
    hub, c1, c2 = lab.node("hub"), lab.node("c1"), lab.node("c2")
    live.fund_client(20_000, payer="c1")

    # The client's channel: hub -> c2, half pushed to c2 so c2 can route back to the hub.
    ch = lsp.open_channel(c2.pubkey, 2_000_000, push_amount=1_000_000, host=c2.p2p_address)
    lab.chain.wait_for_tx(ch["fundingTxid"])
    lab.mine(6)
    opened = wait_for(
        lambda: (got := lsp.get_channel(ch["channelId"]))["status"] == "open" and got,
        what="the client's channel to open",
        timeout_s="CHANNEL_OPEN",
    )
    target_id = int(opened["chanId"])
    source = hub.channel_with(c1)
    # The hub needs c2's policy for the last hop and c1's for c1 -> c2 before it can find the circle.
    wait_for(
        lambda: (e := hub.describe_graph().edge(opened["channelPoint"])) is not None and e.policy_of(c2.pubkey),
        what="c2's policy of the new channel in the hub's graph",
        timeout_s="GRAPH_SYNC",
    )

    before = health(live)
    assert before["status"] == "ok" and before["inactivePeers"] == [] and before["stuckHtlcs"] == 0
    assert str(source.chan_id) in before["needingRebalance"]  # 4M of 5M local: above 1 - 0.25
    assert by_chan(before, source.chan_id)["needsRebalance"] == "inbound"
    target_before = hub.channel_with(c2).local_balance_sat

    # A client cannot rebalance a channel that is not its own, nor move more than fits.
    with pytest.raises(LSPAPIError) as exc:
        lsp.request("POST", "/api/channels/rebalance", json={"channelId": "nope", "amount": 1000})
    assert exc.value.status == 404
    with pytest.raises(LSPAPIError) as exc:
        lsp.request("POST", "/api/channels/rebalance", json={"channelId": ch["channelId"], "amount": 5_000_000})
    assert (exc.value.status, exc.value.field) == (422, "body.amount")

    res = lsp.request(
        "POST",
        "/api/channels/rebalance",
        json={"channelId": ch["channelId"], "amount": 200_000, "maxFee": 500, "sourceChanId": str(source.chan_id)},
    )
    assert res["status"] == "succeeded", res
    assert res["sourceChanId"] == str(source.chan_id) and res["targetChanId"] == str(target_id)
    assert 0 < res["fee"] <= 500
    hub.wait_no_pending_htlcs()
    assert hub.channel_with(c2).local_balance_sat == target_before + 200_000
    spent = source.local_balance_sat - hub.channel_with(c1).local_balance_sat
    assert spent - 200_000 - res["fee"] in (0, 1)  # the fee is whole sats; LND's is in msat
    self_pay = [p for p in hub.ln.list_payments() if p.payment_hash == res["paymentHash"]]
    assert len(self_pay) == 1
    bal = lsp.balance()
    assert bal["byKind"]["rebalance_fee"] == -res["fee"]

    # The same circle planned by the LSP's own router (strategy mcf): parts sent with SendToRouteV2
    # out through the source channel and back in through the client's channel.
    target_mid, source_mid = hub.channel_with(c2).local_balance_sat, hub.channel_with(c1).local_balance_sat
    res2 = lsp.request(
        "POST",
        "/api/channels/rebalance",
        json={"channelId": ch["channelId"], "amount": 150_000, "maxFee": 500, "strategy": "mcf"},
    )
    assert (res2["status"], res2["strategy"]) == ("succeeded", "mcf"), res2
    assert res2["sourceChanId"] == str(source.chan_id)  # the only other channel with the funds
    assert 0 < res2["fee"] <= 500
    hub.wait_no_pending_htlcs()
    assert hub.channel_with(c2).local_balance_sat == target_mid + 150_000
    assert source_mid - hub.channel_with(c1).local_balance_sat - 150_000 - res2["fee"] in (0, 1)
    assert lsp.balance()["byKind"]["rebalance_fee"] == -(res["fee"] + res2["fee"])
    # The router's circle is a self-payment LND recorded through SendToRouteV2.
    assert any(p.payment_hash == res2["paymentHash"] for p in hub.ln.list_payments())
    # Both rebalances are in the audit trail, which still verifies.
    audit = httpx.get(live.base_url + "/api/admin/audit", headers={"X-Admin-Key": ADMIN_KEY}, timeout=30).json()
    assert audit["intact"]
    assert [json.loads(e["after"])["strategy"] for e in audit["log"] if e["action"] == "channel.rebalance"] == [
        "mcf",
        "lnd",
    ]  # newest first

    after = health(live)
    assert by_chan(after, target_id)["localRatio"] > by_chan(before, target_id)["localRatio"]

    # A peer going away shows up as an inactive peer and a degraded status.
    c2.stop()
    down = wait_for(
        lambda: (h := health(live))["inactivePeers"] == [c2.pubkey] and h,
        what="the health view to report c2 inactive",
        timeout_s=60,
    )
    assert down["status"] == "degraded"
    # Health is the operator's view: a client's signature does not open it.
    r = httpx.get(live.base_url + "/api/channels/health", timeout=30)
    assert r.status_code == 401
    # Stopping c2 on purpose makes it log its own shutdown noise; anything else still fails the lab check.
    unexpected = [line for line in lab.new_error_lines() if not line.startswith("c2: ")]
    assert not unexpected, unexpected
    lab.mark_logs()
