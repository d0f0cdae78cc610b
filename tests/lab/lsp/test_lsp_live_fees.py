"""The dynamic fee policy on a live hub: drain a channel and its fee rises, refill it and it falls.

Expected rates come from the documented formula, computed here from LND's own balances, and the
rates in force are read from the hub's LND (its own channel policies in the graph), not from the
LSP's answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness.harness import LightningTestHarness
from harness.rpc.lightning import PolicyView
from harness.wait import wait_for
from tests.lab.lsp.conftest import ADMIN_KEY, LiveLsp  # type: ignore[import-not-found]

MIN_PPM, MAX_PPM, DISCOUNT, BASE = 10, 1_000, 200, 500
OPERATOR_PASSWORD = "fees-operator"


def expected(local: int, capacity: int) -> tuple[int, int]:
    drained = 1 - local / capacity
    return MIN_PPM + round((MAX_PPM - MIN_PPM) * drained), -round(DISCOUNT * drained)


def hub_policy(lab: LightningTestHarness, point: str) -> PolicyView:
    hub = lab.node("hub")
    edge = hub.ln.describe_graph(include_unannounced=True).edge(point)
    assert edge is not None
    policy = edge.policy_of(hub.pubkey)
    assert policy is not None
    return policy


def channel_to(lab: LightningTestHarness, peer: str) -> Any:
    [ch] = [c for c in lab.node("hub").list_channels() if c.remote_pubkey == lab.node(peer).pubkey]
    return ch


@pytest.mark.topology("star5")
def test_fees_follow_liquidity_within_bounds_and_every_change_is_audited(lsp_factory: Any) -> None:
    live: LiveLsp = lsp_factory(
        LSP_FEES_MIN_PPM=str(MIN_PPM), LSP_FEES_MAX_PPM=str(MAX_PPM), LSP_FEES_MAX_INBOUND_DISCOUNT_PPM=str(DISCOUNT),
        LSP_FEES_BASE_FEE_MSAT=str(BASE), LSP_FEES_MAX_STEP_PPM="2000", LSP_FEES_MIN_CHANGE_PPM="5",
        LSP_ADMIN_PASSWORD=OPERATOR_PASSWORD,
    )
    lab = live.lab
    admin = httpx.Client(base_url=live.base_url, headers={"X-Admin-Key": ADMIN_KEY}, timeout=60)

    def run(**body: Any) -> dict[str, Any]:
        r = admin.post("/api/admin/fees/run", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    ch = channel_to(lab, "c3")
    before = hub_policy(lab, ch.channel_point)
    assert before.fee_rate_ppm == 100  # the topology's policy
    # A dry run plans and changes nothing.
    planned = run(dryRun=True)
    assert planned["dryRun"] and planned["updated"] == 0
    mine = next(p for p in planned["channels"] if p["channelPoint"] == ch.channel_point)
    # The balance the run priced from is LND's (a commitment fee update may move it a little between
    # the two reads); the rates are the formula of that balance.
    assert abs(mine["local"] - ch.local_balance_sat) <= 5_000 and mine["capacity"] == ch.capacity_sat
    assert (mine["targetFeeRatePpm"], mine["targetInboundFeeRatePpm"]) == expected(mine["local"], mine["capacity"])
    assert hub_policy(lab, ch.channel_point) == before

    rates = []
    for step in ("full", "drained", "refilled"):
        if step == "drained":  # the hub pays most of its side of the channel to c3
            assert lab.node("hub").pay_invoice(lab.node("c3").add_invoice(3_500_000).payment_request).succeeded
        if step == "refilled":  # and c3 pays most of it back
            assert lab.node("c3").pay_invoice(lab.node("hub").add_invoice(3_000_000).payment_request).succeeded
        ch = channel_to(lab, "c3")
        done = run()
        assert done["updated"] >= 1
        priced = next(p for p in done["channels"] if p["channelPoint"] == ch.channel_point)
        assert abs(priced["local"] - ch.local_balance_sat) <= 5_000 and priced["outcome"] == "updated"
        want = expected(priced["local"], priced["capacity"])
        got = wait_for(
            lambda p=ch.channel_point, w=want: (v := hub_policy(lab, p)).fee_rate_ppm == w[0] and v,
            what=f"the hub's policy on its channel to c3 to be {want} ppm ({step})",
            timeout_s=30,
        )
        assert (got.fee_rate_ppm, got.inbound_fee_rate_ppm, got.base_fee_msat) == (*want, BASE)
        assert MIN_PPM <= got.fee_rate_ppm <= MAX_PPM and -DISCOUNT <= got.inbound_fee_rate_ppm <= 0
        rates.append(got.fee_rate_ppm)
    full, drained, refilled = rates
    assert full < refilled < drained  # dear when drained, cheaper again once refilled

    log = admin.get("/api/admin/audit", params={"limit": 1000}).json()
    updates = [e for e in log["log"] if e["action"] == "routing.fee_update" and ch.channel_point in e["target"]]
    assert len(updates) == 3 and log["intact"]
    admin.close()
    # The operator sees the rates in force on the dashboard's channels page.
    with httpx.Client(base_url=live.base_url, timeout=30) as web:
        assert web.post("/dashboard/login", data={"password": OPERATOR_PASSWORD}).status_code == 303
        page = web.get("/dashboard/channels").text
    assert "Fee ppm" in page and f'<td class="n">{refilled}</td>' in page
