"""channel_breaches: revoked commitments broadcast against the LSP's channels, each raised once

Revision ID: security_0001
Revises: branding_0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "security_0001"
down_revision: str | None = "branding_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_breaches",
        sa.Column("channel_point", sa.String(length=80), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=True),
        sa.Column("remote_pubkey", sa.String(length=66), nullable=False),
        sa.Column("breach_txid", sa.String(length=64), nullable=False),
        sa.Column("capacity_sat", sa.BigInteger(), nullable=False),
        sa.Column("settled_balance_sat", sa.BigInteger(), nullable=False),
        sa.Column("close_height", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel_point", name=op.f("pk_channel_breaches")),
    )


def downgrade() -> None:
    op.drop_table("channel_breaches")
