"""Endpoints that need LND answer 503 when it is absent -- after validating what they can --
and the rate card, liquidity checks, metrics, WebSocket and webhooks work without it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lsp.client import LSPAPIError, LSPClient
from lsp.db.base import session_scope
from lsp.db.models import Channel
from lsp.security import signing
from lsp.services.events import Event
from lsp.services.webhooks import WebhookDispatcher
from tests.unit.lsp.conftest import Creds

pytestmark = pytest.mark.unit

PUBKEY = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"  # the generator: on the curve


def err(exc: pytest.ExceptionInfo[LSPAPIError]) -> tuple[int, str, str | None]:
    return exc.value.status, exc.value.code, exc.value.field


def test_lnd_backed_endpoints_are_503_without_lnd(lsp: LSPClient) -> None:
    with pytest.raises(LSPAPIError) as exc:
        lsp.create_invoice(1000, "x")
    assert err(exc)[:2] == (503, "lnd_unavailable")
    assert "LSP_LND_TLS_CERT_PATH" in exc.value.message
    with pytest.raises(LSPAPIError) as exc:
        lsp.send_payment("lnbcrt10u1p" + "q" * 40)
    assert err(exc)[:2] == (503, "lnd_unavailable")


@pytest.mark.parametrize(
    ("size", "push", "pubkey", "field", "text"),
    [
        (999_999, 0, PUBKEY, "body.channelSize", "below the minimum 1000000"),
        (100_000_001, 0, PUBKEY, "body.channelSize", "above the maximum 100000000"),
        (1_000_000, 1_000_000, PUBKEY, "body.pushAmount", "smaller than channelSize"),
        (1_000_000, 0, "zz", "body.clientPubkey", "compressed secp256k1 public key"),
        (1_000_000, 0, "02" + "11" * 32, "body.clientPubkey", "compressed secp256k1 public key"),  # off the curve
    ],
)
def test_channel_open_is_validated_before_lnd(lsp: LSPClient, size, push, pubkey, field, text) -> None:
    with pytest.raises(LSPAPIError) as exc:
        lsp.open_channel(pubkey, size, push_amount=push)
    assert err(exc) == (422, "validation_error", field)
    assert text in exc.value.message


def test_rates_publish_the_seed_fee_schedule(lsp: LSPClient) -> None:
    rates = lsp.liquidity_rates()
    assert rates["channelOpening"] == {
        "baseFee": 1000,
        "capacityFee": 0.001,
        "minChannelSize": 1_000_000,
        "maxChannelSize": 100_000_000,
    }
    assert rates["liquidity"]["reservationFee"] == 100 and rates["liquidity"]["utilizationFee"] == 2000
    assert rates["routing"] == {"baseFee": 1000, "feeRate": 100}


def test_liquidity_request_above_max_fee_rate_is_422(lsp: LSPClient) -> None:
    with pytest.raises(LSPAPIError) as exc:
        lsp.request_liquidity(1_000_000, 3_600_000, max_fee_rate_ppm=1000)
    assert err(exc) == (422, "validation_error", "body.maxFeeRate")
    assert "2000 ppm" in exc.value.message


def test_rebalance_validates_and_needs_lnd(lsp: LSPClient, api: TestClient) -> None:
    # The circle itself is proven live (tests/lab/lsp/test_lsp_live_rebalance.py); here: the edges.
    with pytest.raises(LSPAPIError) as exc:
        lsp.request("POST", "/api/channels/rebalance", json={"channelId": "x", "amount": 0})
    assert err(exc) == (422, "validation_error", "body.amount")
    with pytest.raises(LSPAPIError) as exc:
        lsp.request("POST", "/api/channels/rebalance", json={"channelId": "x", "amount": 1000})
    assert err(exc)[:2] == (503, "lnd_unavailable")
    # The health view shows every client's channels: operator only.
    assert api.get("/api/channels/health").json()["error"]["code"] == "invalid_admin_key"


def test_channel_view_and_metrics(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    with session_scope(ctx.sessions) as s:
        ch = Channel(
            client_id=creds.client_id,
            remote_pubkey=PUBKEY,
            capacity_sat=2_000_000,
            opening_fee_sat=3000,
            status="open",
            funding_txid="ab" * 32,
            output_index=1,
        )
        s.add(ch)
    view = lsp.get_channel(ch.id)
    assert (view["status"], view["channelPoint"], view["openingFee"]) == ("open", f"{'ab' * 32}:1", 3000)
    assert lsp.channel_balance()["openCapacity"] == 2_000_000
    text = api.get("/metrics").text
    assert 'lsp_channels{status="open"} 1.0' in text
    assert 'lsp_channel_capacity_sat{status="open"} 2e+06' in text
    # API latency is labelled by route template, not by the raw path.
    assert 'route="/api/channels/{channel_id}"' in text and ch.id not in text


def ws_url(creds: Creds, *, secret: str | None = None) -> str:
    ts, nonce = signing.now_ms(), signing.new_nonce()
    sig = signing.sign(secret or creds.api_secret, ts, nonce, "GET", "/ws/lightning", b"")
    return f"/ws/lightning?apiKey={creds.api_key}&timestamp={ts}&nonce={nonce}&signature={sig}"


def test_websocket_streams_the_clients_events_only(api: TestClient, creds: Creds) -> None:
    bus = api.app.state.ctx.bus  # type: ignore[attr-defined]
    with api.websocket_connect(ws_url(creds)) as ws:
        assert ws.receive_json() == {"type": "hello", "data": {"clientId": creds.client_id}}
        api.portal.call(lambda: bus.publish(Event("payment_received", "someone-else", {"amount": 1})))  # type: ignore[attr-defined]
        api.portal.call(lambda: bus.publish(Event("payment_received", creds.client_id, {"amount": 42})))  # type: ignore[attr-defined]
        msg = ws.receive_json()
    assert (msg["type"], msg["data"]) == ("payment_received", {"amount": 42})


def test_websocket_with_a_bad_signature_is_closed_4401(api: TestClient, creds: Creds) -> None:
    with pytest.raises(WebSocketDisconnect) as exc, api.websocket_connect(ws_url(creds, secret="wrong")) as ws:
        ws.receive_json()
    assert exc.value.code == 4401
    assert "invalid_signature" in exc.value.reason


class _Receiver(BaseHTTPRequestHandler):
    """A real HTTP webhook receiver: fails the first delivery, accepts the next."""

    seen: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((dict(self.headers), body))
        self.send_response(500 if len(type(self).seen) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_webhook_registered_after_events_still_gets_the_next_ones(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    """The bus caches each client's webhooks; registering one must take effect at once."""
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    api.portal.call(lambda: ctx.bus.publish(Event("payment_received", creds.client_id, {"amount": 1})))  # type: ignore[attr-defined]
    hook = lsp.set_webhook("http://127.0.0.1:9/hook", ["payment_received"])
    api.portal.call(lambda: ctx.bus.publish(Event("payment_received", creds.client_id, {"amount": 2})))  # type: ignore[attr-defined]
    detail = lsp.request("GET", f"/api/enterprise/webhooks/{hook['id']}")
    assert [d["eventType"] for d in detail["deliveries"]] == ["payment_received"]


def test_webhook_is_signed_retried_and_logged(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = lsp.set_webhook(f"http://127.0.0.1:{server.server_port}/hook", ["payment_received"])
        ctx = api.app.state.ctx  # type: ignore[attr-defined]
        api.portal.call(lambda: ctx.bus.publish(Event("channel_opened", creds.client_id, {})))  # type: ignore[attr-defined]
        api.portal.call(lambda: ctx.bus.publish(Event("payment_received", creds.client_id, {"amount": 7})))  # type: ignore[attr-defined]
        dispatcher = WebhookDispatcher(ctx.sessions, ctx.box, max_attempts=3, backoff_base_s=0.0)
        assert asyncio.run(dispatcher.deliver_due()) == 1  # only the subscribed event type; first try gets 500
        assert asyncio.run(dispatcher.deliver_due()) == 1  # retried after the (zero) backoff
        assert asyncio.run(dispatcher.deliver_due()) == 0
    finally:
        server.shutdown()
    detail = lsp.request("GET", f"/api/enterprise/webhooks/{hook['id']}")
    [delivery] = detail["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["lastStatusCode"]) == ("delivered", 2, 204)
    headers, body = _Receiver.seen[-1]
    expected = hmac.new(hook["secret"].encode(), f"{headers['X-LSP-Timestamp']}.".encode() + body, hashlib.sha256)
    assert headers["X-LSP-Signature"] == expected.hexdigest()
    assert json.loads(body)["data"] == {"amount": 7}


def _channel(ctx, client_id: str, *, status: str = "open", chan_id: int | None = None) -> Channel:
    with session_scope(ctx.sessions) as s:
        ch = Channel(
            client_id=client_id,
            remote_pubkey=PUBKEY,
            capacity_sat=1_000_000,
            opening_fee_sat=2000,
            status=status,
            chan_id=chan_id,
        )
        s.add(ch)
    return ch


def test_channel_list_is_the_clients_own_newest_first(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    from tests.unit.lsp.conftest import onboard

    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    other = onboard(api, "other")
    first = _channel(ctx, creds.client_id, status="closed")
    second = _channel(ctx, creds.client_id, status="open")
    _channel(ctx, other.client_id)
    assert [c["channelId"] for c in lsp.list_channels()] == [second.id, first.id]
    assert [c["channelId"] for c in lsp.list_channels(status="closed")] == [first.id]
    with pytest.raises(LSPAPIError) as exc:
        lsp.list_channels(status="bogus")
    assert err(exc) == (422, "validation_error", "query.status")


def test_routing_fee_event_reaches_only_the_clients_whose_channels_carried_it(
    api: TestClient, creds: Creds
) -> None:
    from lsp.db.models import ForwardingEvent
    from lsp.services import notify
    from tests.unit.lsp.conftest import onboard

    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    bystander = onboard(api, "bystander")
    _channel(ctx, creds.client_id, chan_id=111)
    _channel(ctx, bystander.client_id, chan_id=333)
    seen: list[Event] = []
    ctx.bus.add_listener(seen.append)
    fwd = ForwardingEvent(timestamp_ns=1, chan_id_in=111, chan_id_out=222, amt_in_msat=10_000, amt_out_msat=9_000, fee_msat=1_000)
    with api.websocket_connect(ws_url(creds)) as mine, api.websocket_connect(ws_url(bystander)) as theirs:
        mine.receive_json(), theirs.receive_json()  # hello
        api.portal.call(lambda: notify.routing_fee(ctx, fwd))  # type: ignore[attr-defined]
        api.portal.call(lambda: ctx.bus.publish(Event("payment_received", bystander.client_id, {"amount": 1})))  # type: ignore[attr-defined]
        got = mine.receive_json()
        # The bystander's next message is its own event: the forward never reached it.
        assert theirs.receive_json()["type"] == "payment_received"
    assert got["type"] == "routing_fee_earned"
    assert got["data"] == {"feeMsat": 1000, "amountInMsat": 10_000, "chanIdIn": "111"}  # not the other side's id
    # A forward through no client's channel is for the operator's listeners only.
    api.portal.call(lambda: notify.routing_fee(ctx, ForwardingEvent(  # type: ignore[attr-defined]
        timestamp_ns=2, chan_id_in=7, chan_id_out=8, amt_in_msat=5, amt_out_msat=4, fee_msat=1)))
    assert [(e.client_id, e.data.get("chanIdOut")) for e in seen if e.type == "routing_fee_earned"] == [
        (creds.client_id, None), (None, "8")]


def test_forwards_over_jit_alias_scids_are_stored_and_attributed(api: TestClient, creds: Creds) -> None:
    """Alias/JIT SCIDs (block height 16,000,000+) are >= 2^63: they overflowed the BIGINT columns,
    which crashed the forwarding-history loop (seen in CI on the jit lab)."""
    from lsp.db.models import ForwardingEvent
    from lsp.services import notify

    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    alias = (16_000_123 << 40) | (1 << 16) | 0  # 16000123x1x0
    assert alias >= 2**63
    _channel(ctx, creds.client_id, chan_id=alias)
    fwd = ForwardingEvent(
        timestamp_ns=7, chan_id_in=123, chan_id_out=alias, amt_in_msat=5_000, amt_out_msat=4_000, fee_msat=1_000
    )
    with session_scope(ctx.sessions) as s:
        s.add(fwd)
    with session_scope(ctx.sessions) as s:
        stored = s.query(ForwardingEvent).one()
        assert (stored.chan_id_in, stored.chan_id_out) == (123, alias)
        assert s.query(Channel).filter(Channel.chan_id == alias).one().client_id == creds.client_id
    seen: list[Event] = []
    ctx.bus.add_listener(seen.append)
    api.portal.call(lambda: notify.routing_fee(ctx, fwd))  # type: ignore[attr-defined]
    assert [(e.client_id, e.data.get("chanIdOut")) for e in seen] == [(creds.client_id, str(alias))]


def test_a_closed_websocket_ends_its_subscription_without_waiting_for_an_event(api: TestClient, creds: Creds) -> None:
    """The server notices the client going away (it used to wait for the client's next event, which
    also held `lsp serve` up for 20 s at shutdown while any WebSocket was open)."""
    from harness.wait import wait_for

    bus = api.app.state.ctx.bus  # type: ignore[attr-defined]
    with api.websocket_connect(ws_url(creds)) as ws:
        ws.receive_json()
        assert len(bus._subs[creds.client_id]) == 1
        ws.close()
        wait_for(lambda: not bus._subs[creds.client_id], what="the subscription to end", timeout_s=5)
