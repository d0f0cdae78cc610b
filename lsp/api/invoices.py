"""/api/invoices: create on LND and look up (settlement comes from LND's invoice stream)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import Field, field_validator
from starlette.concurrency import run_in_threadpool

from lsp.api.deps import DB, Ctx, CurrentClient, get_lnd
from lsp.api.schemas import ERROR_RESPONSES, CamelModel
from lsp.compliance import audit, kyc
from lsp.db.base import session_scope
from lsp.db.models import Invoice
from lsp.services import invoices

router = APIRouter(prefix="/api/invoices", tags=["invoices"], responses=ERROR_RESPONSES)


class CreateInvoiceRequest(CamelModel):
    amount: int = Field(gt=0, le=4_294_967, description="sats (BOLT 11 limit for non-wumbo: < 2^32 msat)")
    description: str = Field(default="", max_length=639, description="at most 639 bytes as UTF-8 (BOLT 11)")
    expiry: int = Field(default=3600, ge=60, le=31_536_000, description="seconds")

    @field_validator("description")
    @classmethod
    def _fits_bolt11(cls, value: str) -> str:
        # BOLT 11 limits the description field to 639 bytes; LND counts bytes, not characters.
        if len(value.encode()) > 639:
            raise ValueError(f"is {len(value.encode())} bytes as UTF-8; BOLT 11 allows at most 639")
        return value


class InvoiceView(CamelModel):
    invoice_id: str
    payment_hash: str
    payment_request: str
    amount: int
    amount_paid: int
    description: str
    expiry: int
    status: str
    created_at: datetime
    settled_at: datetime | None
    payment_page: str = Field(description="path of its public payment page on the LSP (QR code, live status, your branding)")

    @classmethod
    def of(cls, i: Invoice) -> InvoiceView:
        return cls(
            payment_page=f"/pay/{i.id}",
            invoice_id=i.id,
            payment_hash=i.payment_hash,
            payment_request=i.payment_request,
            amount=i.amount_sat,
            amount_paid=i.amount_paid_sat,
            description=i.description,
            expiry=i.expiry_s,
            status=i.status,
            created_at=i.created_at,
            settled_at=i.settled_at,
        )


@router.post("/create", status_code=201, response_model=InvoiceView)
async def create(body: CreateInvoiceRequest, client: CurrentClient, ctx: Ctx) -> InvoiceView:
    # The database off the event loop, in short transactions of their own: none is held open
    # across the LND call (docs/LSP.md, "The database rule").
    await run_in_threadpool(kyc.check, ctx.sessions, kyc.enforce_invoice, ctx.settings, client.id, body.amount)
    added = await get_lnd(ctx).add_invoice(body.amount, body.description, expiry_s=body.expiry)

    def record() -> InvoiceView:
        with session_scope(ctx.sessions) as db:
            inv = invoices.record(
                db, client.id, added, amount_sat=body.amount, description=body.description, expiry_s=body.expiry
            )
            audit.record(
                db,
                actor=f"client:{client.id}",
                action="invoice.create",
                target=f"invoice:{inv.id}",
                after={"amountSat": inv.amount_sat, "paymentHash": inv.payment_hash},
            )
            return InvoiceView.of(inv)

    return await run_in_threadpool(record)


@router.get("/{invoice_id}", response_model=InvoiceView)
def get_invoice(invoice_id: str, client: CurrentClient, db: DB) -> InvoiceView:
    """By invoice id or payment hash."""
    return InvoiceView.of(invoices.get_for_client(db, client.id, invoice_id))
