"""The LSP against a live star5 hub: channels, invoices, events, idempotent payments, metrics."""

from __future__ import annotations

import pytest
from websockets.sync.client import connect

from harness.lsp_process import metric
from harness.wait import wait_for
from lsp.client import LSPAPIError
from tests.lab.lsp.conftest import LiveLsp, reconcile_now, ws_events  # type: ignore[import-not-found]


def _metric(text: str, name: str, **labels: str) -> float:
    return metric(text, name, **labels) or 0.0


@pytest.mark.topology("star5")
def test_channel_open_invoice_paid_event_and_ledger(live_lsp: LiveLsp) -> None:
    lab, lsp = live_lsp.lab, live_lsp.client
    c3 = lab.node("c3")

    # A channel to the client's node, through the API: pending, then open once mined.
    ch = lsp.open_channel(c3.pubkey, 1_000_000, host=c3.p2p_address)
    assert ch["status"] == "pending" and ch["fundingTxid"]
    assert lsp.balance()["balance"] == -ch["openingFee"]  # the opening fee is owed
    lab.chain.wait_for_tx(ch["fundingTxid"])
    lab.mine(6)
    opened = wait_for(
        lambda: (got := lsp.get_channel(ch["channelId"]))["status"] == "open" and got,
        what="the API to report the channel open",
        timeout_s="CHANNEL_OPEN",
    )
    assert opened["chanId"] is not None
    assert any(c.channel_point == opened["channelPoint"] for c in lab.node("hub").list_channels())

    with connect(live_lsp.ws_url(), open_timeout=20) as ws:
        assert ws_events(ws, lambda m: m["type"] == "hello")["data"]["clientId"] == live_lsp.creds.client_id
        # An invoice on the LSP's node, credited to this client; paid from another node.
        inv = lsp.create_invoice(25_000, "live coffee")
        res = lab.node("c1").pay_invoice(inv["paymentRequest"], fee_limit_sat=1000)
        assert res.succeeded
        event = ws_events(ws, lambda m: m["type"] == "payment_received")
    assert event["data"]["paymentHash"] == inv["paymentHash"]
    assert event["data"]["amount"] == 25_000
    assert lsp.get_invoice(inv["invoiceId"])["status"] == "settled"
    bal = lsp.balance()
    assert bal["balance"] == 25_000 - ch["openingFee"]
    assert bal["byKind"]["invoice_settled"] == 25_000


@pytest.mark.topology("star5")
def test_idempotent_payment_pays_once_and_metrics_move(live_lsp: LiveLsp) -> None:
    lab, lsp = live_lsp.lab, live_lsp.client
    live_lsp.fund_client(100_000)
    before = lsp.balance()["balance"]
    metrics_before = lsp.http.get("/metrics").text

    target = lab.node("c2").add_invoice(10_000, memo="idempotent")
    first = lsp.send_payment(target.payment_request, max_fee_sat=100, idempotency_key="order-42")
    second = lsp.send_payment(target.payment_request, max_fee_sat=100, idempotency_key="order-42")
    assert first["status"] == "succeeded"
    assert second["paymentId"] == first["paymentId"] and second["status"] == "succeeded"
    # The same invoice under a new key is refused, not paid again.
    with pytest.raises(LSPAPIError) as exc:
        lsp.send_payment(target.payment_request, max_fee_sat=100, idempotency_key="order-43")
    assert exc.value.status == 409

    hub_payments = [p for p in lab.node("hub").ln.list_payments() if p.payment_hash == first["paymentHash"]]
    assert len(hub_payments) == 1
    assert lab.node("c2").ln.lookup_invoice(first["paymentHash"]).amt_paid_sat == 10_000
    after = lsp.balance()
    assert after["balance"] == before - 10_000 - first["fee"]
    assert lsp.get_payment(first["paymentHash"])["status"] == "succeeded"

    metrics = lsp.http.get("/metrics").text
    assert _metric(metrics, "lsp_payments_total", status="succeeded") == 1 + _metric(
        metrics_before, "lsp_payments_total", status="succeeded"
    )
    assert _metric(metrics, "lsp_payment_seconds_count", status="succeeded") >= 1
    assert _metric(metrics, "lsp_payment_success_ratio") == 1.0
    report = reconcile_now(live_lsp)
    assert report["ok"] and report["checked"]["payments"] == 1, report["differences"]
