"""LSPS1 orders: the on-chain payment option (address, refund address, state, refund tx)

Revision ID: lsps_0002
Revises: compliance_0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lsps_0002"
down_revision: str | None = "compliance_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    sa.Column("onchain_address", sa.String(length=100), nullable=True),
    sa.Column("refund_onchain_address", sa.String(length=100), nullable=True),
    sa.Column("onchain_state", sa.String(length=16), nullable=True),
    sa.Column("onchain_paid_sat", sa.BigInteger(), nullable=True),
    sa.Column("onchain_outpoints", sa.Text(), nullable=True),
    sa.Column("refund_txid", sa.String(length=64), nullable=True),
    sa.Column("paid_via", sa.String(length=16), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("lsps1_orders") as batch:
        for col in COLUMNS:
            batch.add_column(col)


def downgrade() -> None:
    with op.batch_alter_table("lsps1_orders") as batch:
        for col in reversed(COLUMNS):
            batch.drop_column(col.name)
