"""Reconcile every client's ledger with what LND says happened.

For each invoice and payment the LSP recorded, LND is the truth about the money:

- an invoice LND reports SETTLED must be ``settled`` here and credited exactly its
  ``amt_paid_sat``, once (an invoice credited twice, or never, is a difference);
- a payment's ledger entries must net to what it cost: ``-(amount + fee)`` when LND
  says SUCCEEDED (with the same fee), ``0`` when FAILED, ``-(amount + max fee)``
  while IN_FLIGHT; a payment LND has never heard of must not be ``succeeded`` here;
- LND must hold at most one payment per hash (a retry never pays twice).

``reconcile`` returns the differences (empty = the ledger reconciles); it changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from lsp.db.models import Invoice, LedgerEntry, Payment
from lsp.errors import LndError
from lsp.lnd.client import LndClient

LND_TO_OURS = {"SUCCEEDED": "succeeded", "FAILED": "failed", "IN_FLIGHT": "in_flight", "INITIATED": "in_flight"}


@dataclass(frozen=True)
class Difference:
    client_id: str
    kind: str  # "invoice" | "payment"
    reference: str  # our invoice/payment id
    problem: str


@dataclass
class Reconciliation:
    clients: int = 0
    invoices_checked: int = 0
    payments_checked: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def _ledger_by_reference(session: Session) -> dict[str, dict[str, int]]:
    """reference ("invoice:<id>", "payment:<id>") -> kind -> summed amount."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ref, kind, amount in session.execute(
        select(LedgerEntry.reference, LedgerEntry.kind, LedgerEntry.amount_sat)
    ).all():
        out[str(ref)][str(kind)] += int(amount)
    return out


async def reconcile(lnd: LndClient, session: Session) -> Reconciliation:
    report = Reconciliation()
    ledger = _ledger_by_reference(session)
    invs = list(session.scalars(select(Invoice)))
    pays = list(session.scalars(select(Payment)))
    report.clients = len({i.client_id for i in invs} | {p.client_id for p in pays})

    def diff(client_id: str, kind: str, ref: str, problem: str) -> None:
        report.differences.append(Difference(client_id, kind, ref, problem))

    for inv in invs:
        report.invoices_checked += 1
        try:
            lnd_inv = await lnd.lookup_invoice(inv.payment_hash)
        except LndError as exc:
            diff(inv.client_id, "invoice", inv.id, f"LND cannot find it: {exc.message}")
            continue
        state = lnd.pb.ln.Invoice.InvoiceState.Name(lnd_inv.state)
        credited = ledger.get(f"invoice:{inv.id}", {}).get("invoice_settled", 0)
        if state == "SETTLED":
            if inv.status != "settled":
                diff(inv.client_id, "invoice", inv.id, f"LND settled it but it is {inv.status} here")
            if credited != int(lnd_inv.amt_paid_sat):
                diff(inv.client_id, "invoice", inv.id, f"credited {credited} sat, LND received {lnd_inv.amt_paid_sat}")
        elif credited:
            diff(inv.client_id, "invoice", inv.id, f"credited {credited} sat but LND says {state}")

    lnd_pays: dict[str, list[object]] = defaultdict(list)
    for p in await lnd.list_payments():
        lnd_pays[p.payment_hash].append(p)
    for pay in pays:
        report.payments_checked += 1
        records = lnd_pays.get(pay.payment_hash, [])
        net = sum(ledger.get(f"payment:{pay.id}", {}).values())
        if len(records) > 1:
            diff(pay.client_id, "payment", pay.id, f"LND holds {len(records)} payments for this hash")
        if not records:
            if pay.status == "succeeded":
                diff(pay.client_id, "payment", pay.id, "succeeded here but LND never sent it")
            expected_net = -(pay.amount_sat + pay.max_fee_sat) if pay.status == "in_flight" else 0
        else:
            lp = records[0]
            lnd_status = LND_TO_OURS.get(lnd.pb.ln.Payment.PaymentStatus.Name(lp.status), "?")  # type: ignore[attr-defined]
            if lnd_status != pay.status:
                diff(pay.client_id, "payment", pay.id, f"{pay.status} here, {lnd_status} in LND")
            if lnd_status == "succeeded":
                lnd_fee = int(lp.fee_msat) // 1000  # type: ignore[attr-defined]
                if pay.fee_sat != lnd_fee:
                    diff(pay.client_id, "payment", pay.id, f"fee {pay.fee_sat} sat here, {lnd_fee} sat in LND")
            expected_net = {
                "succeeded": -(pay.amount_sat + pay.fee_sat),
                "failed": 0,
                "in_flight": -(pay.amount_sat + pay.max_fee_sat),
            }.get(pay.status, 0)
        if net != expected_net:
            diff(pay.client_id, "payment", pay.id, f"ledger nets {net} sat, expected {expected_net} ({pay.status})")
    return report
