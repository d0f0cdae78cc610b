"""kill -9 the LSP while a payment and a channel open are in flight; restart; everything reaches its
final state, nothing is paid twice, and the ledger reconciles with LND."""

from __future__ import annotations

import hashlib
import secrets
import threading
from typing import Any

import pytest
from sqlalchemy import select, text

from harness.wait import wait_for
from lsp.db.base import make_engine, make_sessionmaker, session_scope
from lsp.db.models import Invoice
from lsp.services import ledger
from tests.lab.lsp.conftest import LiveLsp, reconcile_now  # type: ignore[import-not-found]


@pytest.mark.topology("star5")
def test_kill9_with_payment_and_channel_in_flight(live_lsp: LiveLsp) -> None:
    lab, lsp = live_lsp.lab, live_lsp.client
    hub, c1, c4 = lab.node("hub"), lab.node("c1"), lab.node("c4")
    live_lsp.fund_client(200_000, payer="c2")

    # A hold invoice on the payee: the HTLC arrives and stays there until we settle it.
    preimage = secrets.token_bytes(32)
    phash = hashlib.sha256(preimage).hexdigest()
    hold = c1.invoices.add_hold_invoice(phash, 30_000, memo="held")
    answers: list[Any] = []

    def pay() -> None:
        try:
            answers.append(lsp.send_payment(hold, max_fee_sat=200, idempotency_key="held-1", timeout_s=30))
        except Exception as exc:  # the connection dies with the process
            answers.append(exc)

    payer = threading.Thread(target=pay, daemon=True)
    payer.start()
    wait_for(lambda: c1.invoices.state(phash) == "ACCEPTED", what="the held HTLC to reach c1", timeout_s="PAYMENT")
    assert lsp.get_payment(phash)["status"] == "in_flight"

    ch = lsp.open_channel(c4.pubkey, 1_500_000, host=c4.p2p_address)
    assert ch["status"] == "pending"
    lab.chain.wait_for_tx(ch["fundingTxid"])

    live_lsp.server.kill9()
    payer.join(timeout=30)
    assert answers and isinstance(answers[0], Exception), answers  # it died mid-request

    live_lsp.server.start()
    # Still in flight after the restart (LND holds the HTLC); the channel is still pending.
    assert lsp.get_payment(phash)["status"] == "in_flight"
    assert lsp.get_channel(ch["channelId"])["status"] == "pending"
    # The client retries with the same key: the same payment, not a second one.
    retry = lsp.send_payment(hold, max_fee_sat=200, idempotency_key="held-1", timeout_s=30)
    assert retry["status"] == "in_flight"

    c1.invoices.settle(preimage.hex())
    lab.mine(6)
    paid = wait_for(
        lambda: (p := lsp.get_payment(phash))["status"] == "succeeded" and p,
        what="the payment to be tracked to succeeded after the restart",
        timeout_s="PAYMENT",
    )
    wait_for(
        lambda: lsp.get_channel(ch["channelId"])["status"] == "open",
        what="the channel to be tracked to open after the restart",
        timeout_s="CHANNEL_OPEN",
    )

    # Nothing paid twice: one payment in LND, one HTLC's worth at the payee.
    assert len([p for p in hub.ln.list_payments() if p.payment_hash == phash]) == 1
    assert c1.ln.lookup_invoice(phash).amt_paid_sat == 30_000
    bal = lsp.balance()
    assert bal["balance"] == 200_000 - 30_000 - paid["fee"] - ch["openingFee"]
    report = reconcile_now(live_lsp)
    assert report["ok"], report["differences"]
    assert report["checked"]["payments"] == 1 and report["checked"]["invoices"] == 1

    # The reconciliation can fail: a duplicated credit (as a double-applied settlement would
    # leave) is reported against LND's figure.
    engine = make_engine(live_lsp.db_url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            inv = s.scalars(select(Invoice)).one()
            bal_client = inv.client_id
            ledger.record(s, inv.client_id, inv.amount_paid_sat, "invoice_settled", f"invoice:{inv.id}")
    finally:
        engine.dispose()
    bad = reconcile_now(live_lsp)
    assert not bad["ok"] and [d["kind"] for d in bad["differences"]] == ["invoice"]
    assert "credited 400000 sat, LND received 200000" in bad["differences"][0]["problem"]

    # ... and so can a running balance that drifted from the ledger (an entry written without it).
    engine = make_engine(live_lsp.db_url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            s.execute(text("UPDATE clients SET balance_sat = balance_sat - 7"))
    finally:
        engine.dispose()
    drifted = reconcile_now(live_lsp)
    (balance,) = [d for d in drifted["differences"] if d["kind"] == "balance"]
    assert sorted(d["kind"] for d in drifted["differences"]) == ["balance", "invoice"]
    assert balance["reference"] == bal_client and "but its ledger entries sum to" in balance["problem"]
