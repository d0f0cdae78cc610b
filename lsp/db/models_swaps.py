"""Swap tables: one row per swap (its whole persisted state), and its state history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lsp.db.base import Base, BigIntPK, UTCDateTime, utcnow
from lsp.db.models import new_id


class Swap(Base):
    """A submarine (chain -> Lightning) or reverse (Lightning -> chain) swap. See lsp/swaps/state.py."""

    __tablename__ = "swaps"
    # The client's swaps in a period (the KYC volume limits count them with its payments).
    __table_args__ = (Index("ix_swaps_client_id_created_at", "client_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24), index=True)
    # Lightning side: invoice amount; on-chain side: what the lockup output must hold (submarine) or holds (reverse).
    invoice_amount_sat: Mapped[int] = mapped_column(BigInteger)
    onchain_amount_sat: Mapped[int] = mapped_column(BigInteger)
    service_fee_sat: Mapped[int] = mapped_column(BigInteger)
    miner_fee_sat: Mapped[int] = mapped_column(BigInteger)  # quoted: the LSP's own on-chain transaction
    payment_hash: Mapped[str] = mapped_column(String(64), unique=True)
    preimage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    invoice: Mapped[str] = mapped_column(Text)  # the client's (submarine) or the LSP's hold invoice (reverse)
    lsp_pubkey: Mapped[str] = mapped_column(String(66))
    client_pubkey: Mapped[str] = mapped_column(String(66))
    timeout_height: Mapped[int] = mapped_column(Integer)
    created_height: Mapped[int] = mapped_column(Integer)
    confirmations: Mapped[int] = mapped_column(Integer)
    witness_script: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(String(100))
    script_pubkey: Mapped[str] = mapped_column(String(68), index=True)
    lockup_txid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lockup_vout: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lockup_value_sat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lockup_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lockup_tx_hex: Mapped[str | None] = mapped_column(Text, nullable=True)
    spend_txid: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the claim or refund
    spend_tx_hex: Mapped[str | None] = mapped_column(Text, nullable=True)
    spend_fee_sat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    payment_fee_sat: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SwapEvent(Base):
    """Every state change of a swap, in order (the audit trail and what webhooks were built from)."""

    __tablename__ = "swap_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    swap_id: Mapped[str] = mapped_column(ForeignKey("swaps.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
