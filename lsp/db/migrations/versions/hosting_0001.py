"""hosted_nodes: one dedicated LND per client (lsp/hosting)

Revision ID: hosting_0001
Revises: security_0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "hosting_0001"
down_revision: str | None = "security_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hosted_nodes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("orchestrator", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("desired", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("grpc_port", sa.Integer(), nullable=False),
        sa.Column("rest_port", sa.Integer(), nullable=False),
        sa.Column("p2p_port", sa.Integer(), nullable=False),
        sa.Column("pubkey", sa.String(length=66), nullable=True),
        sa.Column("tls_cert", sa.Text(), nullable=True),
        sa.Column("password_enc", sa.Text(), nullable=False),
        sa.Column("seed_enc", sa.Text(), nullable=True),
        sa.Column("admin_macaroon_enc", sa.Text(), nullable=True),
        sa.Column("client_macaroon_enc", sa.Text(), nullable=True),
        sa.Column("channel_points", sa.Text(), nullable=False),
        sa.Column("charged_sat", sa.BigInteger(), nullable=False),
        sa.Column("sweep_address", sa.String(length=100), nullable=True),
        sa.Column("sweep_sat_per_vbyte", sa.Integer(), nullable=True),
        sa.Column("sweep_txid", sa.String(length=64), nullable=True),
        sa.Column("paid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("billed_payments", sa.BigInteger(), nullable=False),
        sa.Column("billed_invoices", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("running_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_hosted_nodes_client_id_clients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hosted_nodes")),
    )
    op.create_index(op.f("ix_hosted_nodes_client_id"), "hosted_nodes", ["client_id"], unique=False)
    op.create_index(op.f("ix_hosted_nodes_state"), "hosted_nodes", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_hosted_nodes_state"), table_name="hosted_nodes")
    op.drop_index(op.f("ix_hosted_nodes_client_id"), table_name="hosted_nodes")
    op.drop_table("hosted_nodes")
