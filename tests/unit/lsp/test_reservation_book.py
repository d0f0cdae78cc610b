"""Reserved liquidity is spendable, and the outbound book keeps every reservation whole.

Service level on SQLite and PostgreSQL (the HTTP face and LND are in
tests/lab/lsp/test_lsp_live_reservations.py). Expected sums are the spec's: a payment holds
amount + max fee while in flight, amount + fee once paid; the free outbound is the node's
spendable outbound minus what reservations have left and unreserved payments in flight hold.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from lncore.lnd.types import PaymentOutcome
from lsp.client import LSPClient
from lsp.db.base import session_scope, utcnow
from lsp.db.models import LiquidityReservation
from lsp.errors import Conflict, InsufficientFunds, InsufficientLiquidity, NotFound
from lsp.services import liquidity, payments
from tests.unit.lsp.conftest import Creds, onboard
from tests.unit.lsp.test_money import ctx_of, fund

pytestmark = pytest.mark.unit

OUTBOUND = 1_000_000  # the node's spendable outbound, as the API would have read it from LND


def reserve(api: TestClient, client_id: str, amount: int, *, duration_ms: int = 3_600_000, outbound: int = OUTBOUND):
    ctx = ctx_of(api)
    with session_scope(ctx.sessions) as s:
        return liquidity.reserve(
            s, ctx.settings, client_id, amount_sat=amount, duration_ms=duration_ms, max_fee_rate_ppm=10_000,
            outbound_sat=outbound,
        )


def pay(api: TestClient, client_id: str, tag: str, amount: int, max_fee: int, *, reservation: str | None = None,
        outbound: int | None = OUTBOUND):
    with session_scope(ctx_of(api).sessions) as s:
        p, created = payments.record_new(
            s,
            client_id,
            idempotency_key=tag,
            payment_hash=tag.encode().hex().ljust(64, "0")[:64],
            payment_request=f"lnbcrt{tag}",
            amount_sat=amount,
            max_fee_sat=max_fee,
            reservation_id=reservation,
            outbound_sat=outbound,
        )
    assert created
    return p


def finish(api: TestClient, payment_id: str, status: str, amount: int, fee: int = 0) -> None:
    outcome = PaymentOutcome(
        "00" * 32, status, fee_sat=fee, fee_msat=fee * 1000, value_sat=amount,
        preimage="bb" * 32 if status == "SUCCEEDED" else None,
        failure_reason=None if status == "SUCCEEDED" else "FAILURE_REASON_NO_ROUTE",
    )
    with session_scope(ctx_of(api).sessions) as s:
        assert payments.finish(s, payment_id, outcome) is not None


def test_without_live_reservations_a_payment_needs_no_outbound_reading(api: TestClient, creds: Creds) -> None:
    fund(api, creds.client_id, 50_000)
    assert pay(api, creds.client_id, "p1", 10_000, 10, outbound=None).status == "in_flight"


def test_other_clients_cannot_eat_into_a_reservation(api: TestClient, creds: Creds) -> None:
    fund(api, creds.client_id, 100_000)
    other = onboard(api, "other")
    fund(api, other.client_id, 900_000, tag="fund-other")
    res = reserve(api, creds.client_id, 600_000)
    # Reservations are live: the check needs the node's outbound, which the caller did not read.
    with pytest.raises(liquidity.NeedOutbound):
        pay(api, other.client_id, "o0", 1_000, 10, outbound=None)
    pay(api, other.client_id, "o1", 300_000, 10)  # 400,000 free
    with pytest.raises(InsufficientLiquidity) as exc:  # 1,000,000 - 600,000 - 300,010 = 99,990 free
        pay(api, other.client_id, "o2", 100_000, 10)
    assert exc.value.field == "body.invoice" and exc.value.code == "insufficient_liquidity"
    assert "99990 sat are free" in exc.value.message
    pay(api, other.client_id, "o3", 99_980, 10)  # exactly what is free
    # The reservation's owner still gets all of it.
    assert pay(api, creds.client_id, "c1", 90_000, 10, reservation=res.id).reservation_id == res.id


def test_a_payment_draws_on_its_reservation_and_gets_back_what_it_did_not_use(
    api: TestClient, lsp: LSPClient, creds: Creds
) -> None:
    fund(api, creds.client_id, 900_000)
    res = reserve(api, creds.client_id, 500_000)
    p1 = pay(api, creds.client_id, "r1", 200_000, 50, reservation=res.id)
    view = lsp.get_reservation(res.id)
    assert (view["used"], view["remaining"]) == (200_050, 299_950)  # amount + max fee while in flight
    finish(api, p1.id, "SUCCEEDED", 200_000, fee=7)
    assert (lsp.get_reservation(res.id)["used"], lsp.get_reservation(res.id)["remaining"]) == (200_007, 299_993)
    p2 = pay(api, creds.client_id, "r2", 100_000, 20, reservation=res.id)
    finish(api, p2.id, "FAILED", 100_000)  # a failed payment used nothing
    assert lsp.get_reservation(res.id)["used"] == 200_007
    with pytest.raises(InsufficientLiquidity) as exc:
        pay(api, creds.client_id, "r3", 299_990, 10, reservation=res.id)  # 300,000 > 299,993 left
    assert exc.value.field == "body.reservationId" and "299993 sat left" in exc.value.message
    pay(api, creds.client_id, "r4", 299_983, 10, reservation=res.id)  # all that is left
    assert lsp.get_reservation(res.id)["remaining"] == 0


def test_foreign_unknown_and_expired_reservations_are_refused(api: TestClient, creds: Creds) -> None:
    fund(api, creds.client_id, 100_000)
    other = onboard(api, "other")
    fund(api, other.client_id, 100_000, tag="fund-other")
    res = reserve(api, creds.client_id, 50_000)
    for who, rid in ((other.client_id, res.id), (creds.client_id, "f" * 32)):
        with pytest.raises(NotFound) as nf:
            pay(api, who, f"x-{who[:4]}-{rid[:2]}", 1_000, 10, reservation=rid)
        assert nf.value.field == "body.reservationId"
    with session_scope(ctx_of(api).sessions) as s:
        s.execute(
            update(LiquidityReservation)
            .where(LiquidityReservation.id == res.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    with pytest.raises(Conflict) as exc:
        pay(api, creds.client_id, "late", 1_000, 10, reservation=res.id)
    assert exc.value.field == "body.reservationId" and "expired" in exc.value.message


def test_a_new_reservation_must_fit_in_the_free_outbound(api: TestClient, creds: Creds) -> None:
    fund(api, creds.client_id, 900_000)
    reserve(api, creds.client_id, 400_000)
    pay(api, creds.client_id, "inflight", 250_000, 10)  # unreserved, in flight: 250,010 held
    with pytest.raises(InsufficientLiquidity) as exc:  # 1,000,000 - 400,000 - 250,010 = 349,990 free
        reserve(api, creds.client_id, 349_991)
    assert exc.value.field == "body.amount" and "349990 sat" in exc.value.message
    reserve(api, creds.client_id, 349_990)


def test_the_reservation_fee_needs_the_balance(api: TestClient, creds: Creds) -> None:
    fund(api, creds.client_id, 100)
    with pytest.raises(InsufficientFunds) as exc:  # fee: 100 sat + 2000 ppm of 50,000
        reserve(api, creds.client_id, 50_000)
    assert exc.value.field == "body.amount" and "200 sat" in exc.value.message


def test_concurrent_payments_of_many_clients_never_take_more_than_is_free(api: TestClient, creds: Creds) -> None:
    """Different clients hold different row locks: only the book's lock keeps them from all reading
    the same free outbound (PostgreSQL runs them side by side; SQLite one at a time)."""
    fund(api, creds.client_id, 100_000)
    reserve(api, creds.client_id, OUTBOUND - 100_000)  # 100,000 free
    others = [onboard(api, f"racer{i}") for i in range(8)]
    for i, o in enumerate(others):
        fund(api, o.client_id, 50_000, tag=f"fund-racer{i}")
    barrier = threading.Barrier(len(others))

    def attempt(i: int) -> bool:
        barrier.wait()
        try:
            pay(api, others[i].client_id, f"race{i}", 30_000, 10)
        except InsufficientLiquidity:
            return False
        return True

    with ThreadPoolExecutor(len(others)) as pool:
        passed = sum(pool.map(attempt, range(len(others))))
    assert passed == 3  # 3 x 30,010 <= 100,000 < 4 x 30,010
