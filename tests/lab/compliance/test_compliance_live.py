"""Compliance against a live star5 network: the LSP runs on the hub's LND and clients pay real invoices."""

from __future__ import annotations

import threading

import pytest

from harness.harness import LightningTestHarness
from harness.wait import wait_for
from lsp.client import LSPAPIError
from tests.lab.compliance.conftest import STRUCTURING_THRESHOLD, LiveLSP

pytestmark = pytest.mark.topology("star5", shared=True)


def alerts_for(live: LiveLSP, client_id: str) -> list[dict]:
    return [a for a in live.admin.get("/api/admin/alerts").json() if a["clientId"] == client_id]


def settled_monitoring(live: LiveLSP) -> None:
    live.settled_monitoring()


def test_suspended_client_cannot_pay(lab: LightningTestHarness, live_lsp: LiveLSP) -> None:
    cid, client = live_lsp.onboard("suspendme")
    live_lsp.fund(client, 20_000)
    ok = client.send_payment(live_lsp.invoice_from("c3", 1_000).payment_request)
    assert ok["status"] == "succeeded"

    live_lsp.kyc(cid, "suspended", reason="sanctions screening hit")
    balance = client.balance()["balance"]
    inv = live_lsp.invoice_from("c3", 2_000)
    with pytest.raises(LSPAPIError) as exc:
        client.send_payment(inv.payment_request)
    assert (exc.value.status, exc.value.code) == (403, "kyc_suspended")
    assert "sanctions screening hit" in exc.value.message
    # Nothing left the node and nothing was reserved.
    assert lab.node("c3").ln.lookup_invoice(inv.payment_hash).amt_paid_sat == 0
    assert client.balance()["balance"] == balance


def test_tier_limit_stops_a_payment_over_it(lab: LightningTestHarness, live_lsp: LiveLSP) -> None:
    cid, client = live_lsp.onboard("smalltier")
    live_lsp.fund(client, 120_000, payer="c2")
    # The operator moves the client to the small tier (same state, new limits; audited like any change).
    assert live_lsp.kyc(cid, "approved", tier="small")["limits"]["perPayment"] == 50_000
    with pytest.raises(LSPAPIError) as exc:
        client.send_payment(live_lsp.invoice_from("c3", 50_001).payment_request)
    assert (exc.value.status, exc.value.code) == (403, "limit_per_payment")
    assert "50000" in exc.value.message
    assert client.send_payment(live_lsp.invoice_from("c3", 50_000).payment_request)["status"] == "succeeded"


def test_structuring_pattern_raises_exactly_the_expected_alert(lab: LightningTestHarness, live_lsp: LiveLSP) -> None:
    cid, client = live_lsp.onboard("structurer")
    live_lsp.fund(client, 400_000)
    amounts = [95_000, 97_500, 91_000, 99_900]  # all within 10 % under the 100 000 threshold
    assert all(0.9 * STRUCTURING_THRESHOLD <= a < STRUCTURING_THRESHOLD for a in amounts)
    for i, amount in enumerate(amounts):
        assert client.send_payment(live_lsp.invoice_from("c3", amount).payment_request)["status"] == "succeeded"
        if i == 1:
            settled_monitoring(live_lsp)
            assert alerts_for(live_lsp, cid) == []  # two are not a pattern yet
    # Raised live, from the event bus, as the third payment completed; the fourth extends it.
    settled_monitoring(live_lsp)
    alerts = alerts_for(live_lsp, cid)
    assert [(a["rule"], a["severity"], a["status"]) for a in alerts] == [("structuring", "high", "open")]
    assert sorted(alerts[0]["evidence"]["amountsSat"]) == sorted(amounts)
    assert len(alerts[0]["evidence"]["refs"]) == 4
    # The batch scan over history finds the same pattern and adds nothing.
    assert live_lsp.admin.post("/api/admin/compliance/scan").json()["created"] == 0
    assert len(alerts_for(live_lsp, cid)) == 1


def test_report_matches_the_clients_payments_to_the_sat(lab: LightningTestHarness, live_lsp: LiveLSP) -> None:
    _, client = live_lsp.onboard("reported")
    live_lsp.fund(client, 200_000, payer="c2")
    live_lsp.fund(client, 45_678, payer="c1")
    hashes = []
    for node, amount in (("c3", 12_345), ("c4", 23_456), ("c1", 34_567)):
        p = client.send_payment(live_lsp.invoice_from(node, amount).payment_request)
        assert p["status"] == "succeeded"
        hashes.append(p["paymentHash"])
    st = client.request("GET", "/api/enterprise/reports")
    lnd = {p.payment_hash: p for p in lab.node("hub").ln.list_payments()}
    assert sorted(p["paymentHash"] for p in st["payments"]) == sorted(hashes)
    for p in st["payments"]:
        assert (p["amountSat"], p["feeSat"]) == (lnd[p["paymentHash"]].value_sat, lnd[p["paymentHash"]].fee_sat)
    t = st["totals"]
    assert t["sentSat"] == 12_345 + 23_456 + 34_567 == sum(lnd[h].value_sat for h in hashes)
    assert t["routingFeesSat"] == sum(lnd[h].fee_sat for h in hashes)
    assert t["receivedSat"] == 245_678
    assert t["closingBalanceSat"] == 245_678 - t["sentSat"] - t["routingFeesSat"] == client.balance()["balance"]
    csv_text = client.http.get("/api/enterprise/reports?format=csv", auth=client.auth).text
    assert sum(int(line.split(",")[4]) for line in csv_text.splitlines() if line.startswith("payment,")) == t["sentSat"]


def test_operator_reconciliation_of_a_busy_run_shows_zero_difference(lab: LightningTestHarness, live_lsp: LiveLSP) -> None:
    team = [live_lsp.onboard(f"busy{i}") for i in range(3)]
    for i, (_, client) in enumerate(team):
        live_lsp.fund(client, 100_000, payer="c1" if i % 2 == 0 else "c2")
    errors: list[BaseException] = []

    def work(i: int) -> None:
        _, client = team[i]
        try:
            for k in range(5):
                node = ("c3", "c4", "c1", "c2")[(i + k) % 4]
                p = client.send_payment(live_lsp.invoice_from(node, 1_000 * (i + 1) + 17 * k).payment_request)
                assert p["status"] == "succeeded", p
            live_lsp.fund(client, 5_000 + i, payer="c2")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(team))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    # Two clients pay the same invoice: LND pays it once, the second attempt fails and costs nothing.
    shared = live_lsp.invoice_from("c3", 4_321).payment_request
    assert team[0][1].send_payment(shared)["status"] == "succeeded"
    second = team[1][1].send_payment(shared)
    assert second["status"] == "failed", second
    # LND logs the refused duplicate ("invoice is already paid") as an error: expected here, so the
    # lab's after-test log check starts from this point.
    lab.mark_logs()
    rec = live_lsp.admin.get("/api/admin/reports/reconciliation").json()
    assert rec["differences"] == [] and rec["differenceSat"] == 0
    assert rec["checked"]["payments"] == 17 and rec["checked"]["invoices"] == 6
    assert rec["ledger"] == rec["lnd"]
    # The audit trail of the whole run is intact.
    settled_monitoring(live_lsp)
    audit = live_lsp.admin.get("/api/admin/audit?limit=1").json()
    assert audit["intact"] is True and audit["entries"] > 40
    wait_for(lambda: live_lsp.admin.get("/api/admin/reports/revenue").status_code == 200, what="revenue", timeout_s=10)
