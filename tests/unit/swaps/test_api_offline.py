"""The swap API and settings without an LND node: the public status answers, swap creation says why it
cannot (503), bad settings are named. (Everything that moves money is in tests/lab/swaps.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from lsp.app import create_app
from lsp.client import LSPAPIError, LSPClient
from lsp.config import Settings
from lsp.db import migrate
from lsp.swaps.config import SwapSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.chdir(tmp_path)  # no .env from the caller's directory
    url = f"sqlite:///{tmp_path / 'lsp.db'}"
    migrate.upgrade(url)
    app = create_app(Settings(database_url=url, admin_api_key="k" * 16, background_tasks=False))  # type: ignore[arg-type]
    return TestClient(app, base_url="http://lsp")


def test_status_is_public_and_reports_no_lnd(http: TestClient) -> None:
    with http:
        body = http.get("/api/swaps/status").json()
    assert body["lnd"] is False and body["loopRunning"] is False
    assert body["swaps"] == {}
    assert body["timeouts"]["claimMarginBlocks"] == 6


def test_creating_a_swap_without_lnd_is_a_503(http: TestClient) -> None:
    with http:
        r = http.post(
            "/api/enterprise/onboard",
            headers={"X-Admin-Key": "k" * 16},
            json={"name": "x", "apiLimits": {"requestsPerMinute": 100, "monthlyVolume": 1000}},
        )
        api = LSPClient("http://lsp", r.json()["apiKey"], r.json()["apiSecret"], http=http)
        with pytest.raises(LSPAPIError) as err:
            api.request(
                "POST",
                "/api/swaps/reverse",
                json={"amount": 50_000, "paymentHash": "00" * 32, "claimPublicKey": "02" * 33},
            )
    assert err.value.status == 503 and err.value.code == "lnd_unavailable"


def test_unsafe_margins_are_refused() -> None:
    with pytest.raises(ValidationError, match="CLAIM_MARGIN"):
        SwapSettings(_env_file=None, submarine_timeout_blocks=10, claim_margin_blocks=6)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="MIN_AMOUNT"):
        SwapSettings(_env_file=None, min_amount=50_000, max_amount=20_000)  # type: ignore[call-arg]
