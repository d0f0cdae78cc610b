"""LSPS5 (bLIP-55): client nodes' webhooks, and when each notification method was last sent

Revision ID: lsps_0003
Revises: liquidity_0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lsps_0003"
down_revision: str | None = "liquidity_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lsps5_webhooks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("client_node_id", sa.String(length=66), nullable=False),
        sa.Column("app_name", sa.String(length=256), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lsps5_webhooks")),
        sa.UniqueConstraint("client_node_id", "app_name", name=op.f("uq_lsps5_webhooks_client_node_id_app_name")),
    )
    op.create_index(op.f("ix_lsps5_webhooks_client_node_id"), "lsps5_webhooks", ["client_node_id"])
    op.create_table(
        "lsps5_sent",
        sa.Column("client_node_id", sa.String(length=66), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_node_id", "method", name=op.f("pk_lsps5_sent")),
    )


def downgrade() -> None:
    op.drop_table("lsps5_sent")
    op.drop_index("ix_lsps5_webhooks_client_node_id", table_name="lsps5_webhooks")
    op.drop_table("lsps5_webhooks")
