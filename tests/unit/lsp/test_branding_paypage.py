"""Branding (the seed's brandingConfig) and the public payment page it dresses, through the real app
on SQLite and PostgreSQL (no LND: the invoice rows are made as the LSP makes them)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from lsp.client import LSPAPIError, LSPClient
from lsp.db.base import session_scope
from lsp.db.models import Invoice
from tests.unit.lsp.conftest import Creds, onboard
from tests.unit.lsp.test_money import ctx_of

pytestmark = pytest.mark.unit
PR = "lnbcrt210u1p" + "q" * 60


def invoice_for(api: TestClient, client_id: str, description: str, amount: int = 21_000) -> Invoice:
    with session_scope(ctx_of(api).sessions) as s:
        inv = Invoice(client_id=client_id, payment_hash=f"{abs(hash(description)):064x}"[:64], payment_request=PR,
                      amount_sat=amount, description=description, expiry_s=3600)
        s.add(inv)
        s.flush()
        s.expunge(inv)
    return inv


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"logo": "javascript:alert(1)"}, "body.logo"),
        ({"logo": "http://cdn.example.com/x.png"}, "body.logo"),
        ({"logo": "data:text/html;base64,PGgxPg=="}, "body.logo"),
        ({"colors": {"primary": "red"}}, "body.colors"),
        ({"colors": {"shadow": "#000000"}}, "body.colors.shadow"),
        ({"domain": "https://pay.example.com/"}, "body.domain"),
        ({"domain": "pay.example.com:8443"}, "body.domain"),
        ({"fonts": ["Comic Sans"]}, "body.fonts"),
    ],
)
def test_bad_branding_is_a_422_naming_the_field(lsp: LSPClient, body: dict[str, object], field: str) -> None:
    with pytest.raises(LSPAPIError) as exc:
        lsp.request("PUT", "/api/enterprise/branding", json=body)
    assert (exc.value.status, exc.value.field) == (422, field)
    assert lsp.request("GET", "/api/enterprise/branding") is None  # nothing stored


def test_a_domain_belongs_to_one_client(api: TestClient, lsp: LSPClient) -> None:
    assert lsp.request("PUT", "/api/enterprise/branding", json={"domain": "Pay.Acme.example"})["domain"] == "pay.acme.example"
    other = onboard(api, "other")
    them = LSPClient("http://testserver", other.api_key, other.api_secret, http=api)
    with pytest.raises(LSPAPIError) as exc:
        them.request("PUT", "/api/enterprise/branding", json={"domain": "pay.acme.example"})
    assert (exc.value.status, exc.value.field) == (409, "body.domain")


def test_the_page_shows_the_invoice_in_the_clients_branding_and_nothing_else(
    api: TestClient, lsp: LSPClient, creds: Creds
) -> None:
    lsp.request("PUT", "/api/enterprise/branding", json={
        "logo": "data:image/png;base64,iVBORw0KGgo=", "colors": {"primary": "#A01B2C"}, "domain": "pay.acme.example",
    })
    inv = invoice_for(api, creds.client_id, "Coffee <script>alert(1)</script> for two")
    r = api.get(f"/pay/{inv.id}")
    assert r.status_code == 200
    html = r.text
    assert "21,000 sat" in html and "Waiting for payment" in html and "<svg" in html
    assert "--primary: #a01b2c" in html and 'src="data:image/png;base64,iVBORw0KGgo="' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for secret in (creds.api_key, creds.api_secret, creds.client_id, inv.payment_hash):
        assert secret not in html
    csp = r.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<script nonce="{nonce.group(1)}">' in html and "default-src 'none'" in csp
    assert api.get(f"/pay/{inv.id}/status").json() == {
        "status": "open", "amount": 21_000, "amountPaid": 0,
        "expiresAt": api.get(f"/pay/{inv.id}/status").json()["expiresAt"],
    }


def test_unknown_malformed_and_other_tenants_invoices_are_the_same_404(api: TestClient, lsp: LSPClient, creds: Creds) -> None:
    lsp.request("PUT", "/api/enterprise/branding", json={"domain": "pay.acme.example"})
    other = onboard(api, "other")
    theirs = invoice_for(api, other.client_id, "their order")
    mine = invoice_for(api, creds.client_id, "my order")
    assert api.get(f"/pay/{theirs.id}").status_code == 200  # on the LSP's own host
    assert api.get(f"/pay/{mine.id}", headers={"host": "pay.acme.example"}).status_code == 200
    for path, host in (
        (f"/pay/{theirs.id}", "pay.acme.example"),  # another client's invoice on this client's domain
        (f"/pay/{theirs.id}/status", "pay.acme.example:443"),
        ("/pay/" + "0" * 32, "testserver"),
        ("/pay/ZZZ", "testserver"),
    ):
        r = api.get(path, headers={"host": host})
        assert r.status_code == 404, (path, host, r.status_code)
        assert "their order" not in r.text
