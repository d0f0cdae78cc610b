"""Bad input found by fuzzing the OpenAPI spec (and by reading the code): each is a 4xx naming the
field, on SQLite and PostgreSQL alike -- never a 500, never a traceback."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from lsp.client import LSPAPIError, LSPClient
from lsp.security import signing
from tests.unit.lsp.conftest import ADMIN_KEY, Creds

pytestmark = pytest.mark.unit

ADMIN = {"X-Admin-Key": ADMIN_KEY}
PUBKEY = "02" + "11" * 32


def _error(exc: pytest.ExceptionInfo[LSPAPIError]) -> tuple[int, str | None, str]:
    return exc.value.status, exc.value.field, exc.value.message


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        # Past 2^63 these overflowed a BIGINT column or a protobuf uint64 (500 before).
        ("/api/channels/open", {"clientPubkey": PUBKEY, "channelSize": 1_000_000, "feeRate": 2**64}, "body.feeRate"),
        ("/api/channels/open", {"clientPubkey": PUBKEY, "channelSize": 2**70}, "body.channelSize"),
        ("/api/payments/send", {"invoice": "lnbcrt1x" * 3, "maxFee": 2**63}, "body.maxFee"),
        ("/api/liquidity/request", {"amount": 10_000, "duration": 2**62, "maxFeeRate": 100}, "body.duration"),
        ("/api/channels/rebalance", {"channelId": "x", "amount": 1000, "sourceChanId": 2**64}, "body.sourceChanId"),
        # PostgreSQL text cannot hold NUL: refused before any side effect.
        ("/api/invoices/create", {"amount": 1000, "description": "a\x00b"}, "body.description"),
        # BOLT 11 counts bytes: 320 two-byte characters are 640 bytes.
        ("/api/invoices/create", {"amount": 1000, "description": "é" * 320}, "body.description"),
    ],
)
def test_out_of_range_values_are_422_naming_the_field(lsp: LSPClient, path: str, body: dict, field: str) -> None:
    with pytest.raises(LSPAPIError) as exc:
        lsp.request("POST", path, json=body)
    status, got_field, _ = _error(exc)
    assert (status, got_field) == (422, field)


def test_onboarding_volume_beyond_all_bitcoin_is_422(api: TestClient) -> None:
    resp = api.post(
        "/api/enterprise/onboard", json={"name": "x", "apiLimits": {"monthlyVolume": 2**63}}, headers=ADMIN
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "body.apiLimits.monthlyVolume"


def test_onboarding_the_same_client_id_twice_is_409(api: TestClient) -> None:
    first = api.post("/api/enterprise/onboard", json={"name": "x", "clientId": "dup"}, headers=ADMIN)
    again = api.post("/api/enterprise/onboard", json={"name": "y", "clientId": "dup"}, headers=ADMIN)
    assert first.status_code == 201
    assert again.status_code == 409 and again.json()["error"]["field"] == "clientId"


def test_onboarding_race_on_one_client_id_is_409_not_500(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both requests pass the existence check before either inserts: the loser's insert hits the
    # primary key. Simulated by hiding the winner from the check.
    from sqlalchemy.orm import Session

    from lsp.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as api:
        assert api.post("/api/enterprise/onboard", json={"name": "x", "clientId": "race"}, headers=ADMIN).status_code == 201
        monkeypatch.setattr(Session, "get", lambda *a, **k: None)
        resp = api.post("/api/enterprise/onboard", json={"name": "y", "clientId": "race"}, headers=ADMIN)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "conflict"


def test_alert_id_beyond_bigint_is_422(api: TestClient) -> None:
    resp = api.post(f"/api/admin/alerts/{2**63}", json={"status": "reviewing"}, headers=ADMIN)
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "path.alert_id"


def test_report_period_before_year_one_is_422(lsp: LSPClient) -> None:
    with pytest.raises(LSPAPIError) as exc:
        lsp.request("GET", "/api/enterprise/reports", params={"to": "0001-01-01"})
    assert _error(exc)[:2] == (422, "query.to")


def test_non_ascii_signature_is_401(api: TestClient, creds: Creds) -> None:
    headers = signing.signed_headers(creds.api_key, creds.api_secret, "GET", "/api/enterprise/me")
    # Header values travel as latin-1; a non-ASCII "signature" used to crash compare_digest (500).
    raw = [(k.encode(), v.encode()) for k, v in headers.items() if k != signing.HEADER_SIGNATURE]
    raw.append((signing.HEADER_SIGNATURE.encode(), "é".encode("latin-1") * 64))
    resp = api.get("/api/enterprise/me", headers=raw)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_signature"


def test_websocket_with_a_non_ascii_signature_is_closed_4401(api: TestClient, creds: Creds) -> None:
    ts, nonce = signing.now_ms(), signing.new_nonce()
    url = f"/ws/lightning?apiKey={creds.api_key}&timestamp={ts}&nonce={nonce}&signature=%C3%A9%C3%A9"
    with pytest.raises(WebSocketDisconnect) as exc, api.websocket_connect(url) as ws:
        ws.receive_json()
    assert exc.value.code == 4401


def test_nul_in_a_path_id_is_404_not_a_database_error(lsp: LSPClient) -> None:
    for path in ("/api/channels/a%00b", "/api/invoices/a%00b", "/api/payments/a%00b", "/api/swaps/a%00b"):
        with pytest.raises(LSPAPIError) as exc:
            lsp.request("GET", path)
        assert exc.value.status in (404, 422), (path, exc.value.status, exc.value.message)


def test_no_response_body_leaks_a_traceback(api: TestClient) -> None:
    resp = api.post(
        "/api/enterprise/onboard",
        content=json.dumps({"name": "x", "apiLimits": {"monthlyVolume": 10**30}}).encode(),
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422 and "Traceback" not in resp.text
