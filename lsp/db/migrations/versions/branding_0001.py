"""clients.branding: the seed's brandingConfig (logo, colours, domain) for the public payment pages;
clients.branding_domain: its domain, unique, for the pages' Host lookup

Revision ID: branding_0001
Revises: lsps_0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "branding_0001"
down_revision: str | None = "lsps_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("branding", sa.Text(), nullable=True))
        batch.add_column(sa.Column("branding_domain", sa.String(length=253), nullable=True))
        batch.create_unique_constraint("uq_clients_branding_domain", ["branding_domain"])


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_constraint("uq_clients_branding_domain", type_="unique")
        batch.drop_column("branding_domain")
        batch.drop_column("branding")
