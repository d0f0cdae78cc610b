"""clients.balance_sat: the running balance, kept with every ledger entry (backfilled as their sum)

Revision ID: ledger_0001
Revises: lsps_0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ledger_0001"
down_revision: str | None = "lsps_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("balance_sat", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE clients SET balance_sat = COALESCE("
        "(SELECT SUM(amount_sat) FROM ledger_entries WHERE ledger_entries.client_id = clients.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("balance_sat")
