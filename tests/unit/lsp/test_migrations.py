"""Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from lsp.db import migrate
from lsp.db.base import Base, utcnow

pytestmark = pytest.mark.unit


def test_upgrade_head_creates_every_table_and_matches_the_models(db_url: str) -> None:
    assert migrate.current_revision(db_url) is None
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            assert set(Base.metadata.tables) <= tables
            # No drift: the migration and the models agree (a forgotten migration fails here).
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
            assert diff == []
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_removes_everything(db_url: str) -> None:
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    migrate.downgrade(db_url, "base")
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_running_balances_start_as_the_sum_of_each_clients_ledger(db_url: str) -> None:
    """An LSP upgraded with money on its books: ``clients.balance_sat`` is backfilled from the
    ledger (ledger_0001), so no client's balance changes at the upgrade."""
    migrate.upgrade(db_url, "lsps_0002")
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            for cid in ("rich", "empty"):
                conn.execute(
                    text(
                        "INSERT INTO clients (id, name, api_key, secret_encrypted, requests_per_minute,"
                        " monthly_volume_sat, custom_routing, priority_support, dedicated_liquidity, active,"
                        " created_at) VALUES (:id, :id, :id, 'x', 60, 0, false, false, false, true, :at)"
                    ),
                    {"id": cid, "at": utcnow()},
                )
            for amount, kind in ((50_000, "invoice_settled"), (-1_010, "payment_reserve"), (3, "payment_refund")):
                conn.execute(
                    text(
                        "INSERT INTO ledger_entries (client_id, amount_sat, kind, reference, created_at)"
                        " VALUES ('rich', :amount, :kind, 'ref', :at)"
                    ),
                    {"amount": amount, "kind": kind, "at": utcnow()},
                )
        migrate.upgrade(db_url)
        with engine.connect() as conn:
            balances = dict(conn.execute(text("SELECT id, balance_sat FROM clients")).all())
        assert balances == {"rich": 50_000 - 1_010 + 3, "empty": 0}
    finally:
        engine.dispose()
