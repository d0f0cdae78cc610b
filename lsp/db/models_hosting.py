"""Hosted Lightning nodes (lsp/hosting): one row per node a client asked for, deleted ones kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lsp.db.base import Base, UTCDateTime, utcnow


class HostedNode(Base):
    """state: provisioning | running | restarting | stopped | failed | deleting | deleted; ``desired`` is what
    the client last asked for (running | stopped | deleted): the supervisor moves ``state`` to it.

    Secrets (the wallet password, the seed, the LSP's admin macaroon and the client's macaroon)
    are Fernet-encrypted with the key derived from LSP_SECRET_KEY, like client API secrets."""

    __tablename__ = "hosted_nodes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    orchestrator: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="provisioning", index=True)
    desired: Mapped[str] = mapped_column(String(16), default="running")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it failed, in words
    config: Mapped[str] = mapped_column(Text)  # the HostedNodeConfig as asked for (JSON)
    grpc_port: Mapped[int] = mapped_column(Integer)
    rest_port: Mapped[int] = mapped_column(Integer)
    p2p_port: Mapped[int] = mapped_column(Integer)
    pubkey: Mapped[str | None] = mapped_column(String(66), nullable=True)
    tls_cert: Mapped[str | None] = mapped_column(Text, nullable=True)
    password_enc: Mapped[str] = mapped_column(Text)
    seed_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    admin_macaroon_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    client_macaroon_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    channel_points: Mapped[str] = mapped_column(Text, default="[]")  # the initial channels (JSON list)
    charged_sat: Mapped[int] = mapped_column(BigInteger, default=0)  # what creating it debited (refunded if it fails)
    sweep_address: Mapped[str | None] = mapped_column(String(100), nullable=True)
    sweep_sat_per_vbyte: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: LND's 6-block estimate
    sweep_txid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    paid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    billed_payments: Mapped[int] = mapped_column(BigInteger, default=0)  # ListPayments index already billed
    billed_invoices: Mapped[int] = mapped_column(BigInteger, default=0)  # settle index already billed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    running_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
