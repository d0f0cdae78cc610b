"""KYC refusals, the alert workflow, statements and the audit trail through the real app and database
(SQLite; PostgreSQL too when LSP_TEST_POSTGRES_URL is set). No LND: money-moving endpoints are
refused by compliance *before* they would need it, which is exactly what these tests check."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import text

from harness.wait import wait_for
from lncore import stubs
from lncore.lnd.types import PaymentOutcome
from lsp.app import create_app
from lsp.cli import main as cli_main
from lsp.client import LSPAPIError, LSPClient
from lsp.db import migrate
from lsp.db.base import session_scope
from lsp.db.models import Invoice
from lsp.errors import Forbidden
from lsp.services import invoices, payments
from tests.unit.lsp.conftest import ADMIN_KEY, Creds, make_settings, onboard

pytestmark = pytest.mark.unit
ADMIN = {"X-Admin-Key": ADMIN_KEY}
POLICY = {
    "default_tier": "small",
    "tiers": {
        "small": {
            "required_fields": ["legal_name", "email"],
            "per_payment_sat": 100_000,
            "daily_volume_sat": 250_000,
            "monthly_volume_sat": 1_000_000,
            "max_channel_sat": 2_000_000,
        },
        "big": {
            "required_fields": ["legal_name", "email", "country"],
            "per_payment_sat": 4_000_000,
            "daily_volume_sat": 50_000_000,
            "monthly_volume_sat": 500_000_000,
            "max_channel_sat": 50_000_000,
        },
    },
    "rules": {
        "large_amount": {"threshold_sat": 200_000},
        "structuring": {"threshold_sat": 100_000, "band": 0.1, "window_s": 3600, "min_count": 3},
        "velocity": {"max_count": 50},
        "rapid_in_out": {"enabled": False},
        "new_client": {"enabled": False},
    },
}

# A real secp256k1 point (the generator): the channel API refuses off-curve keys first.
ON_CURVE_PUBKEY = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


@pytest.fixture
def make_api(db_url: str, tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    migrate.upgrade(db_url)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    opened: list[TestClient] = []

    def make(policy_data: dict | None = None, **overrides: object) -> TestClient:
        path = policy
        if policy_data is not None:
            path = tmp_path / f"policy-{len(opened)}.yaml"
            path.write_text(yaml.safe_dump(policy_data))
        overrides.setdefault("compliance_config_path", path)
        tc = TestClient(create_app(make_settings(db_url, **overrides)), raise_server_exceptions=False)
        tc.__enter__()
        opened.append(tc)
        return tc

    yield make
    for tc in opened:
        tc.__exit__(None, None, None)


def client_of(api: TestClient, c: Creds) -> LSPClient:
    return LSPClient("http://testserver", c.api_key, c.api_secret, http=api)


def ctx(api: TestClient):
    return api.app.state.ctx  # type: ignore[attr-defined]


def refused(fn: Callable[[], object]) -> tuple[int, str, str]:
    with pytest.raises(LSPAPIError) as exc:
        fn()
    return exc.value.status, exc.value.code, exc.value.message


def fund(api: TestClient, client_id: str, amount: int, tag: str) -> Invoice:
    phash = hashlib.sha256(tag.encode()).hexdigest()
    with session_scope(ctx(api).sessions) as s:
        inv = Invoice(client_id=client_id, payment_hash=phash, payment_request=f"lnbcrt{tag}", amount_sat=amount, expiry_s=3600)
        s.add(inv)
    ln = stubs.load().ln
    with session_scope(ctx(api).sessions) as s:
        lnd_inv = ln.Invoice(r_hash=bytes.fromhex(phash), amt_paid_sat=amount, state=ln.Invoice.SETTLED)
        assert invoices.apply_update(s, lnd_inv, "SETTLED") is not None
    return inv


def pay(api: TestClient, client_id: str, amount: int, tag: str, *, fee: int = 3, succeed: bool = True):
    """A payment through the same record_new/finish path the API uses, with the compliance guard."""
    c = ctx(api)
    from lsp.compliance import kyc

    phash = hashlib.sha256(tag.encode()).hexdigest()
    with session_scope(c.sessions) as s:
        p, _ = payments.record_new(
            s,
            client_id,
            idempotency_key=tag,
            payment_hash=phash,
            payment_request=f"lnbcrt{tag}",
            amount_sat=amount,
            max_fee_sat=20,
            guard=lambda sess, amt: kyc.enforce_payment(sess, c.settings, client_id, amt, "02" + "cd" * 32),
        )
    outcome = PaymentOutcome(
        phash,
        "SUCCEEDED" if succeed else "FAILED",
        fee,
        fee * 1000,
        amount,
        "00" * 32,
        None if succeed else "FAILURE_REASON_NO_ROUTE",
    )
    with session_scope(c.sessions) as s:
        payments.finish(s, p.id, outcome)
    return p


def raw_get(lsp: LSPClient, path: str):
    resp = lsp.http.request("GET", path, auth=lsp.auth)
    assert resp.status_code == 200, resp.text
    return resp


# --- KYC ---------------------------------------------------------------------------------------------


def test_pending_client_is_refused_on_every_money_moving_endpoint(make_api) -> None:
    api = make_api(kyc_initial_state="pending")
    c = onboard(api)
    lsp = client_of(api, c)
    assert refused(lambda: lsp.create_invoice(1000, "x"))[:2] == (403, "kyc_pending")
    assert refused(lambda: lsp.open_channel(ON_CURVE_PUBKEY, 1_000_000))[:2] == (403, "kyc_pending")
    assert refused(lambda: lsp.request_liquidity(1_000_000, 3_600_000, 2000))[:2] == (403, "kyc_pending")
    with pytest.raises(Forbidden, match="KYC state is pending"):
        pay(api, c.client_id, 1000, "p1")
    assert api.get(f"/api/admin/clients/{c.client_id}/kyc", headers=ADMIN).json()["missingFields"] == [
        "legal_name",
        "email",
    ]


def test_admin_approves_with_the_tier_fields_then_suspends_with_a_reason(make_api) -> None:
    api = make_api(kyc_initial_state="pending")
    c = onboard(api)
    lsp = client_of(api, c)
    url = f"/api/admin/clients/{c.client_id}/kyc"
    assert api.post(url, json={"state": "approved"}).status_code == 401  # admin only
    r = api.post(url, json={"state": "approved", "fields": {"legal_name": "Acme"}}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.fields"
    assert "email" in r.json()["error"]["message"]
    r = api.post(url, json={"state": "approved", "fields": {"legal_name": "Acme", "email": "a@b.c"}}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["state"] == "approved"
    # Approved: compliance lets the invoice through; it then needs LND, which this test has not.
    assert refused(lambda: lsp.create_invoice(1000, "x"))[:2] == (503, "lnd_unavailable")
    r = api.post(url, json={"state": "suspended"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.reason"
    assert api.post(url, json={"state": "suspended", "reason": "court order 17"}, headers=ADMIN).status_code == 200
    status, code, message = refused(lambda: lsp.create_invoice(1000, "x"))
    assert (status, code) == (403, "kyc_suspended") and "court order 17" in message
    with pytest.raises(Forbidden, match="suspended"):
        pay(api, c.client_id, 1000, "p1")
    r = api.post(url, json={"state": "pending"}, headers=ADMIN)
    assert r.status_code == 409 and "suspended" in r.json()["error"]["message"]
    # Every decision is in the audit trail with before and after.
    log = api.get("/api/admin/audit", headers=ADMIN).json()
    changes = [e for e in log["log"] if e["action"] == "kyc.change"]
    assert [json.loads(e["after"])["state"] for e in reversed(changes)] == ["approved", "suspended"]
    assert json.loads(changes[0]["before"])["state"] == "approved" and log["intact"] is True


def test_tier_limits_are_enforced_with_the_reason(make_api) -> None:
    api = make_api()  # regtest: approved at the default tier ("small" here)
    c = onboard(api)
    lsp = client_of(api, c)
    status, code, msg = refused(lambda: lsp.create_invoice(100_001, "x"))
    assert (status, code) == (403, "limit_per_payment") and "100000" in msg
    assert refused(lambda: lsp.open_channel(ON_CURVE_PUBKEY, 2_000_001))[:2] == (403, "limit_channel_size")
    fund(api, c.client_id, 1_000_000, "f")
    pay(api, c.client_id, 100_000, "a")
    pay(api, c.client_id, 100_000, "b")
    pay(api, c.client_id, 40_000, "failed", succeed=False)  # failed payments do not use the allowance
    with pytest.raises(Forbidden, match="daily limit of 250000") as exc:
        pay(api, c.client_id, 50_001, "c")
    assert exc.value.code == "limit_daily_volume"
    pay(api, c.client_id, 50_000, "d")  # exactly up to the limit is fine
    # A bigger tier (with its extra field) lifts the limit.
    r = api.post(f"/api/admin/clients/{c.client_id}/kyc", json={"state": "suspended", "reason": "re-tiering"}, headers=ADMIN)
    assert r.status_code == 200
    r = api.post(
        f"/api/admin/clients/{c.client_id}/kyc",
        json={"state": "approved", "tier": "big", "fields": {"legal_name": "A", "email": "a@b.c", "country": "CH"}},
        headers=ADMIN,
    )
    assert r.status_code == 200 and r.json()["limits"]["perPayment"] == 4_000_000
    pay(api, c.client_id, 300_000, "e")


def test_deny_listed_destination_is_refused(make_api, tmp_path: Path) -> None:
    bad = "02" + "cd" * 32
    policy = {**POLICY, "rules": {**POLICY["rules"], "deny_list": {"pubkeys": [bad]}}}
    path = tmp_path / "deny.json"
    path.write_text(json.dumps(policy))
    api = make_api(compliance_config_path=path)
    c = onboard(api)
    fund(api, c.client_id, 100_000, "f")
    with pytest.raises(Forbidden) as exc:
        pay(api, c.client_id, 1000, "x")
    assert exc.value.code == "denied_destination"


# --- monitoring and the alert workflow ------------------------------------------------------------------


def roomy_policy() -> dict:
    tiers = {**POLICY["tiers"], "small": {**POLICY["tiers"]["small"], "daily_volume_sat": 10_000_000}}
    rules = {**POLICY["rules"], "large_amount": {"threshold_sat": 2_000_000}}
    return {**POLICY, "tiers": tiers, "rules": rules}


def test_structuring_scan_raises_one_alert_and_the_review_workflow(make_api) -> None:
    api = make_api(roomy_policy())
    c = onboard(api)
    other = onboard(api, "bystander")
    fund(api, c.client_id, 1_000_000, "f")
    fund(api, other.client_id, 1_000_000, "g")
    for i, amount in enumerate((95_000, 99_000, 92_000, 97_000)):
        pay(api, c.client_id, amount, f"s{i}")
    pay(api, other.client_id, 95_000, "o1")  # one near-threshold payment is not a pattern
    pay(api, other.client_id, 40_000, "o2")

    r = api.post("/api/admin/compliance/scan", headers=ADMIN).json()
    assert r["created"] == 1
    alerts = api.get("/api/admin/alerts", headers=ADMIN).json()
    assert [(a["rule"], a["clientId"], a["status"]) for a in alerts] == [("structuring", c.client_id, "open")]
    ev = alerts[0]["evidence"]
    assert sorted(ev["amountsSat"]) == [92_000, 95_000, 97_000, 99_000] and len(ev["refs"]) == 4
    assert api.post("/api/admin/compliance/scan", headers=ADMIN).json()["created"] == 0  # idempotent

    aid = alerts[0]["id"]
    step = lambda body: api.post(f"/api/admin/alerts/{aid}", json=body, headers=ADMIN)  # noqa: E731
    assert step({"status": "reviewing"}).json()["status"] == "reviewing"
    assert step({"status": "escalated"}).json()["status"] == "escalated"
    r = step({"status": "closed"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "body.reason"
    r = step({"status": "closed", "reason": "payroll, documented"})
    assert r.json()["status"] == "closed" and r.json()["closeReason"] == "payroll, documented"
    r = step({"status": "reviewing"})
    assert r.status_code == 409
    assert step({"status": "bogus"}).status_code == 422
    assert api.post("/api/admin/alerts/999", json={"status": "closed", "reason": "x"}, headers=ADMIN).status_code == 404
    summary = api.get("/api/admin/reports/alerts", headers=ADMIN).json()
    assert summary["byStatus"] == {"closed": 1} and summary["byRule"] == {"structuring": 1}
    actions = [e["action"] for e in api.get("/api/admin/audit", headers=ADMIN).json()["log"]]
    assert actions[:4] == ["alert.closed", "alert.escalated", "alert.reviewing", "alert.raise"]


def test_a_restarted_lsp_raises_the_alerts_of_events_lost_in_a_crash(make_api) -> None:
    """The payments commit, the process dies before its monitoring worker sees their events (here:
    no events are published at all). The next start replays the rules' window and raises the
    structuring alert; a second start raises nothing new."""
    api = make_api(roomy_policy())
    c = onboard(api)
    fund(api, c.client_id, 1_000_000, "f")
    for i, amount in enumerate((95_000, 99_000, 92_000)):
        pay(api, c.client_id, amount, f"lost{i}")
    assert api.get("/api/admin/alerts", headers=ADMIN).json() == []

    def alerts_after_start() -> list[dict]:
        restarted = make_api(roomy_policy(), background_tasks=True)  # runs the start-up tasks, no LND
        wait_for(
            lambda: not any(t.get_name() == "lsp-monitoring-catch-up" and not t.done() for t in asyncio_tasks(restarted)),
            what="the start-up catch-up",
            timeout_s=15,
        )
        return restarted.get("/api/admin/alerts", headers=ADMIN).json()

    alerts = alerts_after_start()
    assert [(a["rule"], a["clientId"]) for a in alerts] == [("structuring", c.client_id)]
    assert sorted(alerts[0]["evidence"]["amountsSat"]) == [92_000, 95_000, 99_000]
    assert len(alerts_after_start()) == 1  # idempotent: the next start finds nothing new
    actions = [e["action"] for e in api.get("/api/admin/audit", headers=ADMIN).json()["log"]]
    assert actions.count("alert.raise") == 1


def test_final_payments_and_settled_invoices_are_audited_with_the_change(make_api) -> None:
    """No event is published here (the helpers call the services directly, as after a crash the
    events would be lost): the entries come from the transactions that made the changes."""
    api = make_api(roomy_policy())
    c = onboard(api)
    inv = fund(api, c.client_id, 500_000, "audited-in")
    ok = pay(api, c.client_id, 40_000, "audited-ok", fee=2)
    bad = pay(api, c.client_id, 30_000, "audited-bad", succeed=False)
    log = api.get("/api/admin/audit", headers=ADMIN).json()["log"]
    system = {(e["action"], e["target"]): json.loads(e["after"]) for e in log if e["actor"] == "system"}
    assert system[("invoice.settled", f"client:{c.client_id}/{inv.id}")]["amount"] == 500_000
    assert system[("payment.succeeded", f"client:{c.client_id}/{ok.payment_hash}")]["fee"] == 2
    failed = system[("payment.failed", f"client:{c.client_id}/{bad.payment_hash}")]
    assert failed["status"] == "failed" and failed["failureReason"] == "FAILURE_REASON_NO_ROUTE"
    assert api.get("/api/admin/audit", headers=ADMIN).json()["problems"] == []


def asyncio_tasks(api: TestClient) -> list[asyncio.Task]:
    """The tasks running on the app's event loop (its background tasks among them)."""

    async def tasks() -> list[asyncio.Task]:
        return list(asyncio.all_tasks())

    assert api.portal is not None
    return api.portal.call(tasks)


# --- reports ------------------------------------------------------------------------------------------------


def test_statement_json_csv_html_tie_out_to_the_sat(make_api) -> None:
    api = make_api(roomy_policy())
    c = onboard(api)
    lsp = client_of(api, c)
    fund(api, c.client_id, 500_000, "f1")
    fund(api, c.client_id, 20_000, "f2")
    pay(api, c.client_id, 12_345, "p1", fee=2)
    pay(api, c.client_id, 50_000, "p2", fee=7)
    pay(api, c.client_id, 30_000, "p3", succeed=False)
    st = lsp.request("GET", "/api/enterprise/reports")
    t = st["totals"]
    assert (t["sentSat"], t["routingFeesSat"], t["receivedSat"]) == (62_345, 9, 520_000)
    assert (t["paymentsSucceeded"], t["paymentsFailed"], t["invoicesSettled"]) == (2, 1, 2)
    assert t["openingBalanceSat"] == 0 and t["closingBalanceSat"] == 520_000 - 62_345 - 9 == lsp.balance()["balance"]

    raw = raw_get(lsp, "/api/enterprise/reports?format=csv")
    rows = list(csv.DictReader(io.StringIO(raw.text)))
    pays = [r for r in rows if r["section"] == "payment"]
    assert sorted(int(r["amount_sat"]) for r in pays) == [12_345, 30_000, 50_000]
    totals = {r["id"]: int(r["amount_sat"]) for r in rows if r["section"] == "total"}
    assert totals["sentSat"] == 62_345 and totals["closingBalanceSat"] == 457_646
    assert raw.headers["content-type"].startswith("text/csv")

    html = raw_get(lsp, "/api/enterprise/reports?format=html").text
    assert "Statement" in html and "12,345" in html and "457,646" in html

    # An empty period is empty, and the period is validated.
    st = lsp.request("GET", "/api/enterprise/reports?from=2020-01-01&to=2020-02-01")
    assert st["payments"] == [] and st["totals"]["closingBalanceSat"] == 0
    assert refused(lambda: lsp.request("GET", "/api/enterprise/reports?from=yesterday"))[:2] == (
        422,
        "validation_error",
    )
    vol = api.get("/api/admin/reports/volume", headers=ADMIN).json()
    assert [(v["sentSat"], v["receivedSat"]) for v in vol] == [(62_345, 520_000)]


# --- the audit trail on the real table, and `lsp audit verify` --------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "expect"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2", "TAMPERED edited at seq 2"),
        ("DELETE FROM audit_log WHERE seq = 2", "TAMPERED missing at seq 3"),
        # Swap entries 2 and 3 (through a free number: seq is unique).
        (
            "UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; "
            "UPDATE audit_log SET seq = 3 WHERE seq = -1",
            "TAMPERED reordered at seq 2",
        ),
        ("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)", "TAMPERED truncated"),
    ],
    ids=["edit", "delete", "reorder", "truncate"],
)
def test_lsp_audit_verify_detects_tampering(
    make_api, db_url: str, tamper: str, expect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api()
    for name in ("a", "b", "c"):
        onboard(api, name)
    monkeypatch.setenv("LSP_DATABASE_URL", db_url)
    ok = CliRunner().invoke(cli_main, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact: 3 entries" in ok.output  # one per onboarding
    with ctx(api).engine.begin() as conn:
        for statement in tamper.split("; "):
            conn.execute(text(statement))
    bad = CliRunner().invoke(cli_main, ["audit", "verify"])
    assert bad.exit_code == 1, bad.output
    assert expect in bad.output


def test_lsp_compliance_scan_cli_uses_the_policy_file(
    make_api, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(roomy_policy())
    c = onboard(api)
    fund(api, c.client_id, 1_000_000, "f")
    for i, amount in enumerate((95_000, 99_000, 92_000)):
        pay(api, c.client_id, amount, f"s{i}")
    monkeypatch.setenv("LSP_DATABASE_URL", db_url)
    # A stricter policy file, no code change: min_count 4 means three payments are not (yet) a pattern.
    strict = roomy_policy()
    strict["rules"] = {**strict["rules"], "structuring": {**strict["rules"]["structuring"], "min_count": 4}}
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(strict))
    r = CliRunner().invoke(cli_main, ["compliance", "scan", "--config", str(path)])
    assert r.exit_code == 0 and "0 new alerts" in r.output, r.output
    r = CliRunner().invoke(cli_main, ["compliance", "scan", "--config", str(tmp_path / "policy-0.yaml")])
    assert r.exit_code == 0 and "scanned 4 transactions" in r.output and "1 new alerts" in r.output, r.output
    r = CliRunner().invoke(cli_main, ["compliance", "scan", "--config", str(tmp_path / "policy-0.yaml")])
    assert "0 new alerts" in r.output  # a re-scan adds nothing


def test_concurrent_appends_never_fork_the_chain(make_api) -> None:
    """Writers in parallel (as the API's threads and the monitoring worker are) queue on the head row."""
    import threading

    from lsp.compliance import audit

    api = make_api()
    sessions = ctx(api).sessions
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                audit.record_in(sessions, actor=f"t{n}", action="test.append", target=f"x:{i}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    with session_scope(sessions) as s:
        n, problems = audit.verify(s)
    assert (n, problems) == (60, [])


def add_swap(api: TestClient, client_id: str, kind: str, state: str, amount: int, fee: int, tag: str) -> None:
    """A swap row as lsp/swaps leaves it (the on-chain details do not matter to reports)."""
    from lsp.db.models_swaps import Swap

    with session_scope(ctx(api).sessions) as s:
        s.add(
            Swap(
                client_id=client_id,
                kind=kind,
                state=state,
                invoice_amount_sat=amount,
                onchain_amount_sat=amount - fee,
                service_fee_sat=fee,
                miner_fee_sat=150,
                payment_hash=hashlib.sha256(tag.encode()).hexdigest(),
                invoice=f"lnbcrt{tag}",
                lsp_pubkey="02" + "aa" * 32,
                client_pubkey="03" + "bb" * 32,
                timeout_height=500,
                created_height=400,
                confirmations=1,
                witness_script="00",
                address="bcrt1qtest",
                script_pubkey="0014" + "00" * 20,
            )
        )


def test_swaps_appear_in_statements_revenue_and_monitoring(make_api) -> None:
    api = make_api(roomy_policy())
    c = onboard(api)
    lsp = client_of(api, c)
    add_swap(api, c.client_id, "submarine", "claimed", 250_000, 1_250, "w1")  # completed: earns its fee
    add_swap(api, c.client_id, "reverse", "invoice_settled", 300_000, 1_500, "w2")  # completed
    add_swap(api, c.client_id, "reverse", "refunded", 400_000, 2_000, "w3")  # failed: no fee earned
    st = lsp.request("GET", "/api/enterprise/reports")
    assert sorted((w["kind"], w["state"]) for w in st["swaps"]) == [
        ("reverse", "invoice_settled"),
        ("reverse", "refunded"),
        ("submarine", "claimed"),
    ]
    assert st["totals"]["swapFeesSat"] == 2_750
    csv_rows = [
        r for r in csv.DictReader(io.StringIO(raw_get(lsp, "/api/enterprise/reports?format=csv").text)) if r["section"] == "swap"
    ]
    assert sorted(int(r["amount_sat"]) for r in csv_rows) == [250_000, 300_000, 400_000]
    assert api.get("/api/admin/reports/revenue", headers=ADMIN).json()["swapFeesSat"] == 2_750
    # Swaps are transactions for monitoring too: 2 000 000 sat large-amount threshold in this policy.
    add_swap(api, c.client_id, "submarine", "claimed", 2_500_000, 5_000, "w4")
    assert api.post("/api/admin/compliance/scan", headers=ADMIN).json()["created"] == 1
    [alert] = api.get("/api/admin/alerts", headers=ADMIN).json()
    assert alert["rule"] == "large_amount" and alert["evidence"]["refs"][0].startswith("swap:")


def test_swaps_count_toward_the_volume_limits(make_api) -> None:
    from lsp.compliance import kyc

    api = make_api()  # small tier: 100k per payment, 250k a day
    c = onboard(api)
    fund(api, c.client_id, 1_000_000, "fv")
    add_swap(api, c.client_id, "submarine", "claimed", 90_000, 500, "v1")
    add_swap(api, c.client_id, "reverse", "invoice_accepted", 80_000, 400, "v2")  # in progress: counts
    add_swap(api, c.client_id, "reverse", "refunded", 99_000, 400, "v3")  # nothing moved: does not count
    with session_scope(ctx(api).sessions) as s:
        assert kyc.usage(s, c.client_id).day_sat == 170_000
    pay(api, c.client_id, 80_000, "within")  # 250k exactly
    with pytest.raises(Forbidden, match="daily limit"):
        pay(api, c.client_id, 1, "over")
    # And a new swap is held to the same volume.
    with session_scope(ctx(api).sessions) as s, pytest.raises(Forbidden, match="daily limit") as exc:
        kyc.enforce_swap(s, ctx(api).settings, c.client_id, 10_000)
    assert exc.value.code == "limit_daily_volume"


def test_rebalance_and_channel_purchases_need_an_approved_client(make_api) -> None:
    api = make_api(kyc_initial_state="pending")
    c = onboard(api)
    lsp = client_of(api, c)
    # Refused by compliance before the LSP would need LND (which these tests do not have).
    assert refused(lambda: lsp.request("POST", "/api/channels/rebalance", json={"channelId": "x", "amount": 1000}))[
        :2
    ] == (403, "kyc_pending")
    node = "02" + "ab" * 32
    menu = lsp.http.post(
        f"/api/lsps/?node_id={node}",
        content=json.dumps({"jsonrpc": "2.0", "id": "1", "method": "lsps2.get_info", "params": {}}).encode(),
        auth=lsp.auth,
    )
    assert menu.status_code == 200, menu.text  # reading the menu is not buying
    params = menu.json()["result"]["opening_fee_params_menu"][0]
    buy = lsp.http.post(
        f"/api/lsps/?node_id={node}",
        content=json.dumps(
            {"jsonrpc": "2.0", "id": "2", "method": "lsps2.buy", "params": {"opening_fee_params": params}}
        ).encode(),
        auth=lsp.auth,
    )
    assert buy.status_code == 403 and buy.json()["error"]["code"] == "kyc_pending"


def test_swap_state_changes_are_monitored_live_and_audited(make_api) -> None:
    from lsp.db.models_swaps import Swap
    from lsp.swaps.service import SwapService
    from lsp.swaps.state import S

    api = make_api(roomy_policy())  # large_amount from 2,000,000 sat
    c = onboard(api)
    add_swap(api, c.client_id, "submarine", "lockup_confirmed", 2_500_000, 5_000, "live1")
    with session_scope(ctx(api).sessions) as s:
        swap_id = s.query(Swap).one().id
    # The service's own state change (no LND needed to move a row): committed, audited, published.
    svc = SwapService.__new__(SwapService)  # move() needs only the database and the bus, not LND
    svc.ctx = ctx(api)
    api.portal.call(lambda: svc.move(swap_id, S.INVOICE_PENDING, detail="paying"))  # type: ignore[attr-defined]
    worker = ctx(api).compliance_worker
    assert worker is not None and worker.flush(timeout_s=30)
    [alert] = api.get("/api/admin/alerts", headers=ADMIN).json()
    assert alert["rule"] == "large_amount" and alert["evidence"]["refs"] == [f"swap:{swap_id}"]
    # The batch scan sees the same swap under the same ref: no second alert.
    assert api.post("/api/admin/compliance/scan", headers=ADMIN).json()["created"] == 0
    log = api.get("/api/admin/audit", headers=ADMIN).json()
    assert log["intact"]
    [entry] = [e for e in log["log"] if e["action"] == "swap.state" and e["target"].endswith(swap_id)]
    assert json.loads(entry["after"])["from"] == "lockup_confirmed" and entry["actor"] == "system"


def test_reservation_expiry_is_audited(make_api) -> None:
    from datetime import timedelta

    from lsp.db.base import utcnow
    from lsp.db.models import LiquidityReservation
    from lsp.services import liquidity

    api = make_api()
    c = onboard(api)
    with session_scope(ctx(api).sessions) as s:
        s.add(
            LiquidityReservation(
                client_id=c.client_id, amount_sat=500_000, fee_rate_ppm=2000, fee_sat=1000,
                expires_at=utcnow() - timedelta(seconds=1),
            )
        )
    with session_scope(ctx(api).sessions) as s:
        assert liquidity.expire_due(s) == 1
    with session_scope(ctx(api).sessions) as s:
        assert liquidity.expire_due(s) == 0  # once
    log = api.get("/api/admin/audit", headers=ADMIN).json()
    assert log["intact"]
    [entry] = [e for e in log["log"] if e["action"] == "liquidity.expire"]
    assert entry["actor"] == "system" and json.loads(entry["after"])["status"] == "expired"


def test_the_clients_contracted_monthly_volume_is_enforced(make_api) -> None:
    api = make_api(roomy_policy())  # the tier allows 1,000,000 sat a month
    c = onboard(api, apiLimits={"monthlyVolume": 150_000})
    fund(api, c.client_id, 1_000_000, "cv")
    pay(api, c.client_id, 100_000, "cv1")
    pay(api, c.client_id, 40_000, "cv2", succeed=False)  # a failed payment moved nothing
    pay(api, c.client_id, 50_000, "cv3")  # 150,000 exactly
    with pytest.raises(Forbidden) as exc:
        pay(api, c.client_id, 1, "cv4")
    assert exc.value.code == "limit_client_monthly_volume" and "apiLimits.monthlyVolume" in exc.value.message
