"""Reuse the core API's fixtures (migrated DB, app, onboarded client) for the LSPS HTTPS mirror."""

from tests.unit.lsp.conftest import api, creds, db_url, settings  # noqa: F401
