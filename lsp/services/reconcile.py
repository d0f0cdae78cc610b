"""Reconcile every client's ledger with what LND says happened.

For each invoice and payment the LSP recorded, LND is the truth about the money:

- an invoice LND reports SETTLED must be ``settled`` here and credited exactly its
  ``amt_paid_sat``, once (an invoice credited twice, or never, is a difference);
- a payment's ledger entries must net to what it cost: ``-(amount + fee)`` when LND
  says SUCCEEDED (with the same fee), ``0`` when FAILED, ``-(amount + max fee)``
  while IN_FLIGHT; a payment LND has never heard of must not be ``succeeded`` here;
- LND must hold at most one payment per hash (a retry never pays twice);
- a client's channel charged an opening fee must exist in LND (open, pending or closed) or be
  ``failed`` with the fee refunded; an ``opening`` row is an interrupted request not yet resolved;
- the LSPS services: a COMPLETED LSPS1 order has its channel in LND and its payment settled, a
  refunded one its payment cancelled; an opened JIT buy has its channel, a failed one none; and
  LND never holds two channels for one order or buy (the memo each open is stored with);
- swaps: a swap-in past ``invoice_pending`` paid the client's invoice (LND SUCCEEDED), a failed
  one did not; a reverse swap's hold invoice is settled exactly when the swap says so;
- every client's running balance equals the sum of its ledger entries.

It also counts the HTLCs still pending on the node's channels (``pending_htlcs``): after a drill
every one must be resolved. ``reconcile`` returns the differences (empty = the ledger reconciles);
it changes nothing. ``lsp reconcile`` prints them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from lncore.lnd.client import LndClient
from lsp.db.models import Channel, Invoice, LedgerEntry, Payment
from lsp.db.models_lsps import Lsps1Order, Lsps2Buy
from lsp.db.models_swaps import Swap
from lsp.errors import LndError
from lsp.services.ledger import mismatched_balances

LND_TO_OURS = {"SUCCEEDED": "succeeded", "FAILED": "failed", "IN_FLIGHT": "in_flight", "INITIATED": "in_flight"}


@dataclass(frozen=True)
class Difference:
    client_id: str
    kind: str  # "invoice" | "payment" | "channel" | "lsps1" | "jit" | "swap" | "balance"
    reference: str  # our invoice/payment id
    problem: str


@dataclass
class Reconciliation:
    clients: int = 0
    invoices_checked: int = 0
    payments_checked: int = 0
    channels_checked: int = 0
    orders_checked: int = 0
    buys_checked: int = 0
    swaps_checked: int = 0
    pending_htlcs: int = 0
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

    for client_id, running, total in mismatched_balances(session):
        diff(client_id, "balance", client_id, f"running balance {running} sat, but its ledger entries sum to {total} sat")

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
    await _services(lnd, session, ledger, report, lnd_pays, diff)
    return report


SUBMARINE_PAID = {"invoice_paid", "claim_pending", "claimed"}
REVERSE_SETTLED = {"invoice_settled"}
REVERSE_UNPAID = {"invoice_expired", "refunded", "lockup_failed"}


async def _services(
    lnd: LndClient,
    session: Session,
    ledger: dict[str, dict[str, int]],
    report: Reconciliation,
    lnd_pays: dict[str, list[object]],
    diff: Callable[[str, str, str, str], None],
) -> None:
    """Channels, LSPS1 orders, JIT buys and swaps against LND (see the module's docstring)."""
    open_chans = await lnd.list_channels()
    pending = (await lnd.pending_channels()).pending_open_channels
    closed = await lnd.closed_channels()
    report.pending_htlcs = sum(len(c.pending_htlcs) for c in open_chans)
    known = {str(c.channel_point) for c in open_chans} | {str(p.channel.channel_point) for p in pending}
    known |= {str(c.channel_point) for c in closed}
    by_memo: dict[str, list[str]] = defaultdict(list)
    for point, memo in [(str(c.channel_point), c.memo) for c in open_chans] + [
        (str(p.channel.channel_point), p.channel.memo) for p in pending
    ]:
        if memo:
            by_memo[memo].append(point)

    for ch in session.scalars(select(Channel)):
        report.channels_checked += 1
        entries = ledger.get(f"channel:{ch.id}", {})
        charged = -entries.get("channel_opening_fee", 0)
        refunded = entries.get("channel_opening_refund", 0)
        if ch.status == "opening":
            diff(ch.client_id, "channel", ch.id, "its open request was interrupted and is not resolved yet")
        elif ch.status == "failed":
            if charged != refunded:
                diff(ch.client_id, "channel", ch.id, f"failed but {charged - refunded} sat of its fee kept")
        else:
            if ch.channel_point is None or ch.channel_point not in known:
                diff(ch.client_id, "channel", ch.id, f"{ch.status} here but LND has no channel {ch.channel_point}")
            if charged != ch.opening_fee_sat or refunded:
                diff(ch.client_id, "channel", ch.id, f"fee charged {charged - refunded} sat, quoted {ch.opening_fee_sat}")
        if len(by_memo.get(f"lsp channel {ch.id}", [])) > 1:
            diff(ch.client_id, "channel", ch.id, f"LND opened it {len(by_memo[f'lsp channel {ch.id}'])} times")

    states = lnd.pb.ln.Invoice.InvoiceState
    for order in session.scalars(select(Lsps1Order)):
        report.orders_checked += 1
        who = order.client_node_id or "?"
        opened = by_memo.get(f"lsps1 order {order.id}", [])
        if len(opened) > 1:
            diff(who, "lsps1", order.id, f"LND opened {len(opened)} channels for it")
        inv_state = None
        try:
            inv_state = states.Name((await lnd.lookup_invoice(order.payment_hash)).state)
        except LndError as exc:
            diff(who, "lsps1", order.id, f"LND cannot find its invoice: {exc.message}")
        if order.order_state == "COMPLETED":
            if order.channel_point is None or order.channel_point not in known:
                diff(who, "lsps1", order.id, f"completed but LND has no channel {order.channel_point}")
            if order.paid_via == "bolt11" and inv_state not in (None, "SETTLED"):
                diff(who, "lsps1", order.id, f"completed but its payment is {inv_state} in LND")
        elif order.order_state == "FAILED":
            if inv_state == "SETTLED":
                diff(who, "lsps1", order.id, "failed but its payment was taken (LND settled it)")
            if opened:
                diff(who, "lsps1", order.id, f"failed but LND has its channel {opened[0]}")
        elif inv_state == "SETTLED":
            diff(who, "lsps1", order.id, f"{order.order_state} here but LND settled its payment")

    for buy in session.scalars(select(Lsps2Buy)):
        report.buys_checked += 1
        opened = by_memo.get(f"lsps2 buy {buy.id}", [])
        if len(opened) > 1:
            diff(buy.client_node_id, "jit", buy.id, f"LND opened {len(opened)} channels for it")
        if buy.state == "OPENED" and (buy.channel_point is None or buy.channel_point not in known):
            diff(buy.client_node_id, "jit", buy.id, f"opened here but LND has no channel {buy.channel_point}")
        if buy.state == "FAILED" and opened:
            diff(buy.client_node_id, "jit", buy.id, f"failed here but LND has its channel {opened[0]}")
        if buy.state == "OPENING":
            diff(buy.client_node_id, "jit", buy.id, "its channel open was interrupted and is not resolved yet")

    for swap in session.scalars(select(Swap)):
        report.swaps_checked += 1
        if swap.kind == "submarine":
            paid = [
                p for p in lnd_pays.get(swap.payment_hash, [])
                if lnd.pb.ln.Payment.PaymentStatus.Name(p.status) == "SUCCEEDED"  # type: ignore[attr-defined]
            ]
            if swap.state in SUBMARINE_PAID and not paid:
                diff(swap.client_id, "swap", swap.id, f"{swap.state} here but LND never paid its invoice")
            if swap.state == "invoice_failed" and paid:
                diff(swap.client_id, "swap", swap.id, "invoice_failed here but LND paid its invoice")
            continue
        try:
            inv_state = states.Name((await lnd.lookup_invoice(swap.payment_hash)).state)
        except LndError as exc:
            diff(swap.client_id, "swap", swap.id, f"LND cannot find its hold invoice: {exc.message}")
            continue
        if swap.state in REVERSE_SETTLED and inv_state != "SETTLED":
            diff(swap.client_id, "swap", swap.id, f"{swap.state} here but its hold invoice is {inv_state}")
        if swap.state in REVERSE_UNPAID and inv_state == "SETTLED":
            diff(swap.client_id, "swap", swap.id, f"{swap.state} here but LND settled its hold invoice")
