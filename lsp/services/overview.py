"""A client's own dashboard (``GET /api/enterprise/dashboard``): balance, channels, volume, fees,
live reservations and recent activity, all read from the client's rows in one transaction.

Periods are UTC, as the KYC limits count them: "today" from midnight, "month" from the 1st.
Volume counts what *moved*: payments that succeeded (sent) and invoices that settled (received).
Fees are what the client paid the network and the LSP, net of refunds, from the payments and the
ledger; ``remainingMonthlyVolume`` is what the tighter of the KYC tier's and the contract's monthly
limits still allows (the volume they count: payments in flight or sent, and swaps).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lsp.compliance import kyc
from lsp.config import Settings
from lsp.db.base import utcnow
from lsp.db.models import Channel, Client, Invoice, LiquidityReservation, Payment
from lsp.schemas import CamelModel
from lsp.services import ledger, liquidity

RECENT = 20


class ChannelSummary(CamelModel):
    by_status: dict[str, int] = Field(description="how many of your channels are in each status")
    open_capacity: int = Field(description="sats, your open channels' capacity")


class Volume(CamelModel):
    payments_sent: int = Field(description="succeeded payments")
    sent: int = Field(description="sats those payments delivered (without fees)")
    routing_fees: int = Field(description="sats of routing fees they paid")
    invoices_settled: int
    received: int = Field(description="sats your settled invoices brought in")


class VolumeView(CamelModel):
    today: Volume
    month: Volume
    remaining_monthly_volume: int | None = Field(
        description="sats this month's limits (your KYC tier's and your contract's) still allow (null: no cap)"
    )


class FeesView(CamelModel):
    """All time, in sats, net of refunds."""

    routing: int = Field(description="routing fees your payments paid")
    channel_opening: int
    liquidity: int = Field(description="liquidity reservation fees")
    rebalance: int
    total: int


class ReservationSummary(CamelModel):
    reservation_id: str
    amount: int
    used: int
    remaining: int
    expires_at: datetime


class Activity(CamelModel):
    at: datetime
    kind: str = Field(description="payment | invoice | channel | reservation")
    id: str
    status: str
    amount: int = Field(description="sats: the payment's, the invoice's paid amount, the channel's capacity, ...")


class ClientDashboard(CamelModel):
    client_id: str
    name: str
    generated_at: datetime
    balance: int = Field(description="sats you hold at the LSP")
    balance_by_kind: dict[str, int] = Field(description="the ledger's sum per entry kind")
    channels: ChannelSummary
    volume: VolumeView
    fees: FeesView
    reservations: list[ReservationSummary] = Field(description="live liquidity reservations, soonest expiry first")
    in_flight_payments: int
    recent: list[Activity] = Field(description=f"your latest {RECENT} payments, invoices, channels and reservations")


def _volume(session: Session, client_id: str, since: datetime) -> Volume:
    sent = session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount_sat), 0), func.coalesce(func.sum(Payment.fee_sat), 0))
        .where(Payment.client_id == client_id, Payment.status == "succeeded", Payment.created_at >= since)
    ).one()
    got = session.execute(
        select(func.count(), func.coalesce(func.sum(Invoice.amount_paid_sat), 0)).where(
            Invoice.client_id == client_id, Invoice.status == "settled", Invoice.settled_at >= since
        )
    ).one()
    return Volume(
        payments_sent=int(sent[0]),
        sent=int(sent[1]),
        routing_fees=int(sent[2]),
        invoices_settled=int(got[0]),
        received=int(got[1]),
    )


def _recent(session: Session, client_id: str) -> list[Activity]:
    items: list[Activity] = []
    for p in session.scalars(
        select(Payment).where(Payment.client_id == client_id).order_by(Payment.created_at.desc()).limit(RECENT)
    ):
        items.append(Activity(at=p.completed_at or p.created_at, kind="payment", id=p.payment_hash, status=p.status,
                              amount=p.amount_sat))
    for i in session.scalars(
        select(Invoice).where(Invoice.client_id == client_id).order_by(Invoice.created_at.desc()).limit(RECENT)
    ):
        items.append(Activity(at=i.settled_at or i.created_at, kind="invoice", id=i.id, status=i.status,
                              amount=i.amount_paid_sat or i.amount_sat))
    for c in session.scalars(
        select(Channel).where(Channel.client_id == client_id).order_by(Channel.updated_at.desc()).limit(RECENT)
    ):
        items.append(Activity(at=c.updated_at, kind="channel", id=c.id, status=c.status, amount=c.capacity_sat))
    for r in session.scalars(
        select(LiquidityReservation)
        .where(LiquidityReservation.client_id == client_id)
        .order_by(LiquidityReservation.created_at.desc())
        .limit(RECENT)
    ):
        items.append(Activity(at=r.created_at, kind="reservation", id=r.id, status=r.status, amount=r.amount_sat))
    items.sort(key=lambda a: a.at, reverse=True)
    return items[:RECENT]


def client_dashboard(session: Session, settings: Settings, client: Client, now: datetime | None = None) -> ClientDashboard:
    now = now or utcnow()
    day, month = kyc.period_starts(now)
    by_kind = ledger.breakdown(session, client.id)
    statuses: dict[str, Any] = dict(
        session.execute(
            select(Channel.status, func.count()).where(Channel.client_id == client.id).group_by(Channel.status)
        ).all()
    )
    open_capacity = session.scalar(
        select(func.coalesce(func.sum(Channel.capacity_sat), 0)).where(
            Channel.client_id == client.id, Channel.status == "open"
        )
    )
    routing = session.scalar(
        select(func.coalesce(func.sum(Payment.fee_sat), 0)).where(
            Payment.client_id == client.id, Payment.status == "succeeded"
        )
    )
    paid = {
        "routing": int(routing or 0),
        "channel_opening": -(by_kind.get("channel_opening_fee", 0) + by_kind.get("channel_opening_refund", 0)),
        "liquidity": -by_kind.get("liquidity_fee", 0),
        "rebalance": -by_kind.get("rebalance_fee", 0),
    }
    fees = FeesView(**paid, total=sum(paid.values()))
    usage = kyc.usage(session, client.id, now)
    tier = kyc.policy_of(settings).tier(kyc.get_profile(session, settings, client.id).tier)
    caps = [c for c in (tier.monthly_volume_sat, client.monthly_volume_sat) if c]  # the KYC tier's, the contract's
    in_flight = session.scalar(
        select(func.count()).select_from(Payment).where(Payment.client_id == client.id, Payment.status == "in_flight")
    )
    return ClientDashboard(
        client_id=client.id,
        name=client.name,
        generated_at=now,
        balance=ledger.balance(session, client.id),
        balance_by_kind=by_kind,
        channels=ChannelSummary(by_status={str(k): int(v) for k, v in statuses.items()}, open_capacity=int(open_capacity or 0)),
        volume=VolumeView(
            today=_volume(session, client.id, day),
            month=_volume(session, client.id, month),
            remaining_monthly_volume=max(0, min(caps) - usage.month_sat) if caps else None,
        ),
        fees=fees,
        reservations=[
            ReservationSummary(
                reservation_id=r.id,
                amount=r.amount_sat,
                used=r.used_sat,
                remaining=r.amount_sat - r.used_sat,
                expires_at=r.expires_at,
            )
            for r in liquidity.live_reservations(session, client_id=client.id)
        ],
        in_flight_payments=int(in_flight or 0),
        recent=_recent(session, client.id),
    )
