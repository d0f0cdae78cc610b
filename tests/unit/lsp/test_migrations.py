"""Alembic migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, event, inspect, text

from lsp.compliance import kyc
from lsp.db import migrate
from lsp.db.base import Base, make_engine, make_sessionmaker, session_scope, utcnow

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


def test_the_volume_limits_read_a_clients_period_by_index(sqlite_url: str) -> None:
    """The usage query each payment runs finds the client's payments and swaps of the period through
    the (client_id, created_at) indexes, not by reading the client's whole history."""
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    try:
        event.listen(engine, "before_cursor_execute", capture)
        with session_scope(make_sessionmaker(engine)) as s:
            kyc.usage(s, "no-such-client")
        event.remove(engine, "before_cursor_execute", capture)
        ((statement, parameters),) = [(q, p) for q, p in seen if "FROM payments" in q][-1:]
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    finally:
        engine.dispose()
    plan = " | ".join(str(row[-1]) for row in rows)
    assert "ix_payments_client_id_created_at (client_id=? AND created_at>?)" in plan, plan
    assert "ix_swaps_client_id_created_at (client_id=? AND created_at>?)" in plan, plan
