"""``/pay/{invoiceId}``: an invoice's public payment page in its client's branding, and its status.

What a payer may see and nothing else: the amount, the description, the payment request (as text
and QR code), the expiry, the status and the merchant's name and branding. No keys, no client id,
no other invoice. The invoice id (128 random bits) is the capability: unknown ids, malformed ids
and, on a client's own domain, other clients' invoices are the same 404. The page asks
``/pay/{id}/status`` once a second and turns to "Paid" without a reload.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import Field

from lsp.context import AppContext
from lsp.db.base import session_scope, utcnow
from lsp.db.models import Client, Invoice
from lsp.schemas import CamelModel
from lsp.services import branding

router = APIRouter(prefix="/pay", tags=["payment page"])
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"]))
INVOICE_ID = re.compile(r"^[0-9a-f]{32}$")
POLL_MS = 1000


class PayStatus(CamelModel):
    status: Literal["open", "paid", "expired", "canceled"]
    amount: int = Field(description="sats asked")
    amount_paid: int
    expires_at: datetime


def _status(inv: Invoice, now: datetime) -> PayStatus:
    expires = inv.created_at + timedelta(seconds=inv.expiry_s)
    state = {"settled": "paid", "canceled": "canceled"}.get(inv.status)
    if state is None:
        state = "expired" if inv.status == "expired" or now >= expires else "open"
    return PayStatus(status=state, amount=inv.amount_sat, amount_paid=inv.amount_paid_sat, expires_at=expires)


def _find(request: Request, invoice_id: str) -> tuple[Invoice, Client] | None:
    """The invoice if this request may see it (see the module docstring)."""
    if not INVOICE_ID.match(invoice_id):
        return None
    ctx: AppContext = request.app.state.ctx
    host = request.headers.get("host", "")
    host = "" if host.startswith("[") else host.split(":", 1)[0]  # an IPv6 literal is no client's domain
    with session_scope(ctx.sessions) as s:
        inv = s.get(Invoice, invoice_id)
        if inv is None:
            return None
        owner = branding.owner_of_domain(s, host) if host else None
        if owner is not None and owner != inv.client_id:
            return None
        client = s.get(Client, inv.client_id)
        if client is None or not client.active:
            return None
        s.expunge_all()
        return inv, client


def _not_found() -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template("missing.html").render(), status_code=404, headers=_headers(""))


def _headers(nonce: str) -> dict[str, str]:
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; script-src {script}; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


@router.get("/{invoice_id}", response_class=HTMLResponse, include_in_schema=False)
async def pay_page(invoice_id: str, request: Request) -> Response:
    found = await asyncio.to_thread(_find, request, invoice_id)
    if found is None:
        return _not_found()
    inv, client = found
    status = _status(inv, utcnow())
    brand = branding.of(client) or branding.BrandingConfig()
    uri = f"lightning:{inv.payment_request}".upper()  # uppercase: QR's compact alphanumeric mode
    qr = segno.make(uri, error="m").svg_inline(scale=4, border=2, dark="#000000", light="#ffffff")
    nonce = secrets.token_urlsafe(16)
    html = TEMPLATES.get_template("pay.html").render(
        merchant=client.name,
        logo=brand.logo,
        colors=brand.palette(),
        invoice_id=inv.id,
        amount=inv.amount_sat,
        description=inv.description,
        payment_request=inv.payment_request,
        lightning_uri=f"lightning:{inv.payment_request}",
        qr_svg=qr,
        status=status.status,
        expires_at=status.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        poll_ms=POLL_MS,
        nonce=nonce,
    )
    return HTMLResponse(html, headers=_headers(nonce))


@router.get("/{invoice_id}/status", response_model=PayStatus, responses={404: {"description": "no such invoice"}})
async def pay_status(invoice_id: str, request: Request) -> Response:
    """The invoice's status for its payment page (public: the invoice id is the capability)."""
    found = await asyncio.to_thread(_find, request, invoice_id)
    if found is None:
        return JSONResponse({"error": {"code": "not_found", "message": "no such invoice"}}, status_code=404)
    return JSONResponse(_status(found[0], utcnow()).model_dump(mode="json", by_alias=True), headers={"Cache-Control": "no-store"})
