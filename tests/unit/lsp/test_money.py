"""The client's money: invoice settlement credits once, payments reserve and refund exactly,
balances never go below what is reserved. LND's messages are the real generated protobuf types."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from lncore import stubs
from lncore.lnd.types import PaymentOutcome
from lsp.client import LSPClient
from lsp.db.base import session_scope
from lsp.db.models import Invoice
from lsp.errors import Conflict, InsufficientFunds, LndError, LndUnavailable, ValidationFailed
from lsp.services import invoices, ledger, payments
from tests.unit.lsp.conftest import Creds, onboard

pytestmark = pytest.mark.unit


def ctx_of(api: TestClient):
    return api.app.state.ctx  # type: ignore[attr-defined]


def settled_invoice_from_lnd(payment_hash: str, amount: int):
    ln = stubs.load().ln
    return ln.Invoice(r_hash=bytes.fromhex(payment_hash), amt_paid_sat=amount, state=ln.Invoice.SETTLED)


def add_invoice_row(api: TestClient, client_id: str, amount: int, tag: str) -> Invoice:
    phash = hashlib.sha256(tag.encode()).hexdigest()
    with session_scope(ctx_of(api).sessions) as s:
        inv = Invoice(
            client_id=client_id, payment_hash=phash, payment_request=f"lnbcrt{tag}", amount_sat=amount, expiry_s=3600
        )
        s.add(inv)
    return inv


def fund(api: TestClient, client_id: str, amount: int, tag: str = "fund") -> Invoice:
    inv = add_invoice_row(api, client_id, amount, tag)
    with session_scope(ctx_of(api).sessions) as s:
        assert invoices.apply_update(s, settled_invoice_from_lnd(inv.payment_hash, amount), "SETTLED") is not None
    return inv


def reserve(api: TestClient, client_id: str, key: str, payment_hash: str, invoice: str, amount: int, max_fee: int):
    """Record a new payment (its reserve) as the API would, in a transaction of its own."""
    with session_scope(ctx_of(api).sessions) as s:
        p, created = payments.record_new(
            s,
            client_id,
            idempotency_key=key,
            payment_hash=payment_hash,
            payment_request=invoice,
            amount_sat=amount,
            max_fee_sat=max_fee,
        )
    assert created
    return p


def test_settled_invoice_credits_the_balance_once(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    inv = fund(api, creds.client_id, 50_000)
    # LND's stream can replay the same settlement (e.g. after a reconnect): no double credit.
    with session_scope(ctx_of(api).sessions) as s:
        assert invoices.apply_update(s, settled_invoice_from_lnd(inv.payment_hash, 50_000), "SETTLED") is None
    assert lsp.balance() == {"balance": 50_000, "byKind": {"invoice_settled": 50_000}}
    view = lsp.get_invoice(inv.id)
    assert (view["status"], view["amountPaid"]) == ("settled", 50_000)
    assert lsp.get_invoice(inv.payment_hash)["invoiceId"] == inv.id  # by hash too


def test_payment_reserves_then_refunds_unused_fee(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    fund(api, creds.client_id, 10_000)
    sessions = ctx_of(api).sessions
    p = reserve(api, creds.client_id, "k1", "aa" * 32, "lnbcrt1", 4_000, 100)
    assert lsp.balance()["balance"] == 5_900  # amount + max fee held while in flight
    outcome = PaymentOutcome(
        "aa" * 32, "SUCCEEDED", fee_sat=7, fee_msat=7000, value_sat=4000, preimage="bb" * 32, failure_reason=None
    )
    with session_scope(sessions) as s:
        assert payments.finish(s, p.id, outcome) is not None
        assert payments.finish(s, p.id, outcome) is None  # a second report changes nothing
    assert lsp.balance()["balance"] == 10_000 - 4_000 - 7
    status = lsp.get_payment("aa" * 32)
    assert (status["status"], status["fee"], status["preimage"]) == ("succeeded", 7, "bb" * 32)


def test_failed_payment_refunds_everything_with_the_reason(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    fund(api, creds.client_id, 10_000)
    sessions = ctx_of(api).sessions
    p = reserve(api, creds.client_id, "k", "cc" * 32, "lnbcrt2", 9_000, 50)
    outcome = PaymentOutcome("cc" * 32, "FAILED", 0, 0, 9000, None, "FAILURE_REASON_NO_ROUTE")
    with session_scope(sessions) as s:
        payments.finish(s, p.id, outcome)
    assert lsp.balance()["balance"] == 10_000
    assert lsp.get_payment("cc" * 32)["failureReason"] == "FAILURE_REASON_NO_ROUTE"


def test_idempotency_key_never_pays_twice(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    fund(api, creds.client_id, 10_000)
    sessions = ctx_of(api).sessions
    args = dict(payment_hash="dd" * 32, payment_request="lnbcrt3", amount_sat=1_000, max_fee_sat=10)
    with session_scope(sessions) as s:
        first, created1 = payments.record_new(s, creds.client_id, idempotency_key="retry-me", **args)
    with session_scope(sessions) as s:
        again, created2 = payments.record_new(s, creds.client_id, idempotency_key="retry-me", **args)
    assert (created1, created2) == (True, False) and again.id == first.id
    assert lsp.balance()["balance"] == 10_000 - 1_010  # reserved once
    # Same key, different invoice: refused. Different key, same in-flight invoice: refused.
    with pytest.raises(Conflict, match="different invoice"), session_scope(sessions) as s:
        payments.record_new(s, creds.client_id, idempotency_key="retry-me", **{**args, "payment_request": "lnbcrt4"})
    with pytest.raises(Conflict, match="already in-flight"), session_scope(sessions) as s:
        payments.record_new(s, creds.client_id, idempotency_key="other", **args)


def test_payment_beyond_balance_is_refused(api: TestClient, creds: Creds) -> None:
    fund(api, creds.client_id, 1_000)
    with pytest.raises(InsufficientFunds, match="cannot cover 995 sat"), session_scope(ctx_of(api).sessions) as s:
        payments.record_new(
            s,
            creds.client_id,
            idempotency_key="x",
            payment_hash="ee" * 32,
            payment_request="lnbcrt5",
            amount_sat=995,
            max_fee_sat=10,
        )
    with session_scope(ctx_of(api).sessions) as s:
        assert ledger.balance(s, creds.client_id) == 1_000


def test_clients_only_see_their_own_invoices_and_payments(api: TestClient, creds: Creds) -> None:
    fund(api, creds.client_id, 5_000)
    inv = add_invoice_row(api, creds.client_id, 10, "mine")
    with session_scope(ctx_of(api).sessions) as s:
        payments.record_new(
            s,
            creds.client_id,
            idempotency_key="k",
            payment_hash="ff" * 32,
            payment_request="lnbcrt6",
            amount_sat=100,
            max_fee_sat=1,
        )
    other = onboard(api, "other")
    lb = LSPClient("http://t", other.api_key, other.api_secret, http=api)
    for path in (
        f"/api/invoices/{inv.id}",
        f"/api/invoices/{inv.payment_hash}",
        f"/api/payments/{'ff' * 32}",
        "/api/channels/does-not-matter",
    ):
        resp = api.get(path, auth=lb.auth)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["code"] == "not_found"
    assert lb.balance()["balance"] == 0


def test_the_running_balance_is_the_sum_of_the_ledger_and_reconcile_sees_any_drift(
    api: TestClient, lsp: LSPClient, creds: Creds
) -> None:
    fund(api, creds.client_id, 10_000)
    sessions = ctx_of(api).sessions
    p = reserve(api, creds.client_id, "run", "ab" * 32, "lnbcrt6", 2_000, 20)
    outcome = PaymentOutcome("ab" * 32, "SUCCEEDED", 3, 3000, 2000, "cd" * 32, None)
    with session_scope(sessions) as s:
        payments.finish(s, p.id, outcome)

    def ledger_sum() -> int:  # the ledger summed by SQL, not by the code under test
        with session_scope(sessions) as s:
            q = text("SELECT SUM(amount_sat) FROM ledger_entries WHERE client_id = :c")
            return int(s.execute(q, {"c": creds.client_id}).scalar_one())

    assert ledger_sum() == 10_000 - 2_003
    assert lsp.balance()["balance"] == ledger_sum()
    with session_scope(sessions) as s:
        assert ledger.mismatched_balances(s) == []
        s.execute(text("UPDATE clients SET balance_sat = balance_sat + 5 WHERE id = :c"), {"c": creds.client_id})
    with session_scope(sessions) as s:
        assert ledger.mismatched_balances(s) == [(creds.client_id, 10_000 - 2_003 + 5, 10_000 - 2_003)]


class UndecodableLnd:
    """A fake of the one call ``payments.start`` makes before recording (DecodePayReq), failing."""

    def __init__(self, error: Exception):
        self.error = error

    async def decode_pay_req(self, payment_request: str) -> object:
        raise self.error


def test_a_retry_gets_its_recorded_payment_even_when_lnd_cannot_decode(api: TestClient, creds: Creds) -> None:
    fund(api, creds.client_id, 10_000)
    ctx = ctx_of(api)
    first = reserve(api, creds.client_id, "again", "ef" * 32, "lnbcrt7", 1_000, 10)

    def start(lnd: object, key: str, invoice: str = "lnbcrt7") -> tuple[object, bool]:
        return asyncio.run(
            payments.start(
                lnd,  # type: ignore[arg-type]
                ctx.sessions,
                ctx.settings,
                creds.client_id,
                payment_request=invoice,
                idempotency_key=key,
                max_fee_sat=None,
            )
        )

    down = UndecodableLnd(LndUnavailable("connection refused"))
    found, created = start(down, "again")
    assert (getattr(found, "id", None), created) == (first.id, False)
    with pytest.raises(LndUnavailable):
        start(down, "new-key")
    with pytest.raises(Conflict, match="different invoice"):
        start(down, "again", "lnbcrt8")
    with pytest.raises(ValidationFailed, match="invalid invoice: checksum failed"):
        start(UndecodableLnd(LndError("checksum failed")), "new-key")
