"""Compliance tables: KYC profiles, monitoring alerts, the hash-chained audit log (issue 9)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lsp.db.base import Base, BigIntPK, UTCDateTime, utcnow


class KycProfile(Base):
    """A client's verification state and tier. fields: JSON object of what the client supplied."""

    __tablename__ = "kyc_profiles"

    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending | approved | rejected | suspended
    tier: Mapped[str] = mapped_column(String(32))
    fields: Mapped[str] = mapped_column(Text, default="{}")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ComplianceAlert(Base):
    """A monitoring rule hit. status: open -> reviewing -> escalated -> closed (with a reason)."""

    __tablename__ = "compliance_alerts"
    __table_args__ = (Index("ix_compliance_alerts_rule_client", "rule", "client_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)  # JSON: the transactions and figures that triggered it
    # When the newest matching transaction happened: a window rule extends an alert instead of repeating it.
    last_event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    """One state-changing action. hash = sha256(prev_hash + canonical entry); never updated or deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[str] = mapped_column(String(40))  # ISO-8601 UTC text: hashed exactly as stored
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128))
    before: Mapped[str | None] = mapped_column(Text, nullable=True)
    after: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest (seq, hash): appends lock this row, and verify catches a truncated tail."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class ChannelBreach(Base):
    """A revoked commitment broadcast against one of the LSP's channels (LND closed it as
    BREACH_CLOSE), recorded once: the alert, audit entry and events are raised when this row is."""

    __tablename__ = "channel_breaches"

    channel_point: Mapped[str] = mapped_column(String(80), primary_key=True)
    client_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # whose channel, if a client's
    remote_pubkey: Mapped[str] = mapped_column(String(66))
    breach_txid: Mapped[str] = mapped_column(String(64))
    capacity_sat: Mapped[int] = mapped_column(BigInteger)
    settled_balance_sat: Mapped[int] = mapped_column(BigInteger)  # what LND recovered to its wallet
    close_height: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
