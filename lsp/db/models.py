"""The LSP's tables. Amounts are integer satoshis (BIGINT: 21 BTC overflows INT4)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lsp.db.base import Base, BigIntPK, Scid, UTCDateTime, utcnow


def new_id() -> str:
    return uuid.uuid4().hex


class Client(Base):
    """An enterprise client (the seed's EnterpriseConfig): API credentials, limits, features."""

    __tablename__ = "clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    api_key: Mapped[str] = mapped_column(String(64), unique=True)
    # The HMAC secret must be recoverable to verify signatures, so it cannot be
    # hashed: it is stored Fernet-encrypted with a key derived from LSP_SECRET_KEY.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    monthly_volume_sat: Mapped[int] = mapped_column(BigInteger)
    custom_routing: Mapped[bool] = mapped_column(Boolean, default=False)
    priority_support: Mapped[bool] = mapped_column(Boolean, default=False)
    dedicated_liquidity: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The sum of the client's ledger entries, kept by ``lsp.services.ledger`` in the transaction
    # that appends each entry (never written anywhere else); ``lsp reconcile`` checks the two agree.
    balance_sat: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The seed's brandingConfig (JSON; lsp/services/branding.py): the public payment pages wear it.
    branding: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Its domain, kept apart so a payment page's Host is one indexed lookup, and unique per client.
    branding_domain: Mapped[str | None] = mapped_column(String(253), nullable=True, unique=True)


class UsedNonce(Base):
    """Nonces already seen, kept until their signed timestamp can no longer be accepted."""

    __tablename__ = "used_nonces"
    __table_args__ = (UniqueConstraint("client_id", "nonce"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Channel(Base):
    """A channel the LSP opened for a client. status: pending -> open -> closing -> closed (or failed)."""

    __tablename__ = "channels"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    remote_pubkey: Mapped[str] = mapped_column(String(66))
    capacity_sat: Mapped[int] = mapped_column(BigInteger)
    push_sat: Mapped[int] = mapped_column(BigInteger, default=0)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    opening_fee_sat: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    funding_txid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    output_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    chan_id: Mapped[int | None] = mapped_column(Scid, nullable=True)  # LND's short channel id once open
    closing_txid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def channel_point(self) -> str | None:
        if self.funding_txid is None or self.output_index is None:
            return None
        return f"{self.funding_txid}:{self.output_index}"


class Invoice(Base):
    """An invoice created on LND for a client. status: open -> settled | canceled | expired."""

    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    payment_hash: Mapped[str] = mapped_column(String(64), unique=True)
    payment_request: Mapped[str] = mapped_column(Text)
    add_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    amount_sat: Mapped[int] = mapped_column(BigInteger)
    amount_paid_sat: Mapped[int] = mapped_column(BigInteger, default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    expiry_s: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Payment(Base):
    """An outgoing payment. status: in_flight -> succeeded | failed. Unique per (client, idempotency key)."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key"),
        Index("ix_payments_status", "status"),
        # The client's payments in a period: the KYC volume limits read this month's on every payment.
        Index("ix_payments_client_id_created_at", "client_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    payment_hash: Mapped[str] = mapped_column(String(64), index=True)
    payment_request: Mapped[str] = mapped_column(Text)
    amount_sat: Mapped[int] = mapped_column(BigInteger)
    max_fee_sat: Mapped[int] = mapped_column(BigInteger)
    fee_sat: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="in_flight")
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    preimage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The liquidity reservation the payment draws on (its amount + max fee while in flight).
    reservation_id: Mapped[str | None] = mapped_column(
        ForeignKey("liquidity_reservations.id", ondelete="SET NULL"), nullable=True
    )


class LedgerEntry(Base):
    """Every sat in (+) or out (-) of a client's balance; the balance is their sum (kept as
    ``Client.balance_sat``)."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    amount_sat: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LiquidityReservation(Base):
    """Outbound liquidity set aside for a client until ``expires_at``. status: active | expired.

    ``used_sat``: what the client's payments drew on it (amount + max fee while in flight,
    amount + fee once succeeded); ``amount_sat - used_sat`` stays guaranteed."""

    __tablename__ = "liquidity_reservations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    amount_sat: Mapped[int] = mapped_column(BigInteger)
    fee_rate_ppm: Mapped[int] = mapped_column(Integer)
    fee_sat: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_sat: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Webhook(Base):
    """A client's webhook endpoint; deliveries are signed with its own secret."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    events: Mapped[str] = mapped_column(Text, default="*")  # comma-separated event types, or "*"
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event to one webhook, with every attempt's outcome. status: pending | delivered | failed."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ForwardingEvent(Base):
    """A payment LND forwarded; the LSP's routing revenue is the sum of fee_msat."""

    __tablename__ = "forwarding_events"
    __table_args__ = (UniqueConstraint("timestamp_ns", "chan_id_in", "chan_id_out"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    timestamp_ns: Mapped[int] = mapped_column(BigInteger)
    chan_id_in: Mapped[int] = mapped_column(Scid)  # may be an alias SCID >= 2^63 (JIT channels)
    chan_id_out: Mapped[int] = mapped_column(Scid)
    amt_in_msat: Mapped[int] = mapped_column(BigInteger)
    amt_out_msat: Mapped[int] = mapped_column(BigInteger)
    fee_msat: Mapped[int] = mapped_column(BigInteger)


from lsp.db import models_compliance as models_compliance  # noqa: E402  (compliance tables, issue 9)
from lsp.db import models_hosting as models_hosting  # noqa: E402  (hosted nodes)
from lsp.db import models_lsps as models_lsps  # noqa: E402  (LSPS tables: registered on Base)
from lsp.db import models_routing as models_routing  # noqa: E402  (registers the routing tables)
from lsp.db import models_swaps as models_swaps  # noqa: E402  (swap tables)
