"""Statements and operator reports.

Client statement (``GET /api/enterprise/reports?from=&to=&format=json|csv|html``): the
payments, invoices, channels, liquidity reservations and swaps
created in [from, to), with totals and the ledger's opening and closing balance, so a
client can tie every sat of its balance to a line of the statement.

Operator reports (admin): volume by client, alert summary, revenue (channel opening fees,
liquidity fees, routing fees from LND's forwarding history, service fees of completed swaps), and
``reconcile``: the ledger checked against LND, payment by payment and invoice by invoice,
every difference listed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from lsp.db.base import session_scope
from lsp.db.models import (
    Channel,
    Client,
    ForwardingEvent,
    Invoice,
    LedgerEntry,
    LiquidityReservation,
    Payment,
)
from lsp.db.models_compliance import ComplianceAlert
from lsp.db.models_swaps import Swap
from lsp.errors import LndError, LndUnavailable
from lsp.schemas import CamelModel, IsoTime

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
)


# A swap earns its service fee once it completed: a submarine swap when the LSP claimed the
# lockup, a reverse swap when the client's hold invoice settled (lsp/swaps/state.py).
SWAP_DONE = {("submarine", "claimed"), ("reverse", "invoice_settled")}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def _iso(d: datetime | None) -> str | None:
    return d.isoformat() if d is not None else None


def _ledger_sum(session: Session, client_id: str, before: datetime) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_sat), 0)).where(
            LedgerEntry.client_id == client_id, LedgerEntry.created_at < before
        )
    )
    return int(total or 0)


class StatementTotals(CamelModel):
    payments_succeeded: int
    payments_failed: int
    payments_in_flight: int
    sent_sat: int
    routing_fees_sat: int
    invoices_settled: int
    received_sat: int
    channel_opening_fees_sat: int = Field(description="failed channel opens are refunded: not counted")
    liquidity_fees_sat: int
    swap_fees_sat: int = Field(description="service fees of completed swaps")
    opening_balance_sat: int
    closing_balance_sat: int
    net_change_sat: int


class StatementPayment(CamelModel):
    id: str
    payment_hash: str
    amount_sat: int
    fee_sat: int
    status: str
    created_at: IsoTime
    completed_at: IsoTime | None


class StatementInvoice(CamelModel):
    id: str
    payment_hash: str
    amount_sat: int
    amount_paid_sat: int
    status: str
    description: str
    created_at: IsoTime
    settled_at: IsoTime | None


class StatementChannel(CamelModel):
    id: str
    remote_pubkey: str
    capacity_sat: int
    opening_fee_sat: int
    status: str
    channel_point: str | None
    created_at: IsoTime


class StatementReservation(CamelModel):
    id: str
    amount_sat: int
    fee_sat: int
    status: str
    created_at: IsoTime


class StatementSwap(CamelModel):
    id: str
    kind: str
    state: str
    invoice_amount_sat: int
    onchain_amount_sat: int
    service_fee_sat: int
    created_at: IsoTime


class ClientStatement(CamelModel):
    """Everything the client created in [from, to), with totals that tie its balance out to the sat."""

    client_id: str
    client_name: str | None
    from_: IsoTime = Field(alias="from")
    to: IsoTime
    totals: StatementTotals
    payments: list[StatementPayment]
    invoices: list[StatementInvoice]
    channels: list[StatementChannel]
    liquidity: list[StatementReservation]
    swaps: list[StatementSwap]


def client_statement(session: Session, client_id: str, period: Period) -> ClientStatement:
    def in_period(col: Any) -> Any:
        return (col >= period.start) & (col < period.end)

    pays = list(
        session.scalars(
            select(Payment).where(Payment.client_id == client_id, in_period(Payment.created_at)).order_by(Payment.created_at)
        )
    )
    invs = list(
        session.scalars(
            select(Invoice).where(Invoice.client_id == client_id, in_period(Invoice.created_at)).order_by(Invoice.created_at)
        )
    )
    chans = list(
        session.scalars(
            select(Channel).where(Channel.client_id == client_id, in_period(Channel.created_at)).order_by(Channel.created_at)
        )
    )
    res = list(
        session.scalars(
            select(LiquidityReservation)
            .where(LiquidityReservation.client_id == client_id, in_period(LiquidityReservation.created_at))
            .order_by(LiquidityReservation.created_at)
        )
    )
    swaps = [
        StatementSwap(
            id=w.id,
            kind=w.kind,
            state=w.state,
            invoice_amount_sat=w.invoice_amount_sat,
            onchain_amount_sat=w.onchain_amount_sat,
            service_fee_sat=w.service_fee_sat,
            created_at=_iso(w.created_at),
        )
        for w in session.scalars(
            select(Swap).where(Swap.client_id == client_id, in_period(Swap.created_at)).order_by(Swap.created_at)
        )
    ]

    succeeded = [p for p in pays if p.status == "succeeded"]
    settled = [i for i in invs if i.status == "settled"]
    opening = _ledger_sum(session, client_id, period.start)
    closing = _ledger_sum(session, client_id, period.end)
    totals = StatementTotals(
        payments_succeeded=len(succeeded),
        payments_failed=sum(1 for p in pays if p.status == "failed"),
        payments_in_flight=sum(1 for p in pays if p.status == "in_flight"),
        sent_sat=sum(p.amount_sat for p in succeeded),
        routing_fees_sat=sum(p.fee_sat for p in succeeded),
        invoices_settled=len(settled),
        received_sat=sum(i.amount_paid_sat for i in settled),
        channel_opening_fees_sat=sum(c.opening_fee_sat for c in chans if c.status != "failed"),  # failed: refunded
        liquidity_fees_sat=sum(r.fee_sat for r in res),
        swap_fees_sat=sum(w.service_fee_sat for w in swaps if (w.kind, w.state) in SWAP_DONE),
        opening_balance_sat=opening,
        closing_balance_sat=closing,
        net_change_sat=closing - opening,
    )
    client = session.get(Client, client_id)
    return ClientStatement(
        client_id=client_id,
        client_name=client.name if client else None,
        from_=period.start.isoformat(),
        to=period.end.isoformat(),
        totals=totals,
        payments=[
            StatementPayment(
                id=p.id,
                payment_hash=p.payment_hash,
                amount_sat=p.amount_sat,
                fee_sat=p.fee_sat,
                status=p.status,
                created_at=_iso(p.created_at),
                completed_at=_iso(p.completed_at),
            )
            for p in pays
        ],
        invoices=[
            StatementInvoice(
                id=i.id,
                payment_hash=i.payment_hash,
                amount_sat=i.amount_sat,
                amount_paid_sat=i.amount_paid_sat,
                status=i.status,
                description=i.description,
                created_at=_iso(i.created_at),
                settled_at=_iso(i.settled_at),
            )
            for i in invs
        ],
        channels=[
            StatementChannel(
                id=c.id,
                remote_pubkey=c.remote_pubkey,
                capacity_sat=c.capacity_sat,
                opening_fee_sat=c.opening_fee_sat,
                status=c.status,
                channel_point=c.channel_point,
                created_at=_iso(c.created_at),
            )
            for c in chans
        ],
        liquidity=[
            StatementReservation(
                id=r.id,
                amount_sat=r.amount_sat,
                fee_sat=r.fee_sat,
                status=r.status,
                created_at=_iso(r.created_at),
            )
            for r in res
        ],
        swaps=swaps,
    )


CSV_COLUMNS = ("section", "id", "created_at", "status", "amount_sat", "fee_sat", "reference")


def statement_csv(st: ClientStatement) -> str:
    """One flat table: a row per line item, then one ``total`` row per figure (amount in amount_sat)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for p in st.payments:
        w.writerow(("payment", p.id, p.created_at, p.status, p.amount_sat, p.fee_sat, p.payment_hash))
    for i in st.invoices:
        w.writerow(("invoice", i.id, i.created_at, i.status, i.amount_paid_sat, 0, i.payment_hash))
    for c in st.channels:
        w.writerow(("channel", c.id, c.created_at, c.status, c.capacity_sat, c.opening_fee_sat, c.channel_point))
    for r in st.liquidity:
        w.writerow(("liquidity", r.id, r.created_at, r.status, r.amount_sat, r.fee_sat, ""))
    for s in st.swaps:
        w.writerow(("swap", s.id, s.created_at, s.state, s.invoice_amount_sat, s.service_fee_sat, s.kind))
    for name, value in st.totals.model_dump(by_alias=True).items():  # the totals under their JSON names
        w.writerow(("total", name, st.to, "", value, "", ""))
    return buf.getvalue()


def statement_html(st: ClientStatement) -> str:
    # The summary and the swaps table are labelled with the JSON (camelCase) names.
    return TEMPLATES.get_template("statement.html").render(
        st=st,
        totals=st.totals.model_dump(by_alias=True),
        swaps=[w.model_dump(by_alias=True) for w in st.swaps],
    )


# --- operator ------------------------------------------------------------------------------------


class VolumeRow(CamelModel):
    """One client's volume in the period."""

    client_id: str
    name: str
    sent_sat: int
    received_sat: int
    payments: int = Field(description="payments that succeeded")
    invoices: int = Field(description="invoices settled")
    fees_paid_sat: int = Field(description="routing, channel-opening and liquidity fees")


def volume_by_client(session: Session, period: Period) -> list[VolumeRow]:
    out = []
    for c in session.scalars(select(Client).order_by(Client.name)):
        st = client_statement(session, c.id, period).totals
        out.append(
            VolumeRow(
                client_id=c.id,
                name=c.name,
                sent_sat=st.sent_sat,
                received_sat=st.received_sat,
                payments=st.payments_succeeded,
                invoices=st.invoices_settled,
                fees_paid_sat=st.routing_fees_sat + st.channel_opening_fees_sat + st.liquidity_fees_sat,
            )
        )
    return out


class AlertSummary(CamelModel):
    total: int
    by_status: dict[str, int]
    by_rule: dict[str, int]
    by_severity: dict[str, int]


def alert_summary(session: Session, period: Period | None = None) -> AlertSummary:
    q = select(ComplianceAlert.rule, ComplianceAlert.severity, ComplianceAlert.status, func.count())
    if period is not None:
        q = q.where(ComplianceAlert.created_at >= period.start, ComplianceAlert.created_at < period.end)
    rows = session.execute(q.group_by(ComplianceAlert.rule, ComplianceAlert.severity, ComplianceAlert.status)).all()
    by_status: dict[str, int] = {}
    by_rule: dict[str, int] = {}
    by_severity: dict[str, int] = {}
    for rule, sev, status, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        by_rule[rule] = by_rule.get(rule, 0) + n
        by_severity[sev] = by_severity.get(sev, 0) + n
    return AlertSummary(total=sum(by_status.values()), by_status=by_status, by_rule=by_rule, by_severity=by_severity)


class RevenueReport(CamelModel):
    """Sats earned in the period (routing fees also in msat, as LND reports them)."""

    channel_opening_fees_sat: int
    liquidity_fees_sat: int
    routing_fees_msat: int
    routing_fees_sat: int
    swap_fees_sat: int = Field(description="service fees of completed swaps")
    total_sat: int


def revenue(session: Session, period: Period) -> RevenueReport:
    opening = session.scalar(
        select(func.coalesce(func.sum(Channel.opening_fee_sat), 0)).where(
            Channel.created_at >= period.start, Channel.created_at < period.end, Channel.status != "failed"
        )
    )
    liquidity = session.scalar(
        select(func.coalesce(func.sum(LiquidityReservation.fee_sat), 0)).where(
            LiquidityReservation.created_at >= period.start, LiquidityReservation.created_at < period.end
        )
    )
    lo, hi = int(period.start.timestamp() * 1e9), int(period.end.timestamp() * 1e9)
    routing_msat = session.scalar(
        select(func.coalesce(func.sum(ForwardingEvent.fee_msat), 0)).where(
            ForwardingEvent.timestamp_ns >= lo, ForwardingEvent.timestamp_ns < hi
        )
    )
    swap_fees = sum(
        w.service_fee_sat
        for w in session.scalars(select(Swap).where(Swap.created_at >= period.start, Swap.created_at < period.end))
        if (w.kind, w.state) in SWAP_DONE
    )
    opening_sat, liquidity_sat, routing_sat = int(opening or 0), int(liquidity or 0), int(routing_msat or 0) // 1000
    return RevenueReport(
        channel_opening_fees_sat=opening_sat,
        liquidity_fees_sat=liquidity_sat,
        routing_fees_msat=int(routing_msat or 0),
        routing_fees_sat=routing_sat,
        swap_fees_sat=swap_fees,
        total_sat=opening_sat + liquidity_sat + routing_sat + swap_fees,
    )


def _ledger_by_ref(session: Session) -> dict[str, int]:
    rows = session.execute(select(LedgerEntry.reference, func.sum(LedgerEntry.amount_sat)).group_by(LedgerEntry.reference))
    return {str(ref): int(total or 0) for ref, total in rows}


class ReconciliationChecked(CamelModel):
    payments: int = Field(description="final payments")
    invoices: int = Field(description="settled invoices")
    channels: int = Field(description="open channels")
    payments_in_flight: int = Field(description="not checked: not final yet")


class ReconciliationSums(CamelModel):
    payments_net_sat: int
    invoices_sat: int


class ReconciliationDifference(CamelModel):
    kind: str
    ref: str = Field(description="payment:<id>, invoice:<id> or channel:<id>")
    client_id: str


class StatusDifference(ReconciliationDifference):
    kind: Literal["payment_status"]
    ledger: str = Field(description="the payment's status in the ledger")
    lnd: str = Field(description="LND's status (or NOT_FOUND, REFUSED_DUPLICATE)")


class AmountDifference(ReconciliationDifference):
    kind: Literal["payment_amount", "channel_capacity"]
    ledger: int = Field(description="sats")
    lnd: int = Field(description="sats")


class LedgerDifference(ReconciliationDifference):
    kind: Literal["payment_ledger", "invoice_ledger"]
    ledger: int = Field(description="the ledger's net for it, sats")
    lnd: int = Field(description="what LND's figures call for, sats")
    difference_sat: int


class MissingChannel(ReconciliationDifference):
    kind: Literal["channel_missing"]
    ledger: int = Field(description="capacity, sats")
    lnd: None


Difference = Annotated[StatusDifference | AmountDifference | LedgerDifference | MissingChannel, Field(discriminator="kind")]


class Reconciliation(CamelModel):
    checked: ReconciliationChecked
    ledger: ReconciliationSums
    lnd: ReconciliationSums
    difference_sat: int
    differences: list[Difference]


async def reconcile(sessions: sessionmaker[Session], lnd: Any) -> Reconciliation:
    """The ledger against LND. For every final payment: LND's status, amount and fee, and the
    ledger's net for it (must be -(amount + fee) if it succeeded, 0 if it failed). For every
    settled invoice: LND's amt_paid and the ledger credit. For every open channel: LND has it,
    with the same capacity. Returns the counts checked and every difference found."""
    with session_scope(sessions) as s:
        pays = [
            (p.id, p.client_id, p.payment_hash, p.amount_sat, p.fee_sat, p.status)
            for p in s.scalars(select(Payment).where(Payment.status.in_(("succeeded", "failed"))))
        ]
        in_flight = int(s.scalar(select(func.count()).where(Payment.status == "in_flight")) or 0)
        invs = [
            (i.id, i.client_id, i.payment_hash, i.amount_paid_sat)
            for i in s.scalars(select(Invoice).where(Invoice.status == "settled"))
        ]
        chans = [
            (c.id, c.client_id, c.channel_point, c.capacity_sat)
            for c in s.scalars(select(Channel).where(Channel.status == "open"))
        ]
        ledger = _ledger_by_ref(s)
    succeeded_hashes = {p[2] for p in pays if p[5] == "succeeded"}
    diffs: list[Difference] = []
    ledger_payments = lnd_payments = ledger_invoices = lnd_invoices = 0
    for pid, cid, phash, amount, fee, status in pays:
        ref = f"payment:{pid}"
        net = ledger.get(ref, 0)
        ledger_payments += net
        try:
            out = await lnd.track_payment(phash, timeout_s=15)
            lnd_status, lnd_value, lnd_fee = out.status, out.value_sat, out.fee_sat
        except LndUnavailable:
            raise
        except LndError as exc:
            if exc.grpc_code != "NOT_FOUND":
                raise
            lnd_status, lnd_value, lnd_fee = "NOT_FOUND", 0, 0
        if lnd_status == "SUCCEEDED" and status == "failed" and phash in succeeded_hashes:
            # Another client's payment of the same invoice is the one LND made; this attempt was refused.
            lnd_status, lnd_value, lnd_fee = "REFUSED_DUPLICATE", 0, 0
        expected = -(lnd_value + lnd_fee) if lnd_status == "SUCCEEDED" else 0
        lnd_payments += expected
        if status == "succeeded" and lnd_status != "SUCCEEDED":
            diffs.append(StatusDifference(kind="payment_status", ref=ref, client_id=cid, ledger=status, lnd=lnd_status))
        if status == "failed" and lnd_status == "SUCCEEDED":
            diffs.append(StatusDifference(kind="payment_status", ref=ref, client_id=cid, ledger=status, lnd=lnd_status))
        if lnd_status == "SUCCEEDED" and (amount, fee) != (lnd_value, lnd_fee):
            diffs.append(
                AmountDifference(
                    kind="payment_amount",
                    ref=ref,
                    client_id=cid,
                    ledger=amount + fee,
                    lnd=lnd_value + lnd_fee,
                )
            )
        if net != expected:
            diffs.append(
                LedgerDifference(
                    kind="payment_ledger",
                    ref=ref,
                    client_id=cid,
                    ledger=net,
                    lnd=expected,
                    difference_sat=net - expected,
                )
            )
    for iid, cid, phash, paid in invs:
        ref = f"invoice:{iid}"
        credit = ledger.get(ref, 0)
        ledger_invoices += credit
        inv = await lnd.lookup_invoice(phash)
        lnd_paid = int(inv.amt_paid_sat)
        lnd_invoices += lnd_paid
        if credit != lnd_paid or paid != lnd_paid:
            diffs.append(
                LedgerDifference(
                    kind="invoice_ledger",
                    ref=ref,
                    client_id=cid,
                    ledger=credit,
                    lnd=lnd_paid,
                    difference_sat=credit - lnd_paid,
                )
            )
    lnd_chans = {c.channel_point: int(c.capacity) for c in await lnd.list_channels()}
    for chid, cid, point, cap in chans:
        if point not in lnd_chans:
            diffs.append(MissingChannel(kind="channel_missing", ref=f"channel:{chid}", client_id=cid, ledger=cap, lnd=None))
        elif lnd_chans[point] != cap:
            diffs.append(
                AmountDifference(
                    kind="channel_capacity",
                    ref=f"channel:{chid}",
                    client_id=cid,
                    ledger=cap,
                    lnd=lnd_chans[point],
                )
            )
    return Reconciliation(
        checked=ReconciliationChecked(
            payments=len(pays),
            invoices=len(invs),
            channels=len(chans),
            payments_in_flight=in_flight,
        ),
        ledger=ReconciliationSums(payments_net_sat=ledger_payments, invoices_sat=ledger_invoices),
        lnd=ReconciliationSums(payments_net_sat=lnd_payments, invoices_sat=lnd_invoices),
        difference_sat=(ledger_payments - lnd_payments) + (ledger_invoices - lnd_invoices),
        differences=diffs,
    )
