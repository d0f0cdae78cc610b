"""LSPS tables: LSPS2 buys, held HTLCs, wrapped invoices, LSPS1 orders

Revision ID: lsps_0001
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "lsps_0001"
down_revision: str | None = "swaps_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lsps2_buys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_node_id", sa.String(length=66), nullable=False),
        sa.Column("jit_scid", sa.String(length=32), nullable=False),
        sa.Column("opening_fee_params", sa.Text(), nullable=False),
        sa.Column("payment_size_msat", sa.BigInteger(), nullable=True),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("channel_point", sa.String(length=80), nullable=True),
        sa.Column("channel_alias", sa.String(length=32), nullable=True),
        sa.Column("opening_fee_msat", sa.BigInteger(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lsps2_buys")),
        sa.UniqueConstraint("jit_scid", name=op.f("uq_lsps2_buys_jit_scid")),
    )
    op.create_index(op.f("ix_lsps2_buys_client_node_id"), "lsps2_buys", ["client_node_id"])
    op.create_index(op.f("ix_lsps2_buys_state"), "lsps2_buys", ["state"])
    op.create_table(
        "lsps2_htlcs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("buy_id", sa.String(length=32), nullable=False),
        sa.Column("chan_id", sa.String(length=32), nullable=False),
        sa.Column("htlc_id", sa.BigInteger(), nullable=False),
        sa.Column("payment_hash", sa.String(length=64), nullable=False),
        sa.Column("amount_msat", sa.BigInteger(), nullable=False),
        sa.Column("fee_msat", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failure", sa.String(length=64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["buy_id"], ["lsps2_buys.id"], name=op.f("fk_lsps2_htlcs_buy_id_lsps2_buys"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lsps2_htlcs")),
        sa.UniqueConstraint("chan_id", "htlc_id", name=op.f("uq_lsps2_htlcs_chan_id_htlc_id")),
    )
    op.create_index(op.f("ix_lsps2_htlcs_buy_id"), "lsps2_htlcs", ["buy_id"])
    op.create_index(op.f("ix_lsps2_htlcs_payment_hash"), "lsps2_htlcs", ["payment_hash"])
    op.create_table(
        "lsps_wrapped_invoices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("payment_hash", sa.String(length=64), nullable=False),
        sa.Column("client_node_id", sa.String(length=66), nullable=False),
        sa.Column("client_invoice", sa.Text(), nullable=False),
        sa.Column("lsp_invoice", sa.Text(), nullable=False),
        sa.Column("client_amount_msat", sa.BigInteger(), nullable=False),
        sa.Column("fee_msat", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("channel_point", sa.String(length=80), nullable=True),
        sa.Column("preimage", sa.String(length=64), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("expiry_s", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lsps_wrapped_invoices")),
        sa.UniqueConstraint("payment_hash", name=op.f("uq_lsps_wrapped_invoices_payment_hash")),
    )
    op.create_index(op.f("ix_lsps_wrapped_invoices_client_node_id"), "lsps_wrapped_invoices", ["client_node_id"])
    op.create_index(op.f("ix_lsps_wrapped_invoices_state"), "lsps_wrapped_invoices", ["state"])
    op.create_table(
        "lsps1_orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_node_id", sa.String(length=66), nullable=True),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("order_state", sa.String(length=16), nullable=False),
        sa.Column("payment_state", sa.String(length=16), nullable=False),
        sa.Column("payment_hash", sa.String(length=64), nullable=False),
        sa.Column("preimage", sa.String(length=64), nullable=False),
        sa.Column("invoice", sa.Text(), nullable=False),
        sa.Column("fee_total_sat", sa.BigInteger(), nullable=False),
        sa.Column("order_total_sat", sa.BigInteger(), nullable=False),
        sa.Column("channel_point", sa.String(length=80), nullable=True),
        sa.Column("funded_at", TS, nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lsps1_orders")),
        sa.UniqueConstraint("payment_hash", name=op.f("uq_lsps1_orders_payment_hash")),
    )
    op.create_index(op.f("ix_lsps1_orders_client_node_id"), "lsps1_orders", ["client_node_id"])
    op.create_index(op.f("ix_lsps1_orders_order_state"), "lsps1_orders", ["order_state"])


def downgrade() -> None:
    op.drop_table("lsps1_orders")
    op.drop_table("lsps_wrapped_invoices")
    op.drop_table("lsps2_htlcs")
    op.drop_table("lsps2_buys")
