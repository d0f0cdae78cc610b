"""The routing engine through the LSP's HTTP API, with the app connected to the payer node of mpp6."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bench.routing_live import dest_balances, restore, settle_all
from harness.harness import LightningTestHarness
from lsp.app import create_app
from lsp.client import LSPAPIError, LSPClient
from lsp.config import load_settings
from lsp.db import migrate
from lsp.db.base import session_scope
from lsp.services import ledger

pytestmark = pytest.mark.topology("mpp6", shared=True)

ADMIN_KEY = "routing-test-admin"
AMOUNT_SAT = 700_000
# Routers log parts they cannot forward, and LND logs the malformed invoice we send on purpose.
EXPECTED_ERRORS = ("insufficient bandwidth to route htlc", "DecodePayReq]: failed converting data")


def test_estimate_then_pay_with_strategy_mcf(lab: LightningTestHarness, tmp_path: Path) -> None:
    settle_all(lab)
    baseline = dest_balances(lab)
    payer, dest = lab.node("payer"), lab.node("dest")
    url = f"sqlite:///{tmp_path / 'lsp.db'}"
    migrate.upgrade(url)
    settings = load_settings(
        database_url=url,
        admin_api_key=ADMIN_KEY,
        lnd_host=f"127.0.0.1:{payer.config.rpc_port}",
        lnd_tls_cert_path=payer.config.tls_cert,
        lnd_macaroon_path=payer.config.macaroon,
        background_tasks=False,
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as http:
        resp = http.post("/api/enterprise/onboard", json={"name": "router"}, headers={"X-Admin-Key": ADMIN_KEY})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        lsp = LSPClient("http://testserver", body["apiKey"], body["apiSecret"], http=http)
        with session_scope(app.state.ctx.sessions) as s:
            ledger.record(s, body["clientId"], 1_000_000, "adjustment", "test deposit")

        est = lsp.request("POST", "/api/payments/estimate", json={"destination": dest.pubkey, "amount": AMOUNT_SAT})
        assert est["amount"] == AMOUNT_SAT
        assert len(est["parts"]) >= 2  # no single path has the capacity for it
        assert sum(p["amountMsat"] for p in est["parts"]) == AMOUNT_SAT * 1000
        assert all(p["hops"][-1] == dest.pubkey for p in est["parts"])
        assert 0 < est["successProbability"] <= 1
        assert est["feeMsat"] == sum(p["feeMsat"] for p in est["parts"]) > 0

        invoice = dest.add_invoice(AMOUNT_SAT)
        by_invoice = lsp.request("POST", "/api/payments/estimate", json={"invoice": invoice.payment_request})
        assert by_invoice["destination"] == dest.pubkey and by_invoice["amount"] == AMOUNT_SAT

        for bad, field in (
            ({"amount": 1000}, "body.destination"),
            ({"destination": dest.pubkey}, "body.amount"),
            ({"destination": "02" + "ab" * 32, "amount": 1000}, "body.destination"),
            ({"destination": "zz", "amount": 1000}, "body.destination"),
            ({"invoice": "lnbcrt1notaninvoice"}, "body.invoice"),
        ):
            with pytest.raises(LSPAPIError) as err:
                lsp.request("POST", "/api/payments/estimate", json=bad)
            assert (err.value.status, err.value.field) == (422, field), bad
        with pytest.raises(LSPAPIError) as err:
            lsp.request("POST", "/api/payments/send", json={"invoice": invoice.payment_request, "strategy": "fast"})
        assert (err.value.status, err.value.field) == (422, "body.strategy")

        paid = lsp.request(
            "POST", "/api/payments/send", json={"invoice": invoice.payment_request, "strategy": "mcf", "maxFee": 2000}
        )
        assert paid["status"] == "succeeded", paid
        assert 0 < paid["fee"] <= 2000
        assert lsp.balance()["balance"] == 1_000_000 - AMOUNT_SAT - paid["fee"]
    assert dest.ln.lookup_invoice(invoice.payment_hash).amt_paid_sat == AMOUNT_SAT
    settle_all(lab)
    asyncio.run(restore(lab, baseline))
    unexpected = [line for line in lab.new_error_lines() if not any(e in line for e in EXPECTED_ERRORS)]
    lab.mark_logs()
    assert not unexpected, unexpected
