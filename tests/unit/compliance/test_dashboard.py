"""The operator dashboard through the real app: login, the KYC queue and alert review by form post."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from lsp.app import create_app
from lsp.config import load_settings
from lsp.db import migrate
from lsp.errors import ConfigError
from tests.unit.lsp.conftest import ADMIN_KEY, make_settings, onboard

pytestmark = pytest.mark.unit
PASSWORD = "operator-test-password"


@pytest.fixture
def web(db_url: str) -> Iterator[TestClient]:
    migrate.upgrade(db_url)
    settings = make_settings(db_url, admin_password=PASSWORD, kyc_initial_state="pending")
    with TestClient(create_app(settings), raise_server_exceptions=False, follow_redirects=False) as tc:
        yield tc


def login(web: TestClient) -> None:
    r = web.post("/dashboard/login", data={"password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_pages_need_the_admin_login(web: TestClient) -> None:
    for path in ("/dashboard", "/dashboard/clients", "/dashboard/alerts", "/dashboard/audit", "/dashboard/channels"):
        r = web.get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/dashboard/login"), path
    assert web.get("/dashboard/events").status_code == 401
    r = web.post("/dashboard/login", data={"password": "guess"})
    assert r.status_code == 200 and "wrong password" in r.text and "set-cookie" not in r.headers
    web.cookies.set("lsp_admin", "9999999999.forged", path="/dashboard")
    assert web.get("/dashboard").status_code == 303


def test_kyc_queue_approve_and_alert_review_from_the_pages(web: TestClient) -> None:
    c = onboard(web, "Pending GmbH")
    login(web)
    page = web.get("/dashboard/clients").text
    assert "Pending GmbH" in page and 'data-state="pending"' in page and "missing: legal_name, email" in page
    # Approving without the required fields is refused with the reason shown.
    r = web.post(f"/dashboard/clients/{c.client_id}/kyc", data={"state": "approved", "tier": "standard"})
    assert r.status_code == 303 and "err=" in r.headers["location"]
    assert "needs" in web.get(r.headers["location"]).text
    fields = {
        "f_legal_name": "Pending GmbH",
        "f_email": "ops@pending.example",
        "f_country": "DE",
        "f_registration_number": "HRB 1",
    }
    r = web.post(f"/dashboard/clients/{c.client_id}/kyc", data={"state": "approved", "tier": "standard", **fields})
    assert r.status_code == 303 and "msg=" in r.headers["location"]
    assert f'id="client-{c.client_id}" data-state="approved"' in web.get("/dashboard/clients").text
    # A cross-site form post (foreign Origin) changes nothing.
    r = web.post(
        f"/dashboard/clients/{c.client_id}/kyc",
        data={"state": "suspended", "reason": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert 'data-state="approved"' in web.get("/dashboard/clients").text

    audit = web.get("/dashboard/audit").text
    assert "chain intact" in audit and "admin:dashboard" in audit and "kyc.change" in audit
    assert web.get("/dashboard").status_code == 200  # overview renders without LND
    assert "Orders &amp; swaps" in web.get("/dashboard/orders").text


def test_mainnet_refuses_the_demo_dashboard_password() -> None:
    strong = "x" * 40
    with pytest.raises(ConfigError, match="LSP_ADMIN_PASSWORD is the demo password"):
        load_settings(network="mainnet", admin_api_key=strong, secret_key=strong + "y")


def test_password_guessing_is_throttled_per_address(web: TestClient) -> None:
    from lsp.security.ratelimit import MAX_AUTH_FAILURES_PER_MINUTE

    for _ in range(MAX_AUTH_FAILURES_PER_MINUTE):
        assert web.post("/dashboard/login", data={"password": "guess"}).status_code == 200
    # Now even the right password is refused until the window passes: guessing gains nothing.
    r = web.post("/dashboard/login", data={"password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1 and "too many wrong passwords" in r.text
    # The admin API's key is throttled the same way (its own counter).
    for _ in range(MAX_AUTH_FAILURES_PER_MINUTE):
        assert web.get("/api/admin/alerts", headers={"X-Admin-Key": "guess"}).status_code == 401
    r = web.get("/api/admin/alerts", headers={"X-Admin-Key": "guess"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited" and "Retry-After" in r.headers


def test_the_clients_page_shows_where_a_clients_payment_pages_live(web: TestClient) -> None:
    r = web.post(
        "/api/enterprise/onboard",
        headers={"X-Admin-Key": ADMIN_KEY},
        json={"name": "Brand AG", "brandingConfig": {"domain": "pay.brand.example", "colors": {"primary": "#a01b2c"}}},
    )
    assert r.status_code == 201, r.text
    login(web)
    page = web.get("/dashboard/clients").text
    assert "pay pages: pay.brand.example" in page and "background:#a01b2c" in page
