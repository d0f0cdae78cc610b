"""Every 4xx/5xx has the same shape: {"error": {"code", "message", "field"?}}; no tracebacks."""

from __future__ import annotations

import pytest

from tests.unit.lsp.conftest import ADMIN_KEY

pytestmark = pytest.mark.unit

ADMIN = {"X-Admin-Key": ADMIN_KEY}


def test_unknown_route_is_404_in_the_error_shape(api) -> None:
    resp = api.get("/api/nope")
    assert resp.status_code == 404
    assert resp.json() == {"error": {"code": "not_found", "message": "no such endpoint: GET /api/nope"}}


def test_wrong_method_is_405_in_the_error_shape(api) -> None:
    resp = api.delete("/api/enterprise/onboard")
    assert resp.status_code == 405
    assert resp.json()["error"]["code"] == "method_not_allowed"


def test_validation_error_is_422_naming_the_field(api) -> None:
    resp = api.post(
        "/api/enterprise/onboard", json={"name": "acme", "apiLimits": {"requestsPerMinute": 0}}, headers=ADMIN
    )
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["code"] == "validation_error"
    assert err["field"] == "body.apiLimits.requestsPerMinute"
    assert "greater than or equal to 1" in err["message"]


def test_missing_field_is_422_naming_it(api) -> None:
    resp = api.post("/api/enterprise/onboard", json={}, headers=ADMIN)
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "body.name"


def test_malformed_json_is_422_not_500(api) -> None:
    resp = api.post(
        "/api/enterprise/onboard", content=b"{not json", headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_json"
    assert "Traceback" not in resp.text


def test_request_id_is_echoed_or_made_up(api) -> None:
    assert api.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    assert len(api.get("/health").headers["X-Request-ID"]) == 32


def test_openapi_docs_are_served(api) -> None:
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert "/api/enterprise/onboard" in paths


def test_a_database_that_is_down_is_503_with_retry_after_not_500() -> None:
    """A real PostgreSQL URL on a port nothing listens on: every request that needs the database
    gets 503 + Retry-After (the client may retry), never a 500 with a traceback."""
    import socket

    from fastapi.testclient import TestClient

    from lsp.app import create_app
    from lsp.config import load_settings

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(
        database_url=f"postgresql://lsp@127.0.0.1:{port}/lsp", admin_api_key=ADMIN_KEY, background_tasks=False
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as http:
        resp = http.post("/api/enterprise/onboard", json={"name": "acme"}, headers=ADMIN)
    assert resp.status_code == 503, resp.text
    assert resp.headers["Retry-After"] == "5"
    assert resp.json()["error"]["code"] == "database_unavailable"
