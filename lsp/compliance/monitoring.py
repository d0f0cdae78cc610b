"""Transaction monitoring: feed payments, invoices, channel opens (and swaps)
through ``rules.evaluate``, live from the event bus and in batch over history,
and keep the alerts with their review workflow.

Alerts: open -> reviewing -> escalated -> closed (a reason is required to close); any
open state may be closed. A pattern rule (window_s set) that fires again while its
alert's window still overlaps extends that alert (more refs, fresh evidence) instead of
opening a new one, and a transaction already in an alert never counts twice -- so the
live path and ``lsp compliance scan`` agree and a re-scan creates nothing new.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lsp.compliance import audit
from lsp.compliance.policy import Policy, Severity
from lsp.compliance.rules import Hit, Tx, evaluate, max_window_s
from lsp.db.base import DB_UNAVAILABLE, db_error_line, session_scope, utcnow
from lsp.db.models import Channel, Client, Invoice, Payment
from lsp.db.models_compliance import ComplianceAlert
from lsp.db.models_swaps import Swap
from lsp.errors import Conflict, NotFound, ValidationFailed
from lsp.schemas import CamelModel, IsoTime

if TYPE_CHECKING:
    from lsp.context import AppContext

from lsp.services.events import Event

log = logging.getLogger("lsp.compliance")

AlertStatus = Literal["open", "reviewing", "escalated", "closed"]
ALERT_STATES: tuple[str, ...] = get_args(AlertStatus)
ALERT_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("reviewing", "escalated", "closed"),
    "reviewing": ("escalated", "closed", "open"),
    "escalated": ("reviewing", "closed"),
    "closed": (),
}


# --- transactions from the database -------------------------------------------------------------


def load_txs(
    session: Session, *, client_id: str | None = None, since: datetime | None = None, until: datetime | None = None
) -> list[Tx]:
    """Money that moved, oldest first: succeeded/in-flight payments, settled invoices, channels, swaps."""
    # Plain column rows, not ORM objects: this runs for every live event over the client's whole
    # rule window, and entity loading was most of the LSP's monitoring CPU in `lab bench lsp`.
    pq = select(Payment.id, Payment.client_id, Payment.amount_sat, Payment.created_at).where(
        Payment.status.in_(("in_flight", "succeeded"))
    )
    iq = select(Invoice.id, Invoice.client_id, Invoice.amount_paid_sat, Invoice.settled_at).where(
        Invoice.status == "settled", Invoice.settled_at.is_not(None)
    )
    cq = select(Channel.id, Channel.client_id, Channel.capacity_sat, Channel.created_at, Channel.remote_pubkey).where(
        Channel.status.in_(("pending", "open", "closing", "closed"))
    )
    sq = select(Swap.id, Swap.client_id, Swap.invoice_amount_sat, Swap.created_at)
    if client_id is not None:
        pq = pq.where(Payment.client_id == client_id)
        iq = iq.where(Invoice.client_id == client_id)
        cq = cq.where(Channel.client_id == client_id)
        sq = sq.where(Swap.client_id == client_id)
    if since is not None:
        pq = pq.where(Payment.created_at >= since)
        iq = iq.where(Invoice.settled_at >= since)
        cq = cq.where(Channel.created_at >= since)
        sq = sq.where(Swap.created_at >= since)
    txs = [Tx(f"payment:{r[0]}", "out", r[1], r[2], r[3]) for r in session.execute(pq)]
    txs += [Tx(f"invoice:{r[0]}", "in", r[1], r[2], r[3]) for r in session.execute(iq)]  # type: ignore[arg-type]  # settled_at IS NOT NULL above
    txs += [Tx(f"channel:{r[0]}", "channel", r[1], r[2], r[3], r[4]) for r in session.execute(cq)]
    txs += [Tx(f"swap:{r[0]}", "swap", r[1], r[2], r[3]) for r in session.execute(sq)]
    if until is not None:
        txs = [t for t in txs if t.at < until]
    return sorted(txs, key=lambda t: (t.at, t.ref))


# --- alerts ---------------------------------------------------------------------------------------


def _evidence(a: ComplianceAlert) -> dict[str, Any]:
    ev: dict[str, Any] = json.loads(a.evidence or "{}")
    return ev


class AlertBook:
    """Recent alerts per (rule, client), read once and kept parsed while a batch of hits is stored.

    A busy client keeps extending the same open alert (its evidence lists every transaction), and
    reading and re-parsing that alert for every hit cost more than the hit's own evaluation, growing
    with the alert. The book loads each (rule, client)'s recent alerts once, extends them in memory
    and writes each changed alert once (``write``)."""

    def __init__(self, session: Session):
        self.session = session
        self._recent: dict[tuple[str, str], list[tuple[ComplianceAlert, dict[str, Any]]]] = {}
        self._changed: dict[int, tuple[ComplianceAlert, dict[str, Any]]] = {}

    def _candidates(self, rule: str, client_id: str) -> list[tuple[ComplianceAlert, dict[str, Any]]]:
        key = (rule, client_id)
        if key not in self._recent:
            alerts = self.session.scalars(
                select(ComplianceAlert)
                .where(ComplianceAlert.rule == rule, ComplianceAlert.client_id == client_id)
                .order_by(ComplianceAlert.id.desc())
                .limit(50)
            )
            self._recent[key] = [(a, _evidence(a)) for a in alerts]
        return self._recent[key]

    def upsert(self, hit: Hit) -> tuple[ComplianceAlert, bool] | None:
        """Store a hit: (alert, created) -- or None when it adds nothing (its transactions are known)."""
        candidates = self._candidates(hit.rule, hit.client_id)
        new_ref = hit.refs[-1] if hit.window_s is not None else hit.refs[0]
        if any(new_ref in ev.get("refs", ()) for _, ev in candidates):
            return None
        if hit.window_s is not None:
            span = timedelta(seconds=hit.window_s)
            for a, ev in candidates:
                first = datetime.fromisoformat(ev.get("firstAt", a.last_event_at.isoformat()))
                if a.status != "closed" and first - span <= hit.at <= a.last_event_at + span:
                    ev["refs"] = list(dict.fromkeys([*ev.get("refs", []), *hit.refs]))
                    ev.update({k: v for k, v in hit.evidence.items() if k != "refs"})
                    a.summary = hit.summary
                    a.last_event_at = max(a.last_event_at, hit.at)
                    self._changed[a.id] = (a, ev)
                    return a, False
        ev = {**hit.evidence, "refs": list(hit.refs), "firstAt": hit.at.isoformat()}
        a = ComplianceAlert(
            rule=hit.rule,
            severity=hit.severity,
            client_id=hit.client_id,
            status="open",
            summary=hit.summary,
            evidence=json.dumps(ev, sort_keys=True),
            last_event_at=hit.at,
        )
        self.session.add(a)
        self.session.flush()
        candidates.insert(0, (a, ev))
        audit.record(
            self.session,
            actor="system:monitoring",
            action="alert.raise",
            target=f"alert:{a.id}",
            after={"rule": a.rule, "severity": a.severity, "clientId": a.client_id, "summary": a.summary},
        )
        return a, True

    def write(self) -> None:
        """Write every alert the hits extended (once each)."""
        for a, ev in self._changed.values():
            a.evidence = json.dumps(ev, sort_keys=True)
        self._changed.clear()
        self.session.flush()


def _created_at(session: Session, client_id: str) -> datetime | None:
    c = session.get(Client, client_id)
    return c.created_at if c is not None else None


def process(session: Session, policy: Policy, tx: Tx) -> list[ComplianceAlert]:
    """Evaluate one new transaction against the client's recent history; returns alerts created."""
    return process_many(session, policy, [tx])


def process_many(session: Session, policy: Policy, txs: list[Tx]) -> list[ComplianceAlert]:
    """``process`` for several new transactions, in order, loading each client's history once."""
    created = []
    window = timedelta(seconds=max_window_s(policy.rules))
    histories: dict[str, list[Tx]] = {}
    for client_id in dict.fromkeys(t.client_id for t in txs):
        since = min(t.at for t in txs if t.client_id == client_id) - window
        histories[client_id] = load_txs(session, client_id=client_id, since=since)
    # Evaluate everything before writing anything: the first write takes SQLite's write lock (and
    # upserts lock alert rows on PostgreSQL) until commit, and the API's payments wait for it.
    # ``evaluate`` only looks back from ``tx`` (its windows end at tx.at), so one history that
    # also holds the batch's later transactions gives the same answers.
    onboarded = {client_id: _created_at(session, client_id) for client_id in histories}
    hits = [hit for tx in txs for hit in evaluate(policy.rules, tx, histories[tx.client_id], onboarded[tx.client_id])]
    book = AlertBook(session)
    for hit in hits:
        res = book.upsert(hit)
        if res is not None and res[1]:
            created.append(res[0])
    book.write()
    return created


@dataclass
class ScanResult:
    transactions: int
    hits: int
    created: int
    extended: int


def scan(session: Session, policy: Policy, *, since: datetime | None = None, until: datetime | None = None) -> ScanResult:
    """Replay history through the rules, each transaction seeing only what came before it."""
    txs = load_txs(session, since=since, until=until)
    by_client: dict[str, list[Tx]] = {}
    result = ScanResult(len(txs), 0, 0, 0)
    book = AlertBook(session)
    onboarded: dict[str, datetime | None] = {}
    for tx in txs:
        prior = by_client.setdefault(tx.client_id, [])
        if tx.client_id not in onboarded:
            onboarded[tx.client_id] = _created_at(session, tx.client_id)
        for hit in evaluate(policy.rules, tx, prior, onboarded[tx.client_id]):
            result.hits += 1
            res = book.upsert(hit)
            if res is not None:
                if res[1]:
                    result.created += 1
                else:
                    result.extended += 1
        prior.append(tx)
    book.write()
    return result


# The live worker, the start-up catch-up and the admin scan never evaluate at the same time: each reads the alerts
# before it writes, so two at once could both raise the same hit.
EVALUATING = threading.Lock()


def catch_up(sessions: sessionmaker[Session], policy: Policy, *, now: datetime | None = None) -> ScanResult:
    """Re-run the rules over the recent past when the LSP starts.

    The live path sees a transaction through an event that is only in memory. If the process dies
    after the change commits but before its batch is handled (kill -9, power loss), the event is
    gone, and an alert it should have raised would wait for the next manual ``lsp compliance
    scan``. This replays twice the rules' longest window. Every transaction of the last window
    sees its whole window of history; the older half only confirms what is known. The scan is
    idempotent: a transaction already in an alert is never counted again, so a clean restart
    creates nothing."""
    since = (now or utcnow()) - 2 * timedelta(seconds=max_window_s(policy.rules))
    with EVALUATING, session_scope(sessions) as s:
        return scan(s, policy, since=since)


def raise_manual(session: Session, hit: Hit) -> ComplianceAlert | None:
    book = AlertBook(session)
    res = book.upsert(hit)
    book.write()
    return res[0] if res else None


def transition(session: Session, alert_id: int, status: str, *, actor: str, reason: str | None) -> ComplianceAlert:
    a = session.get(ComplianceAlert, alert_id)
    if a is None:
        raise NotFound(f"no alert {alert_id}")
    if status not in ALERT_STATES:
        raise ValidationFailed(f"status must be one of {list(ALERT_STATES)}", field="body.status")
    if status not in ALERT_TRANSITIONS[a.status]:
        raise Conflict(
            f"cannot move a {a.status} alert to {status} (allowed: {list(ALERT_TRANSITIONS[a.status])})",
            field="body.status",
        )
    if status == "closed" and not (reason and reason.strip()):
        raise ValidationFailed("closing an alert needs a reason", field="body.reason")
    before = {"status": a.status}
    a.status = status
    if status == "closed":
        a.close_reason = reason
    a.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"alert.{status}",
        target=f"alert:{a.id}",
        before=before,
        after={"status": status, "reason": reason},
    )
    return a


class AlertView(CamelModel):
    id: int
    rule: str
    severity: Severity
    client_id: str | None
    status: AlertStatus
    summary: str
    evidence: dict[str, Any] = Field(description="the transactions and figures that triggered it (per rule)")
    close_reason: str | None
    last_event_at: IsoTime = Field(description="the newest transaction it covers")
    created_at: IsoTime
    updated_at: IsoTime


def alert_view(a: ComplianceAlert) -> AlertView:
    return AlertView(
        id=a.id,
        rule=a.rule,
        severity=a.severity,
        client_id=a.client_id,
        status=a.status,
        summary=a.summary,
        evidence=_evidence(a),
        close_reason=a.close_reason,
        last_event_at=a.last_event_at.isoformat(),
        created_at=a.created_at.isoformat(),
        updated_at=a.updated_at.isoformat(),
    )


def list_alerts(session: Session, *, status: str | None = None, limit: int = 500) -> list[ComplianceAlert]:
    q = select(ComplianceAlert).order_by(ComplianceAlert.id.desc()).limit(limit)
    if status is not None:
        q = q.where(ComplianceAlert.status == status)
    return list(session.scalars(q))


# --- live: the event bus ---------------------------------------------------------------------------


def tx_for_event(session: Session, event: Event) -> Tx | None:
    d = event.data
    if event.type == "payment_sent" and event.client_id:
        found = session.execute(
            select(Payment.id, Payment.amount_sat, Payment.created_at).where(
                Payment.client_id == event.client_id, Payment.payment_hash == d.get("paymentHash")
            )
        ).first()
        return Tx(f"payment:{found[0]}", "out", event.client_id, found[1], found[2]) if found else None
    if event.type == "payment_received" and d.get("invoiceId"):
        i = session.get(Invoice, d["invoiceId"])
        if i is not None and i.settled_at is not None:
            return Tx(f"invoice:{i.id}", "in", i.client_id, i.amount_paid_sat, i.settled_at)
    if event.type == "channel_opened" and d.get("channelId"):
        c = session.get(Channel, d["channelId"])
        if c is not None:
            return Tx(f"channel:{c.id}", "channel", c.client_id, c.capacity_sat, c.created_at, c.remote_pubkey)
    if event.type == "swap_updated" and (d.get("kind"), d.get("state")) in SWAP_MONEY_MOVED:
        w = session.get(Swap, d.get("swapId"))
        if w is not None:
            return Tx(f"swap:{w.id}", "swap", w.client_id, w.invoice_amount_sat, w.created_at)
    return None


# The state in which a swap's client has committed its money, once per swap: a swap-in's lockup is
# in and the LSP is about to pay (every swap-in passes invoice_pending, 0-conf or not); a reverse
# swap's hold invoice is paid. The same ref as the batch scan's, so a later scan adds no alert.
SWAP_MONEY_MOVED = {("submarine", "invoice_pending"), ("reverse", "invoice_accepted")}


def install(ctx: AppContext, policy: Policy) -> None:
    """Subscribe monitoring to the app's event bus. (The changes behind the events are audited in
    the transactions that make them: lsp/services, lsp/swaps.)"""

    def on_events(batch: list[Event]) -> None:
        # One transaction per batch: under a burst of payments the worker falls behind and then
        # catches up in a few commits instead of one per event.
        with EVALUATING, session_scope(ctx.sessions) as s:
            txs = []
            for event in batch:
                tx = tx_for_event(s, event)
                if tx is not None:
                    txs.append(tx)
            raised = process_many(s, policy, txs) if txs else []
            views = [alert_view(a) for a in raised]
        for v in views:
            log.warning("compliance alert %s: %s (%s)", v.id, v.summary, v.rule)
            # Operators only (the dashboard's stream), never the client's WebSocket or webhooks.
            hub = ctx.dashboard_live
            if hub is not None:
                hub.on_event(
                    Event(
                        "alert_raised",
                        v.client_id,
                        {"alertId": v.id, "rule": v.rule, "severity": v.severity, "summary": v.summary},
                    )
                )

    worker = EventWorker(on_events)
    ctx.compliance_worker = worker
    ctx.bus.add_listener(worker.submit)
    ctx.metrics.compliance_pending.set_function(worker.pending)


class EventWorker:
    """Runs the listener on a thread of its own, in event order, on batches of what is queued
    (gathered for up to ``GATHER_S``).

    ``EventBus.publish`` is called on the event loop; waiting there for SQLite's write lock
    would stall the loop -- and with it the request that holds the lock and needs the loop to
    commit (a deadlock until the busy timeout; seen in the live busy test). The thread exits
    after ``IDLE_S`` without events and is started again by the next one. A batch that fails
    is retried event by event, so one bad event costs only itself."""

    IDLE_S = 5.0
    MAX_BATCH = 200
    # After the first event, gather what else arrives for this long: monitoring is not on any
    # request's path, and one batch loads each client's rule window once instead of per event
    # (the window query dominated the LSP's CPU per payment in `lab bench lsp`).
    GATHER_S = 2.0

    def __init__(self, handle: Callable[[list[Event]], None]):
        self._handle = handle
        self._q: queue.Queue[Event] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._busy = 0
        self._flushing = threading.Event()

    def submit(self, event: Event) -> None:
        with self._lock:
            self._busy += 1
        self._q.put(event)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lsp-compliance", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        """Events submitted and not handled yet (alerts and the audit lag behind by this many)."""
        with self._lock:
            return self._busy

    def idle(self) -> bool:
        """True when every submitted event has been handled (shutdown uses it)."""
        return self.pending() == 0

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Handle what is queued now, without the gathering pause (at shutdown). True if all done."""
        self._flushing.set()
        deadline = time.monotonic() + timeout_s
        while not self.idle() and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.idle()

    def _run(self) -> None:
        while True:
            try:
                batch = [self._q.get(timeout=self.IDLE_S)]
            except queue.Empty:
                with self._lock:
                    if self._q.empty():
                        self._thread = None
                        return
                continue
            deadline = time.monotonic() + self.GATHER_S
            while len(batch) < self.MAX_BATCH:
                try:
                    if self._flushing.is_set():
                        batch.append(self._q.get_nowait())
                    else:
                        batch.append(self._q.get(timeout=max(0.0, min(0.1, deadline - time.monotonic()))))
                except queue.Empty:
                    if self._flushing.is_set() or time.monotonic() >= deadline:
                        break
            try:
                self._handle_batch(batch)
            finally:
                with self._lock:
                    self._busy -= len(batch)

    DB_RETRY_FOR_S = 600.0  # a database outage longer than this loses monitoring until catch_up at start

    def _handle_batch(self, batch: list[Event]) -> None:
        try:
            self._handle_waiting_out_outages(batch)
            return
        except Exception:
            if len(batch) == 1:  # one bad event must not stop monitoring
                log.exception("compliance listener failed on %s", batch[0].type)
                return
        for item in batch:
            self._handle_batch([item])

    def _handle_waiting_out_outages(self, batch: list[Event]) -> None:
        """Handle the batch; while the database is unavailable, wait and try again (the events
        must still be audited and monitored once it is back), up to ``DB_RETRY_FOR_S``."""
        deadline = time.monotonic() + self.DB_RETRY_FOR_S
        delay = 0.5
        while True:
            try:
                self._handle(batch)
                return
            except DB_UNAVAILABLE as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "compliance: database unavailable (%s); %d event(s) wait %.1f s", db_error_line(exc), len(batch), delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
