"""Dashboard pages: overview, channels, hosted nodes, clients + KYC queue, alerts, orders/swaps, audit log.

Everything is rendered on the server from the same services the API uses; the only
JavaScript is the overview's EventSource, which adds live events as they happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import func, inspect, select, text

from lsp.api.schemas import MAX_DB_ID
from lsp.compliance import audit, kyc, monitoring, reports
from lsp.context import AppContext
from lsp.dashboard import charts, session
from lsp.dashboard.live import Broadcaster
from lsp.db.base import session_scope, utcnow
from lsp.db.models import Channel, Client, Invoice, Payment
from lsp.db.models_compliance import ComplianceAlert, KycProfile
from lsp.errors import LSPError
from lsp.security.ratelimit import MAX_AUTH_FAILURES_PER_MINUTE
from lsp.services import liquidity, security

log = logging.getLogger("lsp.dashboard")
router = APIRouter(prefix="/dashboard", include_in_schema=False)
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=select_autoescape(["html"]))
TEMPLATES.filters["sat"] = lambda v: f"{int(v or 0):,}"
TEMPLATES.filters["fromjson"] = json.loads


def _ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def _authed(request: Request) -> bool:
    return session.valid(_ctx(request).settings, request.cookies.get(session.COOKIE))


def _render(name: str, request: Request, **kw: Any) -> HTMLResponse:
    kw.setdefault("msg", request.query_params.get("msg"))
    kw.setdefault("err", request.query_params.get("err"))
    return HTMLResponse(TEMPLATES.get_template(name).render(page=name.removesuffix(".html"), **kw))


def _login_redirect() -> RedirectResponse:
    return RedirectResponse("/dashboard/login", status_code=303)


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host")


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return _render("login.html", request)


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    form = await _form(request)
    ctx = _ctx(request)
    settings = ctx.settings
    key = f"dashboard-login-failures:{request.client.host if request.client else '?'}"
    wait = ctx.limiter.blocked(key, MAX_AUTH_FAILURES_PER_MINUTE)
    if wait is not None:
        refused = _render("login.html", request, err=f"too many wrong passwords; try again in {wait} s")
        refused.status_code, refused.headers["Retry-After"] = 429, str(wait)
        return refused
    if not session.password_ok(settings, form.get("password", "")):
        ctx.limiter.hit(key, MAX_AUTH_FAILURES_PER_MINUTE)
        return _render("login.html", request, err="wrong password")
    resp = RedirectResponse("/dashboard", status_code=303)
    resp.set_cookie(
        session.COOKIE,
        session.issue(settings),
        max_age=session.TTL_S,
        httponly=True,
        samesite="strict",
        secure=settings.network == "mainnet",
        path="/dashboard",
    )
    return resp


@router.post("/logout")
def logout() -> RedirectResponse:
    resp = _login_redirect()
    resp.delete_cookie(session.COOKIE, path="/dashboard")
    return resp


# --- overview -----------------------------------------------------------------------------------


def _hourly(pays: list[Payment], hours: int = 24) -> tuple[list[str], list[int], list[int]]:
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=hours - 1)
    labels = [(start + timedelta(hours=i)).strftime("%H") for i in range(hours)]
    ok, bad = [0] * hours, [0] * hours
    for p in pays:
        idx = int((p.created_at - start).total_seconds() // 3600)
        if 0 <= idx < hours:
            if p.status == "succeeded":
                ok[idx] += 1
            elif p.status == "failed":
                bad[idx] += 1
    return labels, ok, bad


@router.get("", response_model=None)
async def overview(request: Request) -> Response:
    if not _authed(request):
        return _login_redirect()
    ctx = _ctx(request)
    since = utcnow() - timedelta(hours=24)

    def read() -> tuple[list[Payment], list[Payment], list[Invoice], dict[str, str], reports.RevenueReport, dict[str, int]]:
        """Off the event loop, as all database work (docs/LSP.md)."""
        with session_scope(ctx.sessions) as s:
            pays = list(s.scalars(select(Payment).where(Payment.created_at >= since)))
            recent = list(s.scalars(select(Payment).order_by(Payment.created_at.desc()).limit(15)))
            received = list(
                s.scalars(select(Invoice).where(Invoice.status == "settled").order_by(Invoice.settled_at.desc()).limit(10))
            )
            names = {c.id: c.name for c in s.scalars(select(Client))}
            rev30 = reports.revenue(s, reports.Period(utcnow() - timedelta(days=30), utcnow() + timedelta(seconds=1)))
            counts = {
                "clients": int(s.scalar(select(func.count()).select_from(Client)) or 0),
                "kycPending": int(
                    s.scalar(select(func.count()).select_from(KycProfile).where(KycProfile.state == "pending")) or 0
                ),
                "alertsOpen": int(
                    s.scalar(select(func.count()).select_from(ComplianceAlert).where(ComplianceAlert.status != "closed")) or 0
                ),
            }
            return pays, recent, received, names, rev30, counts

    pays, recent, received, names, rev30, counts = await asyncio.to_thread(read)
    labels, ok, bad = _hourly(pays)
    lat = [(p.completed_at - p.created_at).total_seconds() for p in pays if p.completed_at and p.status == "succeeded"]
    done = sum(ok) + sum(bad)
    stats = {
        "payments24h": len(pays),
        "successRate": f"{100 * sum(ok) / done:.1f} %" if done else "-",
        "latencyMedian": f"{sorted(lat)[len(lat) // 2]:.2f} s" if lat else "-",
        "volume24h": sum(p.amount_sat for p in pays if p.status == "succeeded"),
    }
    node: dict[str, Any] = {"available": False}
    if ctx.lnd is not None:
        try:
            bal = await ctx.lnd.channel_balance()
            chans = await ctx.lnd.list_channels()
            node = {
                "available": True,
                "channels": len(chans),
                "capacity": sum(int(c.capacity) for c in chans),
                "outbound": int(bal.local_balance.sat),
                "inbound": int(bal.remote_balance.sat),
                "active": sum(1 for c in chans if c.active),
            }
        except LSPError as exc:
            node = {"available": False, "error": exc.message}
    return _render(
        "overview.html",
        request,
        node=node,
        stats=stats,
        counts=counts,
        revenue=rev30,
        recent=recent,
        received=received,
        names=names,
        success_chart=charts.stacked_bars(labels, [("succeeded", "#2e8b57", ok), ("failed", "#c0392b", bad)]),
        latency_chart=charts.histogram(lat, [0.5, 1, 2, 5, 10, 30], "s"),
    )


@router.get("/events")
async def events(request: Request) -> Response:
    """Server-sent events: every bus event (the overview's live feed)."""
    if not _authed(request):
        return Response(status_code=401)
    hub = _ctx(request).dashboard_live
    assert hub is not None, "dashboard.install(ctx) runs in create_app"

    async def stream() -> AsyncIterator[str]:
        with hub.subscribe() as q:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                try:
                    msg = await asyncio.wait_for(q.get(), timeout=10)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {msg}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


# --- channels -------------------------------------------------------------------------------------


def _health(active: bool, local: int, capacity: int) -> str:
    if not active:
        return "inactive"
    ratio = local / capacity if capacity else 0
    if ratio < 0.1:
        return "outbound depleted"
    if ratio > 0.9:
        return "inbound depleted"
    return "healthy"


@router.get("/channels", response_model=None)
async def channels_page(request: Request) -> Response:
    if not _authed(request):
        return _login_redirect()
    ctx = _ctx(request)

    def read_ours() -> tuple[dict[str, Channel], dict[str, str], list[dict[str, Any]], dict[str, Any]]:
        """Off the event loop, as all database work (docs/LSP.md)."""
        with session_scope(ctx.sessions) as s:
            ours = {c.channel_point: c for c in s.scalars(select(Channel)) if c.channel_point}
            names = {c.id: c.name for c in s.scalars(select(Client))}
            db_rows = [
                {
                    "id": c.id,
                    "client": names.get(c.client_id, c.client_id),
                    "status": c.status,
                    "capacity": c.capacity_sat,
                    "point": c.channel_point,
                }
                for c in ours.values()
            ]
            live = liquidity.live_reservations(s)
            book = {
                "reserved": sum(r.amount_sat - r.used_sat for r in live),
                "in_flight": liquidity.in_flight_unreserved(s),
                "reservations": [
                    {
                        "id": r.id,
                        "client": names.get(r.client_id, r.client_id),
                        "amount": r.amount_sat,
                        "used": r.used_sat,
                        "remaining": r.amount_sat - r.used_sat,
                        "expires": r.expires_at.strftime("%Y-%m-%d %H:%M:%S"),
                    }
                    for r in live
                ],
            }
            return ours, names, db_rows, book

    ours, names, db_rows, book = await asyncio.to_thread(read_ours)
    rows: list[dict[str, Any]] = []
    error = None
    spendable = 0
    towers: security.SecurityView | None = None
    if ctx.lnd is not None:
        try:
            fees = {f.channel_point: f for f in await ctx.lnd.fee_report()}
            for c in await ctx.lnd.list_channels():
                ch = ours.get(c.channel_point)
                fee = fees.get(c.channel_point)
                rows.append(
                    {
                        "point": c.channel_point,
                        "peer": c.remote_pubkey,
                        "capacity": int(c.capacity),
                        "local": int(c.local_balance),
                        "remote": int(c.remote_balance),
                        "active": bool(c.active),
                        "private": bool(c.private),
                        "client": names.get(ch.client_id, ch.client_id) if ch else None,
                        "health": _health(bool(c.active), int(c.local_balance), int(c.capacity)),
                        # what the dynamic fee policy set (LSP_FEES_*), or the operator
                        "fee_ppm": int(fee.fee_per_mil) if fee else None,
                        "inbound_ppm": int(fee.inbound_fee_per_mil) if fee else None,
                    }
                )
                if c.active:  # what the outbound book counts (lsp.services.liquidity.spendable_outbound)
                    spendable += max(0, int(c.local_balance) - int(c.local_constraints.chan_reserve_sat))
            book["spendable"] = spendable
            book["free"] = spendable - book["reserved"] - book["in_flight"]
            towers = await security.security_view(ctx, ctx.lnd)
        except LSPError as exc:
            error = exc.message
    else:
        error = "LND is not connected"
    return _render("channels.html", request, rows=rows, db_rows=db_rows, lnd_error=error, book=book, towers=towers)


# --- hosted nodes ---------------------------------------------------------------------------------

# The badge's colour class (base.html) per health.
NODE_BADGES = {
    "healthy": "s-healthy",
    "degraded": "s-failed",
    "unknown": "s-pending",
    "provisioning": "s-pending",
    "deleting": "s-pending",
}


def _node_health(state: str, container: str) -> str:
    """A hosted node's badge: the state the LSP holds against what the orchestrator says of its container."""
    if container == "unknown":
        return "unknown"  # the orchestrator did not answer
    if state in ("provisioning", "deleting"):
        return state
    if state == "running" and container == "running":
        return "healthy"
    if state == "stopped" and container == "stopped":
        return "stopped"
    return "degraded"  # failed, its container restarting or gone, or not in the state the LSP holds


@router.get("/nodes", response_model=None)
async def nodes_page(request: Request) -> Response:
    """Hosted nodes (lsp/hosting): each node and its container, the orphan containers, the supervisor's last pass."""
    if not _authed(request):
        return _login_redirect()
    ctx = _ctx(request)
    hosting = ctx.hosting
    if hosting is None:
        return _render("nodes.html", request, enabled=False)
    seen = await hosting.health()
    nodes, orch_error = seen.nodes, seen.error
    client_ids = {n["clientId"] for n in nodes}

    def read_names() -> dict[str, str]:
        """Off the event loop, as all database work (docs/LSP.md)."""
        with session_scope(ctx.sessions) as s:
            return {cid: name for cid, name in s.execute(select(Client.id, Client.name).where(Client.id.in_(client_ids)))}

    names = await asyncio.to_thread(read_names) if client_ids else {}
    rows = []
    for n in nodes:
        health = _node_health(n["state"], n["container"])
        rows.append({**n, "client": names.get(n["clientId"]), "health": health, "badge": NODE_BADGES.get(health, "")})
    last = hosting.last_pass
    return _render(
        "nodes.html",
        request,
        enabled=True,
        orchestrator=hosting.settings.orchestrator,
        rows=rows,
        orch_error=orch_error,
        orphans=hosting.orphans,
        last_pass=last.strftime("%Y-%m-%d %H:%M:%S") if last else None,
        last_pass_ago=int((utcnow() - last).total_seconds()) if last else None,
        interval=hosting.settings.monitor_interval_s,
    )


# --- clients and KYC ---------------------------------------------------------------------------------


@router.get("/clients", response_model=None)
def clients_page(request: Request) -> Response:
    if not _authed(request):
        return _login_redirect()
    ctx = _ctx(request)
    policy = kyc.policy_of(ctx.settings)
    with session_scope(ctx.sessions) as s:
        rows = [(c, kyc.view(p, policy)) for c, p in kyc.queue(s, ctx.settings)]
    return _render("clients.html", request, rows=rows, tiers=policy.tiers)


@router.post("/clients/{client_id}/kyc")
async def clients_kyc(request: Request, client_id: str) -> Response:
    if not _authed(request) or not _same_origin(request):
        return _login_redirect()
    ctx = _ctx(request)
    form = await _form(request)
    fields = {k[2:]: v for k, v in form.items() if k.startswith("f_") and v.strip()}
    def change() -> None:
        with session_scope(ctx.sessions) as s:
            kyc.change_state(
                s,
                ctx.settings,
                client_id,
                state=form.get("state", ""),
                actor="admin:dashboard",
                tier=form.get("tier") or None,
                fields=fields or None,
                reason=form.get("reason") or None,
            )

    try:
        await asyncio.to_thread(change)
    except LSPError as exc:
        return RedirectResponse(f"/dashboard/clients?err={quote(exc.message)}", status_code=303)
    done = quote(f"client {client_id} is now {form.get('state')}")
    return RedirectResponse(f"/dashboard/clients?msg={done}", status_code=303)


# --- alerts ----------------------------------------------------------------------------------------------


@router.get("/alerts", response_model=None)
def alerts_page(request: Request) -> Response:
    if not _authed(request):
        return _login_redirect()
    ctx = _ctx(request)
    status = request.query_params.get("status") or None
    with session_scope(ctx.sessions) as s:
        names = {c.id: c.name for c in s.scalars(select(Client))}
        views = [monitoring.alert_view(a) for a in monitoring.list_alerts(s, status=status)]
        summary = reports.alert_summary(s)
    rows = [
        (v, names.get(v.client_id or "", v.client_id), json.dumps(v.evidence, indent=2, sort_keys=True)) for v in views
    ]
    return _render("alerts.html", request, rows=rows, summary=summary, status=status, transitions=monitoring.ALERT_TRANSITIONS)


@router.post("/alerts/{alert_id}")
async def alerts_review(request: Request, alert_id: int) -> Response:
    if not _authed(request) or not _same_origin(request):
        return _login_redirect()
    if not 1 <= alert_id <= MAX_DB_ID:
        return RedirectResponse(f"/dashboard/alerts?err={quote(f'no alert {alert_id}')}", status_code=303)
    ctx = _ctx(request)
    form = await _form(request)
    def review() -> None:
        with session_scope(ctx.sessions) as s:
            monitoring.transition(s, alert_id, form.get("status", ""), actor="admin:dashboard", reason=form.get("reason") or None)

    try:
        await asyncio.to_thread(review)
    except LSPError as exc:
        return RedirectResponse(f"/dashboard/alerts?err={quote(exc.message)}", status_code=303)
    done = quote(f"alert {alert_id} is now {form.get('status')}")
    return RedirectResponse(f"/dashboard/alerts?msg={done}", status_code=303)


# --- orders / swaps (tables other features add) ---------------------------------------------------------

ORDER_TABLE_HINTS = ("swap", "order", "jit", "lsps")  # lsps: LSPS2 buys, LSPS5 webhooks too
HIDDEN_SUFFIXES = ("_hex", "witness_script", "script_pubkey", "invoice", "secret", "preimage")


def _short(value: object) -> object:
    text_value = str(value) if value is not None else ""
    return text_value if len(text_value) <= 40 else text_value[:24] + "…" + text_value[-8:]


@router.get("/orders", response_model=None)
def orders_page(request: Request) -> Response:
    """JIT/LSPS1 orders and swaps, shown generically for whichever of those tables this database has."""
    if not _authed(request):
        return _login_redirect()
    ctx = _ctx(request)
    tables: list[dict[str, Any]] = []
    with session_scope(ctx.sessions) as s:
        insp = inspect(s.get_bind())
        for name in sorted(insp.get_table_names()):
            if not any(h in name for h in ORDER_TABLE_HINTS):
                continue
            # Raw transactions and scripts are not for reading here: leave them out, shorten the rest.
            cols = [c["name"] for c in insp.get_columns(name) if not c["name"].endswith(HIDDEN_SUFFIXES)]
            order = " ORDER BY created_at DESC" if "created_at" in cols else ""
            quoted = ", ".join(f'"{c}"' for c in cols)
            rows = s.execute(text(f'SELECT {quoted} FROM "{name}"{order} LIMIT 100')).all()
            tables.append({"name": name, "cols": cols, "rows": [[_short(v) for v in r] for r in rows]})
    return _render("orders.html", request, tables=tables)


# --- audit ----------------------------------------------------------------------------------------------


@router.get("/audit", response_model=None)
def audit_page(request: Request) -> Response:
    if not _authed(request):
        return _login_redirect()
    ctx = _ctx(request)
    with session_scope(ctx.sessions) as s:
        n, problems = audit.verify(s)
        entries = audit.recent(s, limit=300)
    return _render("audit.html", request, n=n, problems=problems, entries=entries)


def install(ctx: AppContext) -> Broadcaster:
    hub = Broadcaster()
    ctx.dashboard_live = hub
    ctx.bus.add_listener(hub.on_event)
    return hub
