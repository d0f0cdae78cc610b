"""Liquidity: the published rate card and expiring reservations (the seed's JIT LiquidityRequest).

A reservation sets aside ``amount`` sats of the LSP's outbound channel balance
for ``duration`` ms at the LSP's liquidity fee rate (refused if above the
client's ``maxFeeRate``). Fee = reservation fee + amount * rate, debited from
the client's ledger. Reservations expire by time; expired ones stop counting
against the available liquidity.

**Reserved liquidity is spendable** (the seed's ``sendPayment({invoice, reservationId})``).
The *outbound book* keeps the promise:

* A payment naming a reservation draws on it: its amount + max fee must fit in what remains
  (``amount - used``), and is counted as used while in flight; once final, the unused fee
  (or everything, if it failed) goes back to the reservation, as it goes back to the ledger.
* Every other client payment must leave the reservations whole: it needs
  ``spendable outbound - reservations' remainder - unreserved payments in flight`` to cover its
  amount + max fee (checked only while some reservation has something left, so an LSP without
  reservations asks LND nothing more per payment).
* A new reservation must fit in the same free outbound.

Spendable outbound is the sum over the LSP node's *active* channels of local balance minus the
channel reserve (LND's ListChannels). In-flight HTLCs are already out of the local balance, and
payments recorded in flight are subtracted again: while a payment is in flight the book counts
it twice, so it errs towards refusing, never towards breaking a reservation. The book and every
check against it run under one lock (``lock_book``) in the transaction that records the change,
so two clients cannot both take the last free sats. What the book cannot see: HTLCs the node
forwards for others, channels closing, and the LSP's own outgoing flows (reverse swaps,
rebalances). A reservation is a promise about the node's total; one payment is still limited
by what a route (or its parts) can carry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from lsp.compliance import audit
from lsp.config import Settings
from lsp.db.base import utcnow
from lsp.db.models import LiquidityReservation, Payment
from lsp.errors import Conflict, InsufficientFunds, InsufficientLiquidity, NotFound, ValidationFailed
from lsp.schemas import CamelModel
from lsp.services import ledger

if TYPE_CHECKING:
    from lncore.lnd.client import LndClient


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


# PostgreSQL: a transaction-scoped advisory lock (released at commit or rollback), one key for
# the LSP's outbound book ("lsp-book" in ASCII). SQLite needs none: the transactions that check the
# book write first (the client's lock), so they already hold its one write lock.
_BOOK_LOCK = text("SELECT pg_advisory_xact_lock(7021800117453238123)")


def lock_book(session: Session) -> None:
    """Serialize every check against the outbound book until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_BOOK_LOCK)


def live_reservations(session: Session, *, client_id: str | None = None) -> list[LiquidityReservation]:
    """Active and unexpired, soonest expiry first (the operator's view of the book, or one client's)."""
    q = select(LiquidityReservation).where(
        LiquidityReservation.status == "active", LiquidityReservation.expires_at > utcnow()
    )
    if client_id is not None:
        q = q.where(LiquidityReservation.client_id == client_id)
    return list(session.scalars(q.order_by(LiquidityReservation.expires_at)))


def remaining_total(session: Session) -> int:
    """What the live reservations still guarantee: the sum of amount - used."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(LiquidityReservation.amount_sat - LiquidityReservation.used_sat), 0)).where(
                LiquidityReservation.status == "active", LiquidityReservation.expires_at > utcnow()
            )
        )
        or 0
    )


def in_flight_unreserved(session: Session) -> int:
    """Amount + max fee of the client payments in flight that draw on no reservation."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Payment.amount_sat + Payment.max_fee_sat), 0)).where(
                Payment.status == "in_flight", Payment.reservation_id.is_(None)
            )
        )
        or 0
    )


async def spendable_outbound(lnd: LndClient) -> int:
    """Sats the LSP's node can send now: local balance minus channel reserve, over active channels."""
    return sum(
        max(0, c.local_balance - c.local_constraints.chan_reserve_sat) for c in await lnd.list_channels(active_only=True)
    )


class NeedOutbound(Exception):
    """The check needs the node's spendable outbound, which the caller did not fetch (reservations
    are live); fetch it with ``spendable_outbound`` and run the transaction again."""


def free_outbound(session: Session, outbound_sat: int) -> int:
    """Outbound no reservation and no unreserved payment in flight holds (call under ``lock_book``)."""
    return outbound_sat - remaining_total(session) - in_flight_unreserved(session)


def check_unreserved(session: Session, need_sat: int, outbound_sat: int | None) -> None:
    """An unreserved payment of ``need_sat`` (amount + max fee) must leave every reservation whole."""
    lock_book(session)
    reserved = remaining_total(session)
    if reserved <= 0:
        return
    if outbound_sat is None:
        raise NeedOutbound
    free = outbound_sat - reserved - in_flight_unreserved(session)
    if need_sat > free:
        raise InsufficientLiquidity(
            f"the LSP's outbound liquidity is reserved: {max(free, 0)} sat are free for payments without a "
            f"reservation, this one needs {need_sat} sat (amount + max fee)",
            field="body.invoice",
        )


def _live(session: Session, client_id: str, reservation_id: str) -> LiquidityReservation:
    res = session.get(LiquidityReservation, reservation_id)
    if res is None or res.client_id != client_id:
        raise NotFound(f"no liquidity reservation {reservation_id}", field="body.reservationId")
    if res.status != "active" or res.expires_at <= utcnow():
        raise Conflict(
            f"liquidity reservation {reservation_id} expired at {res.expires_at.isoformat()}",
            field="body.reservationId",
        )
    return res


def check_reservation(session: Session, client_id: str, reservation_id: str) -> None:
    """The client's own, live reservation (404 for an unknown or foreign one, 409 once expired)."""
    _live(session, client_id, reservation_id)


def draw(session: Session, client_id: str, reservation_id: str, need_sat: int) -> None:
    """Count ``need_sat`` (amount + max fee) as used on the client's reservation, if it fits (the
    caller holds the client's lock: only the client's own payments draw on it)."""
    res = _live(session, client_id, reservation_id)
    left = res.amount_sat - res.used_sat
    if need_sat > left:
        raise InsufficientLiquidity(
            f"liquidity reservation {reservation_id} has {left} sat left; this payment needs {need_sat} sat "
            "(amount + max fee)",
            field="body.reservationId",
        )
    session.execute(
        update(LiquidityReservation)
        .where(LiquidityReservation.id == reservation_id)
        .values(used_sat=LiquidityReservation.used_sat + need_sat)
    )


def give_back(session: Session, reservation_id: str, sat: int) -> None:
    """A finished payment's unused part back to its reservation (the unused fee, or all of it)."""
    session.execute(
        update(LiquidityReservation)
        .where(LiquidityReservation.id == reservation_id)
        .values(used_sat=LiquidityReservation.used_sat - sat)
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
    balance = ledger.lock_client(session, client_id)
    fee = reservation_fee(settings, amount_sat)
    if balance < fee:
        raise InsufficientFunds(f"balance {balance} sat cannot cover the reservation fee {fee} sat", field="body.amount")
    lock_book(session)
    expire_due(session)
    active = session.scalar(
        select(func.count()).select_from(LiquidityReservation).where(LiquidityReservation.status == "active")
    )
    if (active or 0) >= settings.max_liquidity_requests:
        raise Conflict(f"the LSP has {active} active reservations, its maximum; try again later")
    available = free_outbound(session, outbound_sat)
    if amount_sat > available:
        raise InsufficientLiquidity(
            f"only {max(available, 0)} sat of outbound liquidity is free (not reserved, not in flight)",
            field="body.amount",
        )
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
