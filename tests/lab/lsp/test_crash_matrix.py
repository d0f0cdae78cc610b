"""The crash matrix, API side: ``lsp serve`` SIGKILLs itself at one named durable step per test
(``LSP_CRASH_AT``, lsp/faults.py: no sleeps, the kill lands exactly there), is started again
unarmed on the same database, and then:

- the request it died in reaches its final state without being repeated (one payment in LND,
  one channel per open, the payee paid once);
- the client is charged exactly for what happened (the balance, to the sat, from the amounts
  LND reports, not from the LSP's own figures);
- ``lsp reconcile`` (the operator's command, run as a separate process) finds no difference,
  the audit chain verifies, and no HTLC is left pending on the LSP's node.

The LSPS daemon's points are in tests/lab/lsps/test_crash_matrix_lsps.py, the swaps' in
tests/lab/swaps/test_crash_matrix_swaps.py. docs/RELIABILITY.md has the table."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.harness import LightningTestHarness
from harness.lsp_process import reconcile
from harness.wait import wait_for
from harness.webhooks import WebhookReceiver
from lsp.client import LSPAPIError
from lsp.db.base import make_engine, make_sessionmaker, session_scope
from lsp.services import ledger
from tests.lab.lsp.conftest import PG_ENV, LiveLsp, _fresh_postgres_db  # type: ignore[import-not-found]

pytestmark = pytest.mark.topology("star5")
FUNDS = 300_000
SIGKILL = -9


@pytest.fixture
def lsp_db_url(tmp_path: Path) -> Iterator[str]:
    """One database per case (the matrix is long): PostgreSQL, the production database, when the
    suite has one, else SQLite."""
    base = os.environ.get(PG_ENV)
    if base:
        yield from _fresh_postgres_db(base)
    else:
        yield f"sqlite:///{tmp_path / 'lsp.db'}"


def armed(lsp_factory: Callable[..., LiveLsp], point: str, **extra: str) -> LiveLsp:
    live = lsp_factory(LSP_CRASH_AT=point, **extra)
    live.fund_client(FUNDS, payer="c2")
    return live


def restart_unarmed(live: LiveLsp) -> None:
    assert live.server.wait_killed() == SIGKILL, live.server.log_tail()
    assert "crash point" in live.server.log_text()
    live.server.env.pop("LSP_CRASH_AT")
    live.server.start()


def assert_reconciled(live: LiveLsp) -> dict[str, Any]:
    report = reconcile(live.server.env)
    assert report["ok"], json.dumps(report, indent=2)
    assert report["pendingHtlcs"] == 0, report
    assert report["auditProblems"] == []
    return report


def call_dying(fn: Callable[[], Any]) -> threading.Thread:
    """Run a request the process dies in (or LND leaves under); its error is the expected answer."""

    def run() -> None:
        try:
            fn()
        except (httpx.HTTPError, LSPAPIError):  # the connection died, or LND was away (503)
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def assert_paid_once(live: LiveLsp, payee: str, payment_hash: str, amount: int) -> None:
    """The payment the LSP was killed in is recorded succeeded with LND's fee, LND made it once,
    the payee got ``amount`` once, and the client paid exactly amount + LND's fee."""
    paid = wait_for(
        lambda: (p := live.client.get_payment(payment_hash))["status"] == "succeeded" and p,
        what="the interrupted payment to be recorded as succeeded", timeout_s="PAYMENT",
    )
    lnd_pays = [p for p in live.lab.node("hub").ln.list_payments() if p.payment_hash == payment_hash]
    assert len(lnd_pays) == 1 and lnd_pays[0].fee_sat == paid["fee"]
    assert live.lab.node(payee).ln.lookup_invoice(payment_hash).amt_paid_sat == amount
    assert live.client.balance()["balance"] == FUNDS - amount - lnd_pays[0].fee_sat


# -- (a) a payment --------------------------------------------------------------------------------
def test_payment_killed_before_lnd_is_asked_fails_and_refunds_everything(lsp_factory: Callable[..., LiveLsp]) -> None:
    live = armed(lsp_factory, "payment.before_lnd")
    lab, c3 = live.lab, live.lab.node("c3")
    lab.expect_log_errors("payment isn't initiated")  # the restarted LSP asking LND about it
    inv = c3.add_invoice(20_000, memo="never sent")
    call_dying(lambda: live.client.send_payment(inv.payment_request, max_fee_sat=100, idempotency_key="k1"))
    restart_unarmed(live)

    # LND never heard of it: the restarted LSP fails it and gives back amount + fee reserve.
    done = wait_for(
        lambda: (p := live.client.get_payment(inv.payment_hash))["status"] == "failed" and p,
        what="the interrupted payment to be failed", timeout_s="PAYMENT",
    )
    assert done["fee"] == 0
    assert live.client.balance()["balance"] == FUNDS
    assert [p for p in lab.node("hub").ln.list_payments() if p.payment_hash == inv.payment_hash] == []
    assert c3.ln.lookup_invoice(inv.payment_hash).amt_paid_sat == 0
    # The client's retry with the same key is the same payment, not a second try.
    again = live.client.send_payment(inv.payment_request, max_fee_sat=100, idempotency_key="k1")
    assert again["status"] == "failed"
    assert_reconciled(live)


def test_payment_killed_in_flight_completes_once_after_restart(lsp_factory: Callable[..., LiveLsp]) -> None:
    live = armed(lsp_factory, "payment.in_flight")
    c1 = live.lab.node("c1")
    preimage = secrets.token_bytes(32)
    phash = hashlib.sha256(preimage).hexdigest()
    hold = c1.invoices.add_hold_invoice(phash, 30_000, memo="held across a crash")
    call_dying(lambda: live.client.send_payment(hold, max_fee_sat=100, idempotency_key="k2", timeout_s=60))
    restart_unarmed(live)

    assert c1.invoices.state(phash) == "ACCEPTED"  # the HTLC left before the kill
    assert live.client.get_payment(phash)["status"] == "in_flight"
    c1.invoices.settle(preimage.hex())
    assert_paid_once(live, "c1", phash, 30_000)
    assert_reconciled(live)


def test_payment_killed_after_settle_before_ledger_is_recorded_once(lsp_factory: Callable[..., LiveLsp]) -> None:
    live = armed(lsp_factory, "payment.settled_before_ledger")
    c3 = live.lab.node("c3")
    inv = c3.add_invoice(25_000, memo="settled, then the crash")
    call_dying(lambda: live.client.send_payment(inv.payment_request, max_fee_sat=100, idempotency_key="k3"))
    restart_unarmed(live)

    assert_paid_once(live, "c3", inv.payment_hash, 25_000)
    assert live.client.send_payment(inv.payment_request, max_fee_sat=100, idempotency_key="k3")["status"] == "succeeded"
    assert_reconciled(live)


# -- (b) a channel open ---------------------------------------------------------------------------
def test_channel_open_killed_before_broadcast_fails_and_refunds_the_fee(lsp_factory: Callable[..., LiveLsp]) -> None:
    live = armed(lsp_factory, "channel.before_broadcast", LSP_CHANNEL_OPEN_GRACE="2")
    lab, c4 = live.lab, live.lab.node("c4")
    hub = lab.node("hub")
    before = {c.channel_point for c in hub.list_channels()}
    call_dying(lambda: live.client.open_channel(c4.pubkey, 1_000_000, host=c4.p2p_address))
    restart_unarmed(live)

    rows = wait_for(
        lambda: (r := live.client.list_channels()) and all(c["status"] == "failed" for c in r) and r,
        what="the interrupted open to be resolved as failed", timeout_s=90,
    )
    assert len(rows) == 1
    assert live.client.balance()["balance"] == FUNDS  # the opening fee came back
    assert {c.channel_point for c in hub.list_channels()} == before
    assert not hub.ln.pending_channels().pending_open_channels
    assert not lab.chain.mempool()
    assert_reconciled(live)


def test_channel_open_killed_after_broadcast_is_tracked_to_open_once(lsp_factory: Callable[..., LiveLsp]) -> None:
    live = armed(lsp_factory, "channel.after_broadcast", LSP_CHANNEL_OPEN_GRACE="2")
    lab, c4 = live.lab, live.lab.node("c4")
    hub = lab.node("hub")
    capacity = 1_000_000
    call_dying(lambda: live.client.open_channel(c4.pubkey, capacity, host=c4.p2p_address))
    restart_unarmed(live)

    row = wait_for(
        lambda: (r := live.client.list_channels()) and r[0]["status"] == "pending" and r[0],
        what="the interrupted open to be found in LND as pending", timeout_s=90,
    )
    lab.mine(6)
    wait_for(
        lambda: live.client.get_channel(row["channelId"])["status"] == "open",
        what="the channel to be tracked to open", timeout_s="CHANNEL_OPEN",
    )
    to_c4 = [c for c in hub.list_channels() if c.remote_pubkey == c4.pubkey and c.capacity_sat == capacity]
    assert len(to_c4) == 1, to_c4  # opened once
    # The seed's fee (channel_base_fee 1000 + 0.1 % of the capacity), charged once.
    assert live.client.balance()["balance"] == FUNDS - (1000 + capacity // 1000)
    assert_reconciled(live)

    # The check can fail: a fee charged twice (as a replayed open would leave) is reported.
    engine = make_engine(live.db_url)
    try:
        with session_scope(make_sessionmaker(engine)) as s:
            ledger.record(s, live.creds.client_id, -2000, "channel_opening_fee", f"channel:{row['channelId']}")
    finally:
        engine.dispose()
    bad = reconcile(live.server.env)
    assert not bad["ok"]
    assert [(d["kind"], d["reference"]) for d in bad["differences"]] == [("channel", row["channelId"])]
    assert "fee charged 4000 sat, quoted 2000" in bad["differences"][0]["problem"]


# -- (f) webhook delivery -------------------------------------------------------------------------
@pytest.mark.parametrize("point", ["webhook.before_send", "webhook.sent_before_record"])
def test_webhook_killed_mid_delivery_is_delivered_after_restart(
    lsp_factory: Callable[..., LiveLsp], point: str
) -> None:
    live = lsp_factory(LSP_CRASH_AT=point)
    with WebhookReceiver() as receiver:
        live.client.set_webhook(receiver.url, ["payment_received"])
        inv = live.client.create_invoice(12_000, "webhook drill")
        assert live.lab.node("c2").pay_invoice(inv["paymentRequest"], fee_limit_sat=100).succeeded
        restart_unarmed(live)
        got = wait_for(receiver.deliveries, what="the webhook to be delivered after the restart", timeout_s=60)
        ids = {d for d, _ in got}
        assert len(ids) == 1  # one delivery, whatever the number of attempts
        # At least once: sent before the kill and again after it, under the same delivery id.
        got = receiver.deliveries()
        assert len(got) == (2 if point == "webhook.sent_before_record" else 1)
        assert all(b["type"] == "payment_received" and b["data"]["amount"] == 12_000 for _, b in got)
        assert_reconciled(live)


# -- (g) LND restarted under the LSP mid-payment --------------------------------------------------
def test_lnd_restarted_under_the_lsp_mid_payment_completes_once(
    lab: LightningTestHarness, lsp_factory: Callable[..., LiveLsp]
) -> None:
    live = lsp_factory()
    live.fund_client(FUNDS, payer="c2")
    c1 = lab.node("c1")
    preimage = secrets.token_bytes(32)
    phash = hashlib.sha256(preimage).hexdigest()
    hold = c1.invoices.add_hold_invoice(phash, 40_000, memo="held while LND restarts")
    payer = call_dying(lambda: live.client.send_payment(hold, max_fee_sat=100, idempotency_key="k4", timeout_s=60))
    wait_for(lambda: c1.invoices.state(phash) == "ACCEPTED", what="the HTLC to reach c1", timeout_s="PAYMENT")

    lab.expect_log_errors(
        "dead epoch stream", "Unable to retrieve advertised address", "unable to validate channel",
        "htlcswitch shutting down", "routerrpc server shutting down",  # the hub's own streams, as it stops
        "macaroon store is locked",  # the LSP asking after its payment while the hub restarts
    )
    lab.restart_node("hub")
    c1.invoices.settle(preimage.hex())
    payer.join(timeout=120)
    assert_paid_once(live, "c1", phash, 40_000)  # tracked as soon as LND is back, not after the stale margin
    assert_reconciled(live)
