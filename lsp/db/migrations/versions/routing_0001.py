"""routing liquidity beliefs

Revision ID: routing_0001
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "routing_0001"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "routing_liquidity",
        sa.Column("scid", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=66), nullable=False),
        sa.Column("lower_msat", sa.BigInteger(), nullable=False),
        sa.Column("upper_msat", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scid", "source", name=op.f("pk_routing_liquidity")),
    )


def downgrade() -> None:
    op.drop_table("routing_liquidity")
