"""Compliance endpoints: KYC decisions, alerts, operator reports (admin key) and the client's statement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import Field

from lsp.api.deps import DB, Ctx, CurrentClient, get_lnd, require_admin
from lsp.api.schemas import ERROR_RESPONSES, MAX_DB_ID, CamelModel, IsoTime
from lsp.compliance import audit, kyc, monitoring, reports
from lsp.compliance.kyc import KycQueueItem, KycState, KycView
from lsp.compliance.monitoring import AlertStatus, AlertView
from lsp.compliance.reports import AlertSummary, ClientStatement, Reconciliation, RevenueReport, VolumeRow
from lsp.db.base import session_scope
from lsp.errors import ValidationFailed

admin = APIRouter(prefix="/api/admin", tags=["admin"], responses=ERROR_RESPONSES, dependencies=[Depends(require_admin)])
client_router = APIRouter(prefix="/api/enterprise", tags=["enterprise"], responses=ERROR_RESPONSES)


def parse_period(frm: str | None, to: str | None) -> reports.Period:
    """ISO dates or datetimes (UTC if no zone); default: the last 30 days. ``to`` is exclusive."""

    def parse(value: str, name: str) -> datetime:
        try:
            d = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationFailed(f"{name} must be an ISO-8601 date or datetime", field=f"query.{name}") from None
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    end = parse(to, "to") if to else datetime.now(UTC) + timedelta(seconds=1)
    if frm:
        start = parse(frm, "from")
    elif end - datetime.min.replace(tzinfo=UTC) < timedelta(days=30):
        raise ValidationFailed("to is too early for the default 30-day period: give from as well", field="query.to")
    else:
        start = end - timedelta(days=30)
    if start >= end:
        raise ValidationFailed("from must be before to", field="query.from")
    return reports.Period(start, end)


From = Annotated[str | None, Query(alias="from")]
To = Annotated[str | None, Query()]


class KycDecision(CamelModel):
    state: KycState
    tier: str | None = None
    fields: dict[str, Any] | None = None
    reason: str | None = Field(default=None, max_length=2000)


class KycSubmission(CamelModel):
    fields: dict[str, Any] = Field(description="e.g. legal_name, email, country, registration_number")


class AlertTransition(CamelModel):
    status: AlertStatus
    reason: str | None = Field(default=None, max_length=2000)


class ScanView(CamelModel):
    transactions: int = Field(description="transactions replayed through the rules")
    hits: int
    created: int = Field(description="new alerts")
    extended: int = Field(description="existing alerts that took in new transactions")


class AuditProblem(CamelModel):
    seq: int | None = Field(description="null for a truncated chain")
    kind: Literal["edited", "missing", "reordered", "truncated"]
    detail: str


class AuditEntryView(CamelModel):
    seq: int
    at: IsoTime
    actor: str
    action: str
    target: str
    before: str | None = Field(description="the state before, as the JSON text that was hashed")
    after: str | None = Field(description="the state after, as the JSON text that was hashed")
    request_id: str | None
    hash: str


class AuditLogView(CamelModel):
    entries: int = Field(description="entries in the whole chain")
    intact: bool
    problems: list[AuditProblem] = Field(description="every break in the hash chain (none when intact)")
    log: list[AuditEntryView] = Field(description="newest first, a page of limit entries from offset")


@admin.post("/clients/{client_id}/kyc", response_model=KycView)
def decide_kyc(client_id: str, body: KycDecision, db: DB, ctx: Ctx) -> KycView:
    prof = kyc.change_state(
        db,
        ctx.settings,
        client_id,
        state=body.state,
        actor="admin:api",
        tier=body.tier,
        fields=body.fields,
        reason=body.reason,
    )
    return kyc.view(prof, kyc.policy_of(ctx.settings))


@admin.get("/clients/{client_id}/kyc", response_model=KycView)
def get_kyc(client_id: str, db: DB, ctx: Ctx) -> KycView:
    return kyc.view(kyc.get_profile(db, ctx.settings, client_id), kyc.policy_of(ctx.settings))


@admin.get("/kyc", response_model=list[KycQueueItem])
def kyc_queue(db: DB, ctx: Ctx) -> list[KycQueueItem]:
    policy = kyc.policy_of(ctx.settings)
    return [kyc.queue_item(c, p, policy) for c, p in kyc.queue(db, ctx.settings)]


@admin.get("/alerts", response_model=list[AlertView])
def alerts(db: DB, status: Annotated[str | None, Query()] = None) -> list[AlertView]:
    return [monitoring.alert_view(a) for a in monitoring.list_alerts(db, status=status)]


@admin.post("/alerts/{alert_id}", response_model=AlertView)
def review_alert(alert_id: Annotated[int, Path(ge=1, le=MAX_DB_ID)], body: AlertTransition, db: DB) -> AlertView:
    a = monitoring.transition(db, alert_id, body.status, actor="admin:api", reason=body.reason)
    return monitoring.alert_view(a)


@admin.post("/compliance/scan", response_model=ScanView)
def scan(ctx: Ctx, frm: From = None, to: To = None) -> dict[str, int]:
    p = parse_period(frm, to) if (frm or to) else None
    # Not beside the live worker (both read the alerts before writing): committed inside the lock.
    with monitoring.EVALUATING, session_scope(ctx.sessions) as db:
        r = monitoring.scan(db, kyc.policy_of(ctx.settings), since=p.start if p else None, until=p.end if p else None)
    return {"transactions": r.transactions, "hits": r.hits, "created": r.created, "extended": r.extended}


@admin.get("/audit", response_model=AuditLogView)
def audit_log(
    db: DB, limit: Annotated[int, Query(ge=1, le=1000)] = 200, offset: Annotated[int, Query(ge=0)] = 0
) -> dict[str, Any]:
    n, problems = audit.verify(db)
    return {
        "entries": n,
        "intact": not problems,
        "problems": [p.__dict__ for p in problems],
        "log": [
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "before": e.before,
                "after": e.after,
                "requestId": e.request_id,
                "hash": e.hash,
            }
            for e in audit.recent(db, limit=limit, offset=offset)
        ],
    }


@admin.get("/reports/volume", response_model=list[VolumeRow])
def report_volume(db: DB, frm: From = None, to: To = None) -> list[VolumeRow]:
    return reports.volume_by_client(db, parse_period(frm, to))


@admin.get("/reports/alerts", response_model=AlertSummary)
def report_alerts(db: DB, frm: From = None, to: To = None) -> AlertSummary:
    return reports.alert_summary(db, parse_period(frm, to))


@admin.get("/reports/revenue", response_model=RevenueReport)
def report_revenue(db: DB, frm: From = None, to: To = None) -> RevenueReport:
    return reports.revenue(db, parse_period(frm, to))


@admin.get("/reports/reconciliation", response_model=Reconciliation)
async def report_reconciliation(ctx: Ctx) -> Reconciliation:
    return await reports.reconcile(ctx.sessions, get_lnd(ctx))


@client_router.get(
    "/reports",
    response_model=ClientStatement,
    responses={
        200: {
            "description": "The statement as JSON (format=json), CSV (format=csv: a row per line item, then the totals) "
            "or an HTML page (format=html)",
            "content": {"text/csv": {"schema": {"type": "string"}}, "text/html": {"schema": {"type": "string"}}},
        }
    },
)
def statement(
    client: CurrentClient,
    db: DB,
    frm: From = None,
    to: To = None,
    format: Annotated[Literal["json", "csv", "html"], Query()] = "json",
) -> Response | ClientStatement:
    """The client's statement for [from, to): payments, invoices, fees, channels (and swaps)."""
    st = reports.client_statement(db, client.id, parse_period(frm, to))
    if format == "csv":
        name = f"statement-{client.id}-{st.from_[:10]}-{st.to[:10]}.csv"
        return PlainTextResponse(
            reports.statement_csv(st),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    if format == "html":
        return HTMLResponse(reports.statement_html(st))
    return st


@client_router.get("/kyc", response_model=KycView)
def my_kyc(client: CurrentClient, db: DB, ctx: Ctx) -> KycView:
    return kyc.view(kyc.get_profile(db, ctx.settings, client.id), kyc.policy_of(ctx.settings))


@client_router.post("/kyc", response_model=KycView)
def submit_kyc(body: KycSubmission, client: CurrentClient, db: DB, ctx: Ctx) -> KycView:
    prof = kyc.submit_fields(db, ctx.settings, client.id, body.fields)
    return kyc.view(prof, kyc.policy_of(ctx.settings))


def record_denied_attempt(ctx: Ctx, client_id: str, destination: str, amount_sat: int) -> None:
    """A blocked payment to a deny-listed node is itself an alert (after the refused transaction rolled back)."""
    from lsp.compliance.rules import Hit
    from lsp.db.base import utcnow

    policy = kyc.policy_of(ctx.settings)
    now = utcnow()
    with session_scope(ctx.sessions) as s:
        monitoring.raise_manual(
            s,
            Hit(
                "deny_list",
                policy.rules.deny_list.severity,
                client_id,
                f"blocked payment of {amount_sat} sat to deny-listed node {destination[:16]}...",
                (f"attempt:{destination}:{now.isoformat()}",),
                now,
                None,
                {"counterparty": destination, "amountSat": amount_sat, "blocked": True},
            ),
        )
