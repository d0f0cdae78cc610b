"""HMAC request signing: good requests pass; each kind of bad one is refused with 401 and its reason."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from lncore import stubs
from lncore.lnd.types import PaymentOutcome
from lsp.app import create_app
from lsp.client import LSPAPIError, LSPClient
from lsp.db.base import session_scope
from lsp.security import signing
from lsp.services import ledger
from tests.unit.lsp.conftest import Creds

pytestmark = pytest.mark.unit


def signed(creds: Creds, method: str, path: str, body: bytes = b"", **override: str) -> dict[str, str]:
    headers = signing.signed_headers(creds.api_key, creds.api_secret, method, path, body)
    headers.update({k.replace("_", "-"): v for k, v in override.items()})
    return headers


def error_of(resp) -> dict:
    return resp.json()["error"]


def test_signed_request_is_accepted(lsp: LSPClient, creds: Creds) -> None:
    me = lsp.me()
    assert me["clientId"] == creds.client_id
    assert "apiSecret" not in me  # the secret is shown once, at onboarding only


def test_signature_covers_query_and_body(api: TestClient, creds: Creds) -> None:
    body = json.dumps({"name": "x"}).encode()
    # Signed for one query string, sent with another: refused.
    headers = signed(creds, "GET", "/api/enterprise/me?a=1")
    resp = api.get("/api/enterprise/me?a=2", headers=headers)
    assert resp.status_code == 401 and error_of(resp)["code"] == "invalid_signature"
    # Signed with the right query: accepted.
    assert api.get("/api/enterprise/me?a=1", headers=signed(creds, "GET", "/api/enterprise/me?a=1")).status_code == 200
    # Body tampered after signing: refused.
    headers = signed(creds, "POST", "/api/enterprise/webhook", body)
    resp = api.post("/api/enterprise/webhook", content=body + b" ", headers=headers)
    assert resp.status_code == 401 and error_of(resp)["code"] == "invalid_signature"


def test_wrong_secret_is_401_invalid_signature(api: TestClient, creds: Creds) -> None:
    bad = LSPClient("http://testserver", creds.api_key, "not-the-secret", http=api)
    with pytest.raises(LSPAPIError) as exc:
        bad.me()
    assert (exc.value.status, exc.value.code, exc.value.field) == (401, "invalid_signature", "X-Signature")


def test_unknown_key_is_401(api: TestClient, creds: Creds) -> None:
    with pytest.raises(LSPAPIError) as exc:
        LSPClient("http://testserver", "lsp_nobody", creds.api_secret, http=api).me()
    assert (exc.value.status, exc.value.code) == (401, "unknown_api_key")


@pytest.mark.parametrize("skew_ms", [-301_000, 301_000])
def test_timestamp_more_than_5_minutes_off_is_401(api: TestClient, creds: Creds, skew_ms: int) -> None:
    ts = signing.now_ms() + skew_ms
    nonce = signing.new_nonce()
    headers = {
        "X-API-Key": creds.api_key,
        "X-Timestamp": str(ts),
        "X-Nonce": nonce,
        "X-Signature": signing.sign(creds.api_secret, ts, nonce, "GET", "/api/enterprise/me", b""),
    }
    resp = api.get("/api/enterprise/me", headers=headers)
    assert resp.status_code == 401
    assert error_of(resp)["code"] == "stale_timestamp"
    assert "limit 300 s" in error_of(resp)["message"]


def test_timestamp_within_window_is_accepted(api: TestClient, creds: Creds) -> None:
    ts = signing.now_ms() - 240_000
    nonce = signing.new_nonce()
    headers = {
        "X-API-Key": creds.api_key,
        "X-Timestamp": str(ts),
        "X-Nonce": nonce,
        "X-Signature": signing.sign(creds.api_secret, ts, nonce, "GET", "/api/enterprise/me", b""),
    }
    assert api.get("/api/enterprise/me", headers=headers).status_code == 200


def test_replayed_request_is_401_even_after_a_restart(api: TestClient, creds: Creds, settings) -> None:
    headers = signed(creds, "GET", "/api/enterprise/me")
    assert api.get("/api/enterprise/me", headers=headers).status_code == 200
    resp = api.get("/api/enterprise/me", headers=headers)
    assert resp.status_code == 401 and error_of(resp)["code"] == "nonce_reused"
    # A new process (same database) still remembers the nonce.
    with TestClient(create_app(settings)) as restarted:
        resp = restarted.get("/api/enterprise/me", headers=headers)
    assert resp.status_code == 401 and error_of(resp)["code"] == "nonce_reused"


def test_missing_headers_are_401_naming_the_header(api: TestClient) -> None:
    resp = api.get("/api/enterprise/me")
    assert resp.status_code == 401
    assert error_of(resp) == {
        "code": "missing_auth_header",
        "message": "missing X-API-Key header",
        "field": "X-API-Key",
    }
    assert resp.headers["WWW-Authenticate"] == "LSP-HMAC-SHA256"


def test_non_numeric_timestamp_is_401(api: TestClient, creds: Creds) -> None:
    resp = api.get("/api/enterprise/me", headers=signed(creds, "GET", "/api/enterprise/me", X_Timestamp="yesterday"))
    assert resp.status_code == 401 and error_of(resp)["code"] == "invalid_timestamp"


def test_failed_signature_does_not_burn_the_nonce(api: TestClient, creds: Creds) -> None:
    good = signed(creds, "GET", "/api/enterprise/me")
    forged = {**good, "X-Signature": "0" * 64}
    assert api.get("/api/enterprise/me", headers=forged).status_code == 401
    assert api.get("/api/enterprise/me", headers=good).status_code == 200


class FakePayingLnd:
    """A fake of the two calls an API payment makes of LND (DecodePayReq, SendPaymentV2), always
    succeeding: what is under test is the route's authentication, not LND."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def decode_pay_req(self, payment_request: str) -> object:
        return stubs.load().ln.PayReq(destination="02" + "11" * 32, payment_hash="ab" * 32, num_satoshis=1_000)

    async def send_payment_v2(self, payment_request: str, **_options: object) -> PaymentOutcome:
        self.sent.append(payment_request)
        return PaymentOutcome("ab" * 32, "SUCCEEDED", 1, 1_000, 1_000, "cd" * 32, None)


def signed_payment(creds: Creds, invoice: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"invoice": invoice, "maxFee": 10}).encode()
    headers = signed(creds, "POST", "/api/payments/send", body)
    return body, {**headers, "Content-Type": "application/json", "Idempotency-Key": "once"}


def test_a_replayed_payment_is_refused_and_pays_once(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    """The payment route spends its nonce in the payment's own transaction: a replay of a request
    that paid is still a 401, and LND is asked to pay once."""
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    with session_scope(ctx.sessions) as s:
        ledger.record(s, creds.client_id, 5_000, "adjustment", "test deposit")
    ctx.lnd = fake = FakePayingLnd()
    body, headers = signed_payment(creds, "lnbcrt10u1replayme")
    first = api.post("/api/payments/send", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["status"] == "succeeded", first.text
    again = api.post("/api/payments/send", content=body, headers=headers)
    assert again.status_code == 401 and error_of(again)["code"] == "nonce_reused"
    assert fake.sent == ["lnbcrt10u1replayme"]
    assert lsp.balance()["balance"] == 5_000 - 1_000 - 1


def test_a_payment_request_that_fails_still_spends_its_nonce(api: TestClient, creds: Creds) -> None:
    body, headers = signed_payment(creds, "lnbcrt10u1nolnd")
    failed = api.post("/api/payments/send", content=body, headers=headers)  # no LND configured: 503
    assert failed.status_code == 503, failed.text
    again = api.post("/api/payments/send", content=body, headers=headers)
    assert again.status_code == 401 and error_of(again)["code"] == "nonce_reused"
