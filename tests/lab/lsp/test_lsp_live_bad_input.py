"""Bad input everywhere, against the live LSP on a live hub: always the documented 4xx, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

from lsp.security import signing
from tests.lab.lsp.conftest import Credentials, LiveLsp  # type: ignore[import-not-found]

NOBODY = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"  # valid point (G); no lab node


def signed(
    base_url: str,
    creds: Credentials,
    method: str,
    path: str,
    body: Any = None,
    *,
    ts: int | None = None,
    nonce: str | None = None,
    secret: str | None = None,
    raw: bytes | None = None,
    extra: dict[str, str] | None = None,
) -> httpx.Response:
    content = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    ts = signing.now_ms() if ts is None else ts
    nonce = nonce or signing.new_nonce()
    headers = {
        "Content-Type": "application/json",
        "X-API-Key": creds.api_key,
        "X-Timestamp": str(ts),
        "X-Nonce": nonce,
        "X-Signature": signing.sign(secret or creds.api_secret, ts, nonce, method, path, content),
        **(extra or {}),
    }
    return httpx.request(method, base_url + path, content=content, headers=headers, timeout=60)


def expect(resp: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert resp.status_code == status, f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text}"
    err = resp.json()["error"]
    assert err["code"] == code, err
    if field is not None:
        assert err.get("field") == field, err


@pytest.mark.topology("star5")
def test_bad_input_gets_documented_4xx(live_lsp: LiveLsp) -> None:
    lab, base, me = live_lsp.lab, live_lsp.base_url, live_lsp.creds
    c4 = lab.node("c4")

    def post(path: str, body: Any, **kw: Any) -> httpx.Response:
        return signed(base, me, "POST", path, body, **kw)

    def get(path: str) -> httpx.Response:
        return signed(base, me, "GET", path)

    # --- channels: pubkey, size, push, host
    good = {"clientPubkey": c4.pubkey, "channelSize": 1_000_000}
    expect(post("/api/channels/open", {**good, "clientPubkey": "zz"}), 422, "validation_error", "body.clientPubkey")
    expect(
        post("/api/channels/open", {**good, "clientPubkey": "04" + "ab" * 32}),
        422,
        "validation_error",
        "body.clientPubkey",
    )
    off_curve = "02" + "11" * 32  # right shape, not a point: LND used to answer 502
    expect(
        post("/api/channels/open", {**good, "clientPubkey": off_curve}), 422, "validation_error", "body.clientPubkey"
    )
    expect(post("/api/channels/open", {**good, "channelSize": 1000}), 422, "validation_error", "body.channelSize")
    expect(post("/api/channels/open", {**good, "channelSize": 10**12}), 422, "validation_error", "body.channelSize")
    # Within the LSP's own limit (1 BTC) but above what its LND opens without wumbo channels:
    # refused before any fee is taken, naming the reason.
    r = post("/api/channels/open", {**good, "channelSize": 20_000_000})
    expect(r, 422, "validation_error", "body.channelSize")
    assert "wumbo" in r.json()["error"]["message"]
    expect(post("/api/channels/open", {**good, "channelSize": -5}), 422, "validation_error", "body.channelSize")
    expect(post("/api/channels/open", {**good, "channelSize": "lots"}), 422, "validation_error", "body.channelSize")
    expect(post("/api/channels/open", {**good, "pushAmount": 1_000_000}), 422, "validation_error", "body.pushAmount")
    expect(
        post("/api/channels/open", {"clientPubkey": NOBODY, "channelSize": 1_000_000}),
        422,
        "validation_error",
        "body.host",
    )
    # A host where no such node listens: the LSP cannot connect -- the client's input is wrong.
    r = post("/api/channels/open", {"clientPubkey": NOBODY, "channelSize": 1_000_000, "host": "127.0.0.1:1"})
    expect(r, 422, "validation_error", "body.host")
    r = post("/api/channels/open", {"clientPubkey": NOBODY, "channelSize": 1_000_000, "host": "not a host"})
    expect(r, 422, "validation_error", "body.host")
    expect(post("/api/channels/open", None, raw=b"{not json"), 422, "invalid_json")
    assert lab.node("hub").ln.pending_channels() is not None  # the node is fine
    assert not [c for c in lab.node("hub").list_channels() if c.remote_pubkey == NOBODY]

    # --- invoices
    expect(post("/api/invoices/create", {"amount": 0}), 422, "validation_error", "body.amount")
    expect(post("/api/invoices/create", {"amount": 5_000_000}), 422, "validation_error", "body.amount")
    expect(post("/api/invoices/create", {"amount": 10, "expiry": 1}), 422, "validation_error", "body.expiry")

    # --- payments: malformed, amountless, wrong network, over balance, bad fee
    expect(post("/api/payments/send", {"invoice": "lnbcrt1notaninvoiceatall"}), 422, "validation_error", "body.invoice")
    expect(post("/api/payments/send", {"invoice": "short"}), 422, "validation_error", "body.invoice")
    amountless = lab.node("c2").add_invoice(0, memo="any amount").payment_request
    expect(post("/api/payments/send", {"invoice": amountless}), 422, "validation_error", "body.invoice")
    payable = lab.node("c2").add_invoice(5_000, memo="too much").payment_request
    expect(post("/api/payments/send", {"invoice": payable}), 402, "insufficient_funds")
    expect(post("/api/payments/send", {"invoice": payable, "maxFee": -1}), 422, "validation_error", "body.maxFee")
    expect(
        post("/api/payments/send", {"invoice": payable, "timeoutSeconds": 0}),
        422,
        "validation_error",
        "body.timeoutSeconds",
    )

    # --- liquidity
    expect(
        post("/api/liquidity/request", {"amount": 0, "duration": 1000, "maxFeeRate": 5000}),
        422,
        "validation_error",
        "body.amount",
    )
    r = post("/api/liquidity/request", {"amount": 100_000, "duration": 10**12, "maxFeeRate": 5000})
    expect(r, 422, "validation_error", "body.duration")

    # --- unknown ids (and another client's ids) are 404
    for path in (
        "/api/channels/nope",
        "/api/invoices/nope",
        "/api/payments/" + "00" * 32,
        "/api/liquidity/reservations/nope",
        "/api/enterprise/webhooks/nope",
    ):
        expect(get(path), 404, "not_found")
    expect(post("/api/channels/nope/close", {"force": False}), 404, "not_found")
    _other_creds, other = live_lsp.onboard("other")
    theirs = other.create_invoice(1000, "theirs")
    expect(get(f"/api/invoices/{theirs['invoiceId']}"), 404, "not_found")
    expect(get(f"/api/invoices/{theirs['paymentHash']}"), 404, "not_found")

    # --- authentication
    expect(signed(base, me, "GET", "/api/balance", secret="wrong-secret"), 401, "invalid_signature")
    expect(signed(base, Credentials("x", "no-such-key", "s"), "GET", "/api/balance"), 401, "unknown_api_key")
    stale = signing.now_ms() - 6 * 60 * 1000
    expect(signed(base, me, "GET", "/api/balance", ts=stale), 401, "stale_timestamp")
    future = signing.now_ms() + 6 * 60 * 1000
    expect(signed(base, me, "GET", "/api/balance", ts=future), 401, "stale_timestamp")
    expect(signed(base, me, "GET", "/api/balance", nonce="x" * 200), 401, "invalid_nonce")
    first = signed(base, me, "GET", "/api/balance", nonce="once-only")
    assert first.status_code == 200
    expect(signed(base, me, "GET", "/api/balance", nonce="once-only"), 401, "nonce_reused")
    # A signature over another body does not authenticate this one.
    ts, nonce = signing.now_ms(), signing.new_nonce()
    sig = signing.sign(me.api_secret, ts, nonce, "POST", "/api/invoices/create", b'{"amount": 1}')
    r = httpx.post(
        base + "/api/invoices/create",
        content=b'{"amount": 1000000}',
        headers={"X-API-Key": me.api_key, "X-Timestamp": str(ts), "X-Nonce": nonce, "X-Signature": sig},
    )
    expect(r, 401, "invalid_signature")
    expect(httpx.get(base + "/api/balance"), 401, "missing_auth_header")
    r = httpx.post(base + "/api/enterprise/onboard", json={"name": "x"}, headers={"X-Admin-Key": "guess"})
    expect(r, 401, "invalid_admin_key", "X-Admin-Key")
    with (
        pytest.raises((InvalidStatus, WebSocketException)),
        connect(
            f"ws://127.0.0.1:{live_lsp.server.port}/ws/lightning?apiKey={me.api_key}&timestamp=1&nonce=n&signature=00"
        ) as ws,
    ):
        ws.recv(timeout=10)

    # --- rate limit: the documented 429 with Retry-After
    slow_creds, _slow = live_lsp.onboard("slow", requests_per_minute=3)
    statuses = [signed(base, slow_creds, "GET", "/api/balance") for _ in range(4)]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
    expect(statuses[3], 429, "rate_limited")
    assert int(statuses[3].headers["Retry-After"]) >= 1

    # Nothing above was a 500: the service is still up and honest.
    assert httpx.get(base + "/health").json()["status"] == "ok"
    assert live_lsp.client.balance()["balance"] == 0
    assert "internal_error" not in live_lsp.server.log_text()

    # LND logs our deliberate bad inputs (refused connects, undecodable invoices) as [ERR];
    # accept exactly those, so any other error still fails the lab's invariant check.
    deliberate = ("ConnectPeer", "connectpeer", "Unable to connect to " + NOBODY, "DecodePayReq", "decodepayreq")
    unexpected = [line for line in lab.new_error_lines() if not any(d in line for d in deliberate)]
    assert not unexpected, unexpected
    lab.mark_logs()
