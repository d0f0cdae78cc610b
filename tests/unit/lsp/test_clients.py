"""Onboarding, per-client rate limits, and client isolation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from lsp.client import LSPAPIError, LSPClient
from lsp.db.models import Client
from lsp.security.ratelimit import RateLimiter
from tests.unit.lsp.conftest import ADMIN_KEY, onboard

pytestmark = pytest.mark.unit


def test_onboarding_returns_credentials_limits_and_features(api: TestClient, settings) -> None:
    resp = api.post(
        "/api/enterprise/onboard",
        headers={"X-Admin-Key": ADMIN_KEY},
        json={
            "clientId": "exchange-1",
            "name": "Exchange One",
            "brandingConfig": {"logo": "https://cdn.example.com/x.png", "colors": {"primary": "#112233"}},
            "apiLimits": {"requestsPerMinute": 120, "monthlyVolume": 5_000_000},
            "features": {"customRouting": True, "prioritySupport": False, "dedicatedLiquidity": True},
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["clientId"] == "exchange-1"
    assert body["apiKey"].startswith("lsp_") and len(body["apiSecret"]) >= 40
    assert body["apiLimits"] == {"requestsPerMinute": 120, "monthlyVolume": 5_000_000}
    assert body["features"] == {"customRouting": True, "prioritySupport": False, "dedicatedLiquidity": True}
    assert body["brandingConfig"] == {"logo": "https://cdn.example.com/x.png", "colors": {"primary": "#112233"},
                                      "domain": None}
    # The secret is not stored in the clear.
    engine = create_engine(settings.database_url)
    with engine.connect() as c:
        stored = c.execute(select(Client.secret_encrypted).where(Client.id == "exchange-1")).scalar_one()
    engine.dispose()
    assert body["apiSecret"] not in stored
    # And the credentials work.
    assert LSPClient("http://t", body["apiKey"], body["apiSecret"], http=api).me()["name"] == "Exchange One"


def test_onboarding_defaults_limits_from_settings(api: TestClient) -> None:
    creds = onboard(api, "plain")
    me = LSPClient("http://t", creds.api_key, creds.api_secret, http=api).me()
    assert me["apiLimits"] == {"requestsPerMinute": 60, "monthlyVolume": 100_000_000}
    assert me["features"] == {"customRouting": False, "prioritySupport": False, "dedicatedLiquidity": False}


@pytest.mark.parametrize("key", [None, "wrong", ADMIN_KEY + "x"])
def test_onboarding_needs_the_admin_key(api: TestClient, key: str | None) -> None:
    headers = {"X-Admin-Key": key} if key else {}
    resp = api.post("/api/enterprise/onboard", json={"name": "x"}, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "invalid_admin_key"


def test_duplicate_client_id_is_409(api: TestClient) -> None:
    onboard(api, "a", clientId="dup")
    resp = api.post(
        "/api/enterprise/onboard", json={"name": "b", "clientId": "dup"}, headers={"X-Admin-Key": ADMIN_KEY}
    )
    assert resp.status_code == 409
    assert resp.json()["error"] == {"code": "conflict", "message": "client 'dup' already exists", "field": "clientId"}


def test_rate_limit_is_429_with_retry_after(api: TestClient) -> None:
    creds = onboard(api, "small", apiLimits={"requestsPerMinute": 3})
    lsp = LSPClient("http://t", creds.api_key, creds.api_secret, http=api)
    for _ in range(3):
        lsp.me()
    with pytest.raises(LSPAPIError) as exc:
        lsp.me()
    assert exc.value.status == 429 and exc.value.code == "rate_limited"
    assert 1 <= int(exc.value.headers["Retry-After"]) <= 60
    # Another client is not affected by this one's limit.
    other = onboard(api, "other")
    assert LSPClient("http://t", other.api_key, other.api_secret, http=api).me()["name"] == "other"


def test_rate_limit_window_slides() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.hit("c", 2) for _ in range(2)] == [None, None]
    assert limiter.hit("c", 2) == 60
    now[0] += 59.5
    assert limiter.hit("c", 2) == 1  # rounds up: never tells a client to retry too early
    now[0] += 0.6
    assert limiter.hit("c", 2) is None


def test_a_client_cannot_see_another_clients_webhook(api: TestClient) -> None:
    a, b = onboard(api, "a"), onboard(api, "b")
    la = LSPClient("http://t", a.api_key, a.api_secret, http=api)
    lb = LSPClient("http://t", b.api_key, b.api_secret, http=api)
    hook = la.set_webhook("https://a.example/hook", ["payment_received"])
    assert la.request("GET", f"/api/enterprise/webhooks/{hook['id']}")["url"] == "https://a.example/hook"
    with pytest.raises(LSPAPIError) as exc:
        lb.request("GET", f"/api/enterprise/webhooks/{hook['id']}")
    assert exc.value.status == 404
    assert lb.request("GET", "/api/enterprise/webhooks") == []
