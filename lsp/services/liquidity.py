"""Liquidity: the published rate card and expiring reservations (the seed's JIT LiquidityRequest).

A reservation sets aside ``amount`` sats of the LSP's outbound channel balance
for ``duration`` ms at the LSP's liquidity fee rate (refused if above the
client's ``maxFeeRate``). Fee = reservation fee + amount * rate, debited from
the client's ledger. Reservations expire by time; expired ones stop counting
against the available liquidity.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lsp.compliance import audit
from lsp.config import Settings
from lsp.db.base import utcnow
from lsp.db.models import LiquidityReservation
from lsp.errors import Conflict, InsufficientFunds, NotFound, ValidationFailed
from lsp.schemas import CamelModel
from lsp.services import ledger


def fee_rate_ppm(settings: Settings) -> int:
    return round(settings.liquidity_fee_rate * 1_000_000)


def reservation_fee(settings: Settings, amount_sat: int) -> int:
    return settings.liquidity_reservation_fee + -(-amount_sat * fee_rate_ppm(settings) // 1_000_000)


class ChannelOpeningRates(CamelModel):
    base_fee: int = Field(description="sats per channel open")
    capacity_fee: float = Field(description="fraction of the capacity")
    min_channel_size: int
    max_channel_size: int


class LiquidityRates(CamelModel):
    reservation_fee: int = Field(description="sats per reservation")
    utilization_fee: int = Field(description="ppm")
    fee_rate: float = Field(description="fraction of the reserved amount")
    max_duration: int = Field(description="milliseconds")
    jit_channel_enabled: bool


class RoutingRates(CamelModel):
    base_fee: int = Field(description="msat")
    fee_rate: int = Field(description="ppm")


class RatesView(CamelModel):
    channel_opening: ChannelOpeningRates
    liquidity: LiquidityRates
    routing: RoutingRates


def rates(settings: Settings) -> RatesView:
    return RatesView(
        channel_opening=ChannelOpeningRates(
            base_fee=settings.channel_base_fee,
            capacity_fee=settings.channel_fee_rate,
            min_channel_size=settings.min_channel_size,
            max_channel_size=settings.max_channel_size,
        ),
        liquidity=LiquidityRates(
            reservation_fee=settings.liquidity_reservation_fee,
            utilization_fee=fee_rate_ppm(settings),
            fee_rate=settings.liquidity_fee_rate,
            max_duration=settings.max_liquidity_duration,
            jit_channel_enabled=settings.jit_channel_enabled,
        ),
        routing=RoutingRates(base_fee=1000, fee_rate=round(settings.routing_fee_rate * 1_000_000)),
    )


def expire_due(session: Session) -> int:
    """Expire reservations past their time; each expiry is in the audit trail (a system action)."""
    due = list(
        session.scalars(
            select(LiquidityReservation)
            .where(LiquidityReservation.status == "active", LiquidityReservation.expires_at <= utcnow())
            .with_for_update()
        )
    )
    for r in due:
        r.status = "expired"
    if due:
        audit.record_many(
            session,
            [
                {
                    "actor": "system",
                    "action": "liquidity.expire",
                    "target": f"client:{r.client_id}/reservation:{r.id}",
                    "before": {"status": "active"},
                    "after": {"status": "expired", "amountSat": r.amount_sat},
                    "request_id": "",
                }
                for r in due
            ],
        )
    return len(due)


def reserved_total(session: Session) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(LiquidityReservation.amount_sat), 0)).where(
                LiquidityReservation.status == "active", LiquidityReservation.expires_at > utcnow()
            )
        )
        or 0
    )


def validate_request(settings: Settings, amount_sat: int, duration_ms: int, max_fee_rate_ppm: int) -> int:
    """Checks that need no LND; returns the fee rate (ppm) the reservation would get."""
    if duration_ms > settings.max_liquidity_duration:
        raise ValidationFailed(
            f"duration {duration_ms} ms is longer than the maximum {settings.max_liquidity_duration} ms",
            field="body.duration",
        )
    ppm = fee_rate_ppm(settings)
    if ppm > max_fee_rate_ppm:
        raise ValidationFailed(
            f"the LSP's liquidity fee rate is {ppm} ppm, above your maxFeeRate {max_fee_rate_ppm}",
            field="body.maxFeeRate",
        )
    if amount_sat > settings.max_channel_size:
        raise ValidationFailed(
            f"amount {amount_sat} is above the maximum {settings.max_channel_size} sat", field="body.amount"
        )
    return ppm


def reserve(
    session: Session,
    settings: Settings,
    client_id: str,
    *,
    amount_sat: int,
    duration_ms: int,
    max_fee_rate_ppm: int,
    outbound_sat: int,
) -> LiquidityReservation:
    ppm = validate_request(settings, amount_sat, duration_ms, max_fee_rate_ppm)
    ledger.lock_client(session, client_id)
    expire_due(session)
    active = session.scalar(
        select(func.count()).select_from(LiquidityReservation).where(LiquidityReservation.status == "active")
    )
    if (active or 0) >= settings.max_liquidity_requests:
        raise Conflict(f"the LSP has {active} active reservations, its maximum; try again later")
    available = outbound_sat - reserved_total(session)
    if amount_sat > available:
        raise InsufficientFunds(f"only {max(available, 0)} sat of outbound liquidity is available", field="body.amount")
    fee = reservation_fee(settings, amount_sat)
    res = LiquidityReservation(
        client_id=client_id,
        amount_sat=amount_sat,
        fee_rate_ppm=ppm,
        fee_sat=fee,
        expires_at=utcnow() + timedelta(milliseconds=duration_ms),
    )
    session.add(res)
    session.flush()
    ledger.record(session, client_id, -fee, "liquidity_fee", f"reservation:{res.id}")
    return res


def get_for_client(session: Session, client_id: str, reservation_id: str) -> LiquidityReservation:
    expire_due(session)
    res = session.get(LiquidityReservation, reservation_id)
    if res is None or res.client_id != client_id:
        raise NotFound(f"no liquidity reservation {reservation_id}")
    return res
