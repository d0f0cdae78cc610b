"""The LSP test fixtures (real app, SQLite and -- with LSP_TEST_POSTGRES_URL -- PostgreSQL), reused here."""

from tests.unit.lsp.conftest import _no_env_leak, db_url, sqlite_url  # noqa: F401
