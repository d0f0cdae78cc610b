"""payments and swaps indexed by (client_id, created_at): the KYC volume limits' period reads

The usage query behind the daily and monthly limits runs under the client's lock on every
payment and read every payment the client ever made (only client_id was indexed): 58 ms per
payment with 100,000 in the history, 6.7 ms with this index (docs/BENCHMARKS.md). The
composite index serves client_id lookups too, so it replaces the single-column one.

Revision ID: usage_0001
Revises: ledger_0001
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "usage_0001"
down_revision: str | None = "ledger_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("payments", "swaps")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_index(f"ix_{table}_client_id_created_at", ["client_id", "created_at"], unique=False)
            batch.drop_index(f"ix_{table}_client_id")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_index(f"ix_{table}_client_id", ["client_id"], unique=False)
            batch.drop_index(f"ix_{table}_client_id_created_at")
