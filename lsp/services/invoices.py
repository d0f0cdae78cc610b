"""Invoices per client: created on LND, settlement tracked from LND's invoice stream.

A settled invoice credits the client's ledger exactly once (the status change
from open to settled happens in the same transaction as the ledger entry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lsp.compliance import audit
from lsp.db.base import utcnow
from lsp.db.models import Invoice
from lsp.errors import NotFound
from lsp.services import ledger
from lsp.services.events import invoice_data

if TYPE_CHECKING:
    from lnd_grpc import lightning_pb2 as ln


def record(
    session: Session, client_id: str, added: ln.AddInvoiceResponse, *, amount_sat: int, description: str, expiry_s: int
) -> Invoice:
    """The client's invoice as LND created it (``AddInvoice``), recorded in ``session``."""
    inv = Invoice(
        client_id=client_id,
        payment_hash=added.r_hash.hex(),
        payment_request=added.payment_request,
        add_index=int(added.add_index),
        amount_sat=amount_sat,
        description=description,
        expiry_s=expiry_s,
    )
    session.add(inv)
    session.flush()
    return inv


def get_for_client(session: Session, client_id: str, invoice_id: str) -> Invoice:
    """By our id or by payment hash."""
    inv = session.get(Invoice, invoice_id)
    if inv is None:
        inv = session.scalars(select(Invoice).where(Invoice.payment_hash == invoice_id)).first()
    if inv is None or inv.client_id != client_id:
        raise NotFound(f"no invoice {invoice_id}")
    return inv


def apply_update(session: Session, lnd_invoice: Any, state_name: str) -> Invoice | None:
    """Apply one invoice from LND's stream; returns the invoice if it just became settled."""
    inv = session.scalars(select(Invoice).where(Invoice.payment_hash == lnd_invoice.r_hash.hex())).first()
    if inv is None:
        return None  # not one of ours (created outside the LSP)
    if state_name == "SETTLED" and inv.status != "settled":
        inv.status = "settled"
        inv.amount_paid_sat = int(lnd_invoice.amt_paid_sat)
        inv.settled_at = utcnow()
        ledger.record(session, inv.client_id, inv.amount_paid_sat, "invoice_settled", f"invoice:{inv.id}")
        audit.record_system(session, "invoice.settled", inv.client_id, inv.id, invoice_data(inv))
        return inv
    if state_name == "CANCELED" and inv.status == "open":
        inv.status = "canceled"
    return None


def open_hashes(session: Session) -> list[str]:
    """Invoices still open: after a restart each is looked up once, since LND's stream only shows new events."""
    return list(session.scalars(select(Invoice.payment_hash).where(Invoice.status == "open")))
