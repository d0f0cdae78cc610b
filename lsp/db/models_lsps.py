"""Tables of the LSPS protocols (LSPS2 JIT channels and the wrapped-invoice mode).

SCIDs are stored in their BLOCKxTXxOUT text form: JIT SCIDs live at block
heights >= 16,000,000, which puts them above a signed BIGINT's range.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lsp.db.base import Base, BigIntPK, UTCDateTime, utcnow
from lsp.db.models import new_id


class Lsps2Buy(Base):
    """One ``lsps2.buy``: the JIT SCID sold and what became of it.

    state: PENDING (SCID issued) -> OPENING -> OPENED, or FAILED (open failed or params expired)."""

    __tablename__ = "lsps2_buys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_node_id: Mapped[str] = mapped_column(String(66), index=True)
    jit_scid: Mapped[str] = mapped_column(String(32), unique=True)
    opening_fee_params: Mapped[str] = mapped_column(Text)  # the JSON the client bought with, promise included
    payment_size_msat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # None: variable amount
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="PENDING", index=True)
    channel_point: Mapped[str | None] = mapped_column(String(80), nullable=True)
    channel_alias: Mapped[str | None] = mapped_column(String(32), nullable=True)
    opening_fee_msat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Lsps2Htlc(Base):
    """An HTLC held by the interceptor for a JIT SCID, keyed by LND's incoming circuit key.

    state: HELD -> FORWARDED (resumed with the fee deducted) | FAILED."""

    __tablename__ = "lsps2_htlcs"
    __table_args__ = (UniqueConstraint("chan_id", "htlc_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    buy_id: Mapped[str] = mapped_column(ForeignKey("lsps2_buys.id", ondelete="CASCADE"), index=True)
    chan_id: Mapped[str] = mapped_column(String(32))
    htlc_id: Mapped[int] = mapped_column(BigInteger)
    payment_hash: Mapped[str] = mapped_column(String(64), index=True)
    amount_msat: Mapped[int] = mapped_column(BigInteger)  # the onion's outgoing amount
    fee_msat: Mapped[int] = mapped_column(BigInteger, default=0)  # the share of the opening fee taken from it
    state: Mapped[str] = mapped_column(String(16), default="HELD")
    failure: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WrappedInvoice(Base):
    """The wrapped-invoice mode: the LSP's hold invoice for the client's payment hash plus the fee.

    state: WAITING -> ACCEPTED (payer's HTLC held) -> OPENING -> PAID (client paid) -> SETTLED,
    or CANCELED (open or payment failed: the payer's HTLC is released)."""

    __tablename__ = "lsps_wrapped_invoices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    payment_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_node_id: Mapped[str] = mapped_column(String(66), index=True)
    client_invoice: Mapped[str] = mapped_column(Text)
    lsp_invoice: Mapped[str] = mapped_column(Text)
    client_amount_msat: Mapped[int] = mapped_column(BigInteger)
    fee_msat: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default="WAITING", index=True)
    channel_point: Mapped[str | None] = mapped_column(String(80), nullable=True)
    preimage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    expiry_s: Mapped[int] = mapped_column(Integer, default=3600)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lsps1Order(Base):
    """An LSPS1 channel order. order_state CREATED -> COMPLETED | FAILED; payment_state
    EXPECT_PAYMENT -> HOLD -> PAID | REFUNDED. The LSP is the payee: it holds the preimage of
    its own hold invoice and settles only once the channel's funding transaction is out."""

    __tablename__ = "lsps1_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_node_id: Mapped[str | None] = mapped_column(String(66), index=True, nullable=True)
    request: Mapped[str] = mapped_column(Text)  # the order's options as the client sent them (JSON)
    order_state: Mapped[str] = mapped_column(String(16), default="CREATED", index=True)
    payment_state: Mapped[str] = mapped_column(String(16), default="EXPECT_PAYMENT")
    payment_hash: Mapped[str] = mapped_column(String(64), unique=True)
    preimage: Mapped[str] = mapped_column(String(64))
    invoice: Mapped[str] = mapped_column(Text)
    fee_total_sat: Mapped[int] = mapped_column(BigInteger)
    order_total_sat: Mapped[int] = mapped_column(BigInteger)
    channel_point: Mapped[str | None] = mapped_column(String(80), nullable=True)
    funded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # On-chain payment option (only when the client gave a refund address; migration lsps_0002).
    # onchain_state EXPECT_PAYMENT -> PAID | REFUNDED; paid_via says which option paid (set once).
    onchain_address: Mapped[str | None] = mapped_column(String(100), nullable=True)
    refund_onchain_address: Mapped[str | None] = mapped_column(String(100), nullable=True)
    onchain_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    onchain_paid_sat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    onchain_outpoints: Mapped[str | None] = mapped_column(Text, nullable=True)  # "txid:vout,..." received
    refund_txid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    paid_via: Mapped[str | None] = mapped_column(String(16), nullable=True)  # bolt11 | onchain


class Lsps5Webhook(Base):
    """One ``lsps5.set_webhook``: a client node's webhook under its ``app_name`` (bLIP-55).

    Kept until the client removes it (bLIP-55 asks for at least 7 days after its last channel)."""

    __tablename__ = "lsps5_webhooks"
    __table_args__ = (UniqueConstraint("client_node_id", "app_name"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    client_node_id: Mapped[str] = mapped_column(String(66), index=True)
    app_name: Mapped[str] = mapped_column(String(256))
    url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lsps5Sent(Base):
    """When a notification method was last sent to a client node: the per-method cooldown (cleared
    when the client comes online, as bLIP-55's rate-limiting guideline asks)."""

    __tablename__ = "lsps5_sent"

    client_node_id: Mapped[str] = mapped_column(String(66), primary_key=True)
    method: Mapped[str] = mapped_column(String(64), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
