"""``GET /api/enterprise/dashboard``: a client's own numbers, and nobody else's.

The rows are made the way the LSP makes them (settled invoices, recorded and finished payments,
a reservation, a channel row), and the expected sums are added up here from those amounts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from lsp.client import LSPClient
from lsp.db.base import session_scope, utcnow
from lsp.db.models import Channel
from lsp.services import ledger
from tests.unit.lsp.conftest import Creds, onboard
from tests.unit.lsp.test_money import ctx_of, fund
from tests.unit.lsp.test_reservation_book import finish, pay, reserve

pytestmark = pytest.mark.unit


def test_dashboard_adds_up_the_clients_own_activity(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    fund(api, creds.client_id, 300_000, tag="f1")
    fund(api, creds.client_id, 20_000, tag="f2")
    p1 = pay(api, creds.client_id, "d1", 50_000, 100)
    finish(api, p1.id, "SUCCEEDED", 50_000, fee=12)
    p2 = pay(api, creds.client_id, "d2", 10_000, 50)
    finish(api, p2.id, "FAILED", 10_000)
    pay(api, creds.client_id, "d3", 5_000, 10)  # still in flight
    res = reserve(api, creds.client_id, 100_000)  # fee: 100 + 2000 ppm of 100,000 = 300
    with session_scope(ctx_of(api).sessions) as s:
        ch = Channel(client_id=creds.client_id, remote_pubkey="02" + "ab" * 32, capacity_sat=2_000_000,
                     opening_fee_sat=3_000, status="open")
        s.add(ch)
        s.flush()
        ledger.record(s, creds.client_id, -3_000, "channel_opening_fee", f"channel:{ch.id}")
    # Another client's activity must not show.
    other = onboard(api, "other")
    fund(api, other.client_id, 77_777, tag="other")

    d = lsp.dashboard()
    assert (d["clientId"], d["name"]) == (creds.client_id, "acme")
    expected_balance = 320_000 - 50_012 - 5_010 - 300 - 3_000
    assert d["balance"] == expected_balance
    assert sum(d["balanceByKind"].values()) == expected_balance
    assert d["channels"] == {"byStatus": {"open": 1}, "openCapacity": 2_000_000}
    month = d["volume"]["month"]
    assert month == d["volume"]["today"] or utcnow().day == 1  # all of it happened today
    assert month == {"paymentsSent": 1, "sent": 50_000, "routingFees": 12, "invoicesSettled": 2, "received": 320_000}
    # The tighter of the standard tier's 1,000,000,000 sat a month and the client's contract;
    # counted: the sent and the in-flight payment.
    cap = min(1_000_000_000, lsp.me()["apiLimits"]["monthlyVolume"])
    assert d["volume"]["remainingMonthlyVolume"] == cap - 50_000 - 5_000
    assert d["fees"] == {"routing": 12, "channelOpening": 3_000, "liquidity": 300, "rebalance": 0, "total": 3_312}
    assert [(r["reservationId"], r["remaining"]) for r in d["reservations"]] == [(res.id, 100_000)]
    assert d["inFlightPayments"] == 1
    kinds = {(a["kind"], a["status"]) for a in d["recent"]}
    assert {("payment", "succeeded"), ("payment", "failed"), ("payment", "in_flight"), ("invoice", "settled"),
            ("channel", "open"), ("reservation", "active")} <= kinds
    assert all(a["amount"] != 77_777 for a in d["recent"])
    times = [a["at"] for a in d["recent"]]
    assert times == sorted(times, reverse=True)


def test_a_new_client_sees_an_empty_dashboard(api: TestClient, lsp: LSPClient) -> None:
    d = lsp.dashboard()
    zero = {"paymentsSent": 0, "sent": 0, "routingFees": 0, "invoicesSettled": 0, "received": 0}
    assert (d["balance"], d["recent"], d["reservations"]) == (0, [], [])
    assert d["volume"]["today"] == zero == d["volume"]["month"]
    assert d["fees"]["total"] == 0 and d["channels"]["byStatus"] == {}
    assert utcnow() - timedelta(minutes=5) < datetime.fromisoformat(d["generatedAt"])
