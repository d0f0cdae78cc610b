"""Payments left in flight by a request that lost LND are settled by the stale-payment loop,
not only at the next restart. Real database; LND is a fake (pure logic: what LND answers)."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from lncore.lnd.types import PaymentOutcome
from lsp.db.base import session_scope, utcnow
from lsp.db.models import Payment
from lsp.errors import LndError, LndUnavailable
from lsp.services import ledger, payments
from tests.unit.lsp.conftest import Creds

pytestmark = pytest.mark.unit


class FakeLnd:
    """A fake of the one call ``settle_stale`` makes (TrackPaymentV2): answers per payment hash."""

    def __init__(self, answers: dict[str, PaymentOutcome | Exception]):
        self.answers = answers
        self.asked: list[str] = []

    async def track_payment(self, payment_hash: str, *, timeout_s: float | None = None) -> PaymentOutcome:
        self.asked.append(payment_hash)
        answer = self.answers[payment_hash]
        if isinstance(answer, Exception):
            raise answer
        return answer


def h(tag: str) -> str:
    return hashlib.sha256(tag.encode()).hexdigest()


def test_stale_in_flight_payments_are_settled_and_refunded(api: TestClient, creds: Creds) -> None:
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    old = utcnow() - timedelta(seconds=ctx.settings.payment_timeout / 1000 + payments.STALE_MARGIN_S + 5)
    with session_scope(ctx.sessions) as s:
        ledger.record(s, creds.client_id, 100_000, "adjustment", "test deposit")
        for tag, created in (("won", old), ("lost", old), ("never", old), ("busy", old), ("fresh", utcnow())):
            p = Payment(
                client_id=creds.client_id,
                idempotency_key=tag,
                payment_hash=h(tag),
                payment_request=f"lnbcrt{tag}",
                amount_sat=1_000,
                max_fee_sat=10,
                created_at=created,
            )
            s.add(p)
            s.flush()
            ledger.record(s, creds.client_id, -1_010, "payment_reserve", f"payment:{p.id}")
    lnd = FakeLnd(
        {
            h("won"): PaymentOutcome(h("won"), "SUCCEEDED", 3, 3_000, 1_000, "ab" * 32, None),
            h("lost"): PaymentOutcome(h("lost"), "FAILED", 0, 0, 1_000, None, "FAILURE_REASON_NO_ROUTE"),
            h("never"): LndError("payment isn't initiated", grpc_code="NOT_FOUND", rpc="TrackPaymentV2"),
            h("busy"): LndUnavailable("deadline exceeded", grpc_code="DEADLINE_EXCEEDED", rpc="TrackPaymentV2"),
        }
    )
    finals: list[str] = []

    n = asyncio.run(
        payments.settle_stale(lnd, ctx.sessions, ctx.settings, on_final=lambda p: finals.append(p.idempotency_key))  # type: ignore[arg-type]
    )

    assert n == 3 and sorted(finals) == ["lost", "never", "won"]
    assert h("fresh") not in lnd.asked  # within its timeout: its own request still follows it
    with session_scope(ctx.sessions) as s:
        status = {p.idempotency_key: (p.status, p.fee_sat, p.failure_reason) for p in s.query(Payment)}
        balance = ledger.balance(s, creds.client_id)
    assert status["won"] == ("succeeded", 3, None)
    assert status["lost"] == ("failed", 0, "FAILURE_REASON_NO_ROUTE")
    assert status["never"][0] == "failed" and status["never"][2] == "LND never started this payment"
    assert status["busy"][0] == "in_flight" and status["fresh"][0] == "in_flight"
    # 100k - (1000 + 3 fee) for the one that paid; the two failures refunded; two still reserved.
    assert balance == 100_000 - 1_003 - 2 * 1_010


class FakeRestartingLnd:
    """A fake of an LND going down mid-payment and coming back: the payment stream ends with
    "router shutting down", the first TrackPaymentV2 meets "macaroon store is locked" (the node is
    starting), the next finds the payment succeeded."""

    def __init__(self, outcome: PaymentOutcome):
        self.outcome = outcome
        self.tracks = 0

    async def send_payment_v2(self, payment_request: str, **kw: object) -> PaymentOutcome:
        raise LndError("routerrpc server shutting down", grpc_code="UNKNOWN", rpc="SendPaymentV2")

    async def track_payment(self, payment_hash: str, *, timeout_s: float | None = None) -> PaymentOutcome:
        self.tracks += 1
        if self.tracks == 1:
            raise LndError("cannot retrieve macaroon: macaroon store is locked", grpc_code="UNKNOWN",
                           rpc="TrackPaymentV2")
        return self.outcome


def test_a_payment_whose_lnd_restarts_mid_flight_is_tracked_to_its_end_without_waiting_for_the_stale_loop(
    api: TestClient, creds: Creds
) -> None:
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    with session_scope(ctx.sessions) as s:
        ledger.record(s, creds.client_id, 100_000, "adjustment", "test deposit")
        p = Payment(client_id=creds.client_id, idempotency_key="restart", payment_hash=h("restart"),
                    payment_request="lnbcrtrestart", amount_sat=1_000, max_fee_sat=10)
        s.add(p)
        s.flush()
        ledger.record(s, creds.client_id, -1_010, "payment_reserve", f"payment:{p.id}")
        s.expunge(p)
    lnd = FakeRestartingLnd(PaymentOutcome(h("restart"), "SUCCEEDED", 2, 2_000, 1_000, "cd" * 32, None))
    finals: list[str] = []

    async def run() -> None:
        with pytest.raises(LndError):
            await payments.execute(lnd, ctx.sessions, ctx.settings, p, timeout_s=60,  # type: ignore[arg-type]
                                   on_final=lambda q: finals.append(q.status))
        for _ in range(100):  # the tracker retries after 0.5 s
            if finals:
                return
            await asyncio.sleep(0.05)

    asyncio.run(run())
    assert finals == ["succeeded"] and lnd.tracks == 2
    with session_scope(ctx.sessions) as s:
        assert s.get(Payment, p.id).status == "succeeded"  # type: ignore[union-attr]
        assert ledger.balance(s, creds.client_id) == 100_000 - 1_002
