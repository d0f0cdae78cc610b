"""Fixtures for the LSP's unit tests: a real database (SQLite file, and PostgreSQL when
LSP_TEST_POSTGRES_URL is set -- see scripts/start-postgres.sh), migrated with Alembic,
and the real app behind FastAPI's TestClient. Nothing here talks to LND."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harness.lsp_process import scratch_postgres
from lsp.app import create_app
from lsp.client import LSPClient
from lsp.config import Settings, load_settings
from lsp.db import migrate

ADMIN_KEY = "test-admin-key"
PG_ENV = "LSP_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings come only from what a test passes: no LSP_* from the shell, no .env from the cwd."""
    for key in list(os.environ):
        if key.startswith("LSP_") and key != PG_ENV:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _fresh_postgres_db(base_url: str) -> Iterator[str]:
    with scratch_postgres(base_url, "lsp_t") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lsp.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is unset; start PostgreSQL with scripts/start-postgres.sh and export its URL")
    yield from _fresh_postgres_db(base)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lsp.db'}"


def make_settings(url: str, **overrides: object) -> Settings:
    # No background loops: tests drive the webhook dispatcher themselves, deterministically.
    overrides.setdefault("background_tasks", False)
    return load_settings(database_url=url, admin_api_key=ADMIN_KEY, **overrides)


@pytest.fixture
def settings(db_url: str) -> Settings:
    migrate.upgrade(db_url)
    return make_settings(db_url)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@dataclass
class Creds:
    client_id: str
    api_key: str
    api_secret: str


def onboard(api: TestClient, name: str = "acme", **extra: object) -> Creds:
    resp = api.post("/api/enterprise/onboard", json={"name": name, **extra}, headers={"X-Admin-Key": ADMIN_KEY})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return Creds(body["clientId"], body["apiKey"], body["apiSecret"])


@pytest.fixture
def creds(api: TestClient) -> Creds:
    return onboard(api)


@pytest.fixture
def lsp(api: TestClient, creds: Creds) -> LSPClient:
    return LSPClient("http://testserver", creds.api_key, creds.api_secret, http=api)
