"""Reservations are spendable: payments name the reservation they draw on, reservations count what was used

``payments.reservation_id`` links a payment to the liquidity reservation it draws on, and
``liquidity_reservations.used_sat`` is what those payments hold of it (amount + max fee while in
flight, amount + fee once succeeded). Existing rows: no payment drew on a reservation (0 used).

Revision ID: liquidity_0001
Revises: usage_0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "liquidity_0001"
down_revision: str | None = "usage_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_payments_reservation_id_liquidity_reservations"  # the models' naming convention


def upgrade() -> None:
    with op.batch_alter_table("liquidity_reservations") as batch:
        batch.add_column(sa.Column("used_sat", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("reservation_id", sa.String(length=32), nullable=True))
        batch.create_foreign_key(FK, "liquidity_reservations", ["reservation_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_constraint(FK, type_="foreignkey")
        batch.drop_column("reservation_id")
    with op.batch_alter_table("liquidity_reservations") as batch:
        batch.drop_column("used_sat")
