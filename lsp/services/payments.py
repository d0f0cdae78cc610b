"""Outgoing payments: idempotent, balance-checked, tracked to a final state, resumable.

Flow of ``start``: (1) the invoice is decoded by LND; (2) under the client's row lock, an
existing payment with the same client Idempotency-Key is returned as is (a retry never pays
twice; a different invoice under the same key is a 409; a retry LND cannot decode any more still
gets its payment), then the balance must cover amount + max fee, which is reserved on the
ledger; (3) the row is committed as in_flight *before* LND is asked to pay.
``execute`` then streams SendPaymentV2 to the final state and settles the
ledger: the unused fee reserve (or everything, on failure) is refunded.
If the LSP dies in between, ``resume_in_flight`` asks LND (TrackPaymentV2)
what became of every in_flight payment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from lncore.lnd.client import LndClient
from lncore.lnd.types import PaymentOutcome
from lsp import faults
from lsp.compliance import audit
from lsp.config import Settings
from lsp.db.base import off_loop, session_scope, utcnow
from lsp.db.models import Payment, new_id
from lsp.errors import Conflict, InsufficientFunds, LndError, LndUnavailable, NotFound, ValidationFailed
from lsp.faults import crash_point
from lsp.services import ledger, liquidity
from lsp.services.events import payment_data

if TYPE_CHECKING:
    from lsp.routing.executor import McfExecutor

log = logging.getLogger("lsp.payments")


def default_max_fee(settings: Settings, amount_sat: int) -> int:
    # 1 sat base + the routing fee rate * MAX_ROUTING_ATTEMPTS of headroom, at least 10 sat.
    return max(
        10,
        1 + -(-amount_sat * round(settings.routing_fee_rate * 1_000_000) * settings.max_routing_attempts // 1_000_000),
    )


_payments = cast(Table, Payment.__table__)
# The payment path's statements, on the table and built once (Core): a payment runs each of them,
# and ORM loading and unit-of-work flushes cost several times the statements (`lab bench lsp`).
# One query for both questions: is this key known, is this invoice already being paid?
_SAME = select(_payments.c.id, _payments.c.idempotency_key, _payments.c.payment_request, _payments.c.status).where(
    _payments.c.client_id == bindparam("client_id"),
    or_(
        _payments.c.idempotency_key == bindparam("key"),
        and_(_payments.c.payment_hash == bindparam("payment_hash"), _payments.c.status.in_(("in_flight", "succeeded"))),
    ),
)
_INSERT = insert(_payments)
_FINISH = (
    update(_payments)
    .where(_payments.c.id == bindparam("payment_id"), _payments.c.status == "in_flight")
    .values(
        status=bindparam("new_status"),
        fee_sat=bindparam("new_fee_sat"),
        preimage=bindparam("new_preimage"),
        failure_reason=bindparam("new_failure_reason"),
        completed_at=bindparam("new_completed_at"),
    )
    .returning(*_payments.c)
)


def find_by_key(session: Session, client_id: str, key: str) -> Payment | None:
    # (Not on a first attempt's path: only when LND cannot decode a retry's invoice.)
    return session.scalars(
        select(Payment).where(Payment.client_id == client_id, Payment.idempotency_key == key)
    ).first()


def _find_retry(
    sessions: sessionmaker[Session], client_id: str, key: str | None, payment_request: str
) -> Payment | None:
    """The payment recorded under this Idempotency-Key, if any (a different invoice is a 409)."""
    if not key:
        return None
    with session_scope(sessions) as s:
        existing = find_by_key(s, client_id, key)
    if existing is not None and existing.payment_request != payment_request:
        raise Conflict("Idempotency-Key was already used for a different invoice", field="Idempotency-Key")
    return existing


async def start(
    lnd: LndClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    client_id: str,
    *,
    payment_request: str,
    idempotency_key: str | None,
    max_fee_sat: int | None,
    guard: Callable[[Session, int, str], None] | None = None,
    on_created: Callable[[Session, Payment], object] | None = None,
    first: Callable[[Session], None] | None = None,
    reservation_id: str | None = None,
) -> tuple[Payment, bool]:
    """Record the payment (or find the earlier one); returns (payment, created).

    ``reservation_id``: the client's liquidity reservation the payment draws on; without one, the
    payment must leave the live reservations whole (``lsp.services.liquidity``: the outbound book).

    ``first(session)`` runs first in the recording transaction (the API spends the request's
    nonce there).
    ``guard(session, amount_sat, destination)`` runs under the client's lock before the
    balance check and may refuse the payment (compliance limits: issue 9).
    ``on_created(session, payment)`` runs in the same transaction once a new payment is
    recorded (the audit entry: it commits with the payment or not at all)."""
    try:
        decoded = await lnd.decode_pay_req(payment_request)
    except LndError as exc:
        # A retry of a payment already recorded gets its answer even when LND cannot decode now
        # (down, or the invoice is no longer valid); otherwise the retry is found under the lock
        # in ``record_new``, so a first attempt costs no lookup of its own.
        existing = await asyncio.to_thread(_find_retry, sessions, client_id, idempotency_key, payment_request)
        if existing is not None:
            return existing, False
        if isinstance(exc, LndUnavailable):
            raise
        raise ValidationFailed(f"invalid invoice: {exc.message}", field="body.invoice") from None
    amount = int(decoded.num_satoshis)
    if amount <= 0:
        raise ValidationFailed(
            "amountless invoices are not supported; ask for an invoice with an amount", field="body.invoice"
        )
    max_fee = default_max_fee(settings, amount) if max_fee_sat is None else max_fee_sat

    def record(outbound_sat: int | None) -> tuple[Payment, bool]:
        with session_scope(sessions) as s:
            if first is not None:
                first(s)
            payment, created = record_new(
                s,
                client_id,
                idempotency_key=idempotency_key or decoded.payment_hash,
                payment_hash=decoded.payment_hash,
                payment_request=payment_request,
                amount_sat=amount,
                max_fee_sat=max_fee,
                guard=(lambda sess, amt: guard(sess, amt, decoded.destination)) if guard is not None else None,
                reservation_id=reservation_id,
                outbound_sat=outbound_sat,
            )
            if created and on_created is not None:
                on_created(s, payment)
            return payment, created

    try:
        return await off_loop(sessions, lambda: record(None))
    except liquidity.NeedOutbound:
        # Reservations are live and this payment draws on none: check it against the node's
        # spendable outbound (the first transaction rolled back, nonce and all).
        outbound = await liquidity.spendable_outbound(lnd)
        return await off_loop(sessions, lambda: record(outbound))


def record_new(
    s: Session,
    client_id: str,
    *,
    idempotency_key: str,
    payment_hash: str,
    payment_request: str,
    amount_sat: int,
    max_fee_sat: int,
    guard: Callable[[Session, int], None] | None = None,
    reservation_id: str | None = None,
    outbound_sat: int | None = None,
) -> tuple[Payment, bool]:
    """Under the client's lock: dedupe, check the balance, reserve amount + max fee on the ledger
    and draw it on the reservation named (or check the outbound book: ``outbound_sat`` is the
    node's spendable outbound, needed only while reservations are live). Returns (payment,
    created); a new payment is returned unattached to the session (it is written by a Core
    insert), with every column set."""
    available = ledger.lock_client(s, client_id)
    same = s.execute(_SAME, {"client_id": client_id, "key": idempotency_key, "payment_hash": payment_hash}).all()
    existing = next((row for row in same if row.idempotency_key == idempotency_key), None)
    if existing is not None:  # a retry (possibly racing the original)
        if existing.payment_request != payment_request:
            raise Conflict("Idempotency-Key was already used for a different invoice", field="Idempotency-Key")
        found = s.get(Payment, existing.id)
        assert found is not None
        return found, False
    if same:
        paid = same[0]
        raise Conflict(
            f"this invoice is already {paid.status.replace('_', '-')} (payment {paid.id})", field="body.invoice"
        )
    if reservation_id is not None:
        liquidity.check_reservation(s, client_id, reservation_id)
    if guard is not None:
        guard(s, amount_sat)
    if available < amount_sat + max_fee_sat:
        raise InsufficientFunds(
            f"balance {available} sat cannot cover {amount_sat} sat + max fee {max_fee_sat} sat", field="body.invoice"
        )
    if reservation_id is not None:
        liquidity.draw(s, client_id, reservation_id, amount_sat + max_fee_sat)
    else:
        liquidity.check_unreserved(s, amount_sat + max_fee_sat, outbound_sat)
    payment = Payment(
        id=new_id(),
        client_id=client_id,
        idempotency_key=idempotency_key,
        payment_hash=payment_hash,
        payment_request=payment_request,
        amount_sat=amount_sat,
        max_fee_sat=max_fee_sat,
        fee_sat=0,
        status="in_flight",
        failure_reason=None,
        preimage=None,
        created_at=utcnow(),
        completed_at=None,
        reservation_id=reservation_id,
    )
    s.execute(_INSERT, {c.key: getattr(payment, c.key) for c in _payments.c})
    ledger.record(s, client_id, -(amount_sat + max_fee_sat), "payment_reserve", f"payment:{payment.id}")
    return payment, True


def finish(
    session: Session, payment_id: str, outcome: PaymentOutcome | None, *, failure: str | None = None
) -> Payment | None:
    """Apply the final state once; returns the payment (unattached, as it now is) if this call
    finished it."""
    if outcome is not None and outcome.status not in ("SUCCEEDED", "FAILED"):
        return None  # still in flight
    if outcome is not None and outcome.status == "SUCCEEDED":
        final = {
            "new_status": "succeeded",
            "new_fee_sat": outcome.fee_sat,
            "new_preimage": outcome.preimage,
            "new_failure_reason": None,
        }
    else:
        reason = failure or (outcome.failure_reason if outcome else None) or "unknown"
        final = {"new_status": "failed", "new_fee_sat": 0, "new_preimage": None, "new_failure_reason": reason}
    row = session.execute(_FINISH, {**final, "payment_id": payment_id, "new_completed_at": utcnow()}).first()
    if row is None:  # unknown, or already final
        return None
    p = Payment(**row._mapping)
    # Succeeded: the unused fee reserve back; failed: everything back.
    refund = p.max_fee_sat - p.fee_sat if p.status == "succeeded" else p.amount_sat + p.max_fee_sat
    if refund > 0:
        ledger.record(session, p.client_id, refund, "payment_refund", f"payment:{p.id}")
        if p.reservation_id is not None:  # and back to the reservation it was drawn on
            liquidity.give_back(session, p.reservation_id, refund)
    audit.record_system(session, f"payment.{p.status}", p.client_id, p.payment_hash, payment_data(p))
    return p


async def execute(
    lnd: LndClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    payment: Payment,
    *,
    timeout_s: int,
    on_final: Callable[[Payment], None] | None = None,
    mcf: McfExecutor | None = None,
) -> Payment:
    crash_point("payment.before_lnd")
    try:
        outcome, failure = await _pay(lnd, payment, timeout_s=timeout_s, mcf=mcf)
    except LndError:
        # LND may or may not have the payment: the stream broke, and asking after it failed too,
        # whether as "unavailable" or with an error of a node going down or coming up ("router
        # shutting down", "macaroon store is locked"). It stays in flight and is tracked as soon
        # as LND answers again (not only at the next restart or by the stale-payment loop).
        log.warning("lost LND while paying %s; it stays in flight until tracked", payment.payment_hash)
        track_when_back(lnd, sessions, payment, give_up_after_s=timeout_s + STALE_MARGIN_S, on_final=on_final)
        raise

    if outcome is not None and outcome.status == "SUCCEEDED":
        crash_point("payment.settled_before_ledger")

    def apply() -> tuple[Payment | None, Payment | None]:
        with session_scope(sessions) as s:
            done = finish(s, payment.id, outcome, failure=failure)
            return done, done if done is not None else s.get(Payment, payment.id)

    done, current = await off_loop(sessions, apply)
    if done is not None and on_final is not None:
        on_final(done)
    assert current is not None
    return current


async def _pay(
    lnd: LndClient, payment: Payment, *, timeout_s: int, mcf: McfExecutor | None
) -> tuple[PaymentOutcome | None, str | None]:
    """Pay through LND (or the LSP's own router); (outcome, failure reason) once final."""
    try:
        if mcf is not None:  # strategy "mcf": the LSP's own router (lsp/routing/executor.py)
            pay = await mcf.pay(payment.payment_request, fee_limit_msat=payment.max_fee_sat * 1000, timeout_s=timeout_s)
            return pay.to_outcome(), None
        outcome = await lnd.send_payment_v2(
            payment.payment_request,
            fee_limit_sat=payment.max_fee_sat,
            timeout_s=timeout_s,
            # (in-flight updates cost a message per attempt: asked for only when a drill needs them)
            on_update=_crash_in_flight if faults.armed("payment.in_flight") else None,
        )
        return outcome, None
    except LndUnavailable:
        raise
    except LndError as exc:
        return await _outcome_after_error(lnd, payment.payment_hash, exc)


async def _crash_in_flight(update: PaymentOutcome) -> None:
    if update.status == "IN_FLIGHT":
        crash_point("payment.in_flight")


async def _outcome_after_error(
    lnd: LndClient, payment_hash: str, exc: LndError
) -> tuple[PaymentOutcome | None, str | None]:
    """SendPaymentV2 failed with an error instead of a final update. Unless LND says the invoice was
    already paid (by someone else: that must not count as *this* payment succeeding), ask LND
    whether the payment exists after all -- a stream can break after the HTLC went out."""
    if exc.grpc_code == "ALREADY_EXISTS":
        return None, exc.message
    try:
        return await lnd.track_payment(payment_hash, timeout_s=60), exc.message
    except LndUnavailable:
        raise
    except LndError as track_exc:
        if track_exc.grpc_code == "NOT_FOUND":
            return None, exc.message
        raise


def get_for_client(session: Session, client_id: str, payment_hash: str) -> Payment:
    p = session.scalars(
        select(Payment)
        .where(Payment.client_id == client_id, Payment.payment_hash == payment_hash)
        .order_by(Payment.created_at.desc())
    ).first()
    if p is None:
        raise NotFound(f"no payment with hash {payment_hash}")
    return p


def in_flight(session: Session) -> list[Payment]:
    return list(session.scalars(select(Payment).where(Payment.status == "in_flight")))


STALE_MARGIN_S = 90.0
"""A payment still in flight this long after its timeout lost its request's stream (LND was
unreachable or the stream's deadline passed): the stale-payment loop asks LND about it."""


async def settle_stale(
    lnd: LndClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    on_final: Callable[[Payment], None] | None = None,
    *,
    now: datetime | None = None,
) -> int:
    """Ask LND once (briefly) about every payment in flight past its timeout plus a margin, and
    apply any final answer; a payment LND still has in flight stays so. Returns how many finished."""
    cutoff = (now or utcnow()) - timedelta(seconds=settings.payment_timeout / 1000 + STALE_MARGIN_S)
    with session_scope(sessions) as s:
        stale = [
            (p.id, p.payment_hash)
            for p in s.scalars(select(Payment).where(Payment.status == "in_flight", Payment.created_at < cutoff))
        ]
    finished = 0
    for pid, phash in stale:
        try:
            done = await _track_and_finish(lnd, sessions, pid, phash, timeout_s=5, on_final=on_final)
        except LndUnavailable:
            continue  # LND unreachable, or the payment is still in flight (the stream timed out)
        finished += done is not None
    return finished


async def _track_and_finish(
    lnd: LndClient,
    sessions: sessionmaker[Session],
    payment_id: str,
    payment_hash: str,
    *,
    timeout_s: float | None,
    on_final: Callable[[Payment], None] | None,
) -> Payment | None:
    """Ask LND (TrackPaymentV2) for the payment's outcome and apply it; the payment if this
    finished it. LND never having heard of the payment is a failure (nothing left our node)."""
    try:
        outcome: PaymentOutcome | None = await lnd.track_payment(payment_hash, timeout_s=timeout_s)
        failure = None
    except LndUnavailable:
        raise
    except LndError as exc:
        if exc.grpc_code != "NOT_FOUND":
            raise
        outcome, failure = None, "LND never started this payment"
    with session_scope(sessions) as s:
        done = finish(s, payment_id, outcome, failure=failure)
    if done is not None and on_final is not None:
        on_final(done)
    return done


_trackers: set[asyncio.Task[None]] = set()


def track_when_back(
    lnd: LndClient,
    sessions: sessionmaker[Session],
    payment: Payment,
    *,
    give_up_after_s: float,
    on_final: Callable[[Payment], None] | None,
) -> None:
    """In the background: ask LND (TrackPaymentV2) about ``payment`` until it answers with a final
    state, retrying while LND is down or starting up; after ``give_up_after_s`` the stale-payment
    loop (``settle_stale``) keeps asking."""

    async def run() -> None:
        deadline = time.monotonic() + give_up_after_s
        delay = 0.5
        while True:
            try:
                await _track_and_finish(
                    lnd, sessions, payment.id, payment.payment_hash, timeout_s=None, on_final=on_final
                )
                return
            except LndError as exc:  # down, or "in the process of starting up"
                if time.monotonic() + delay > deadline:
                    log.warning("payment %s: LND still unreachable (%s); left to the stale-payment loop",
                                payment.payment_hash, exc.message)
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    task = asyncio.get_running_loop().create_task(run(), name=f"track-{payment.payment_hash[:12]}")
    _trackers.add(task)
    task.add_done_callback(_trackers.discard)


async def resume_in_flight(
    lnd: LndClient, sessions: sessionmaker[Session], on_final: Callable[[Payment], None] | None = None
) -> int:
    """After a restart: ask LND about each in_flight payment and apply the answer."""
    with session_scope(sessions) as s:
        pending = [(p.id, p.payment_hash) for p in in_flight(s)]
    for pid, phash in pending:
        await _track_and_finish(lnd, sessions, pid, phash, timeout_s=None, on_final=on_final)
    return len(pending)
