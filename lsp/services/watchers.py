"""Background loops that keep the database in step with LND, each restarted with backoff on error:
invoice settlements, channel state, forwarding revenue, in-flight payments (all of them once at
start-up, then those stuck past their timeout every 30 s), reservation expiry. They run only when the app has an LND client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from lncore.lnd.client import LndClient
from lsp.context import AppContext
from lsp.db.base import DB_UNAVAILABLE, db_error_line, session_scope
from lsp.db.models import ForwardingEvent
from lsp.errors import LndError
from lsp.services import channels, invoices, liquidity, notify, payments, security

log = logging.getLogger("lsp.watchers")
RECONCILE_EVERY_S = 30.0


async def supervise(
    name: str, loop: Callable[[], Awaitable[None]], *, once: bool = False, max_backoff_s: float = 30.0
) -> None:
    """Run ``loop`` forever (or until it first succeeds, with ``once``), retrying with backoff."""
    delay = 1.0
    while True:
        try:
            await loop()
            if once:
                return
            delay = 1.0
        except asyncio.CancelledError:
            raise
        except LndError as exc:
            log.warning("%s: %s; retrying in %.0f s", name, exc, delay)
        except DB_UNAVAILABLE as exc:
            log.warning("%s: database unavailable (%s); retrying in %.0f s", name, db_error_line(exc), delay)
        except Exception:
            log.exception("%s crashed; retrying in %.0f s", name, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff_s)


def _state_name(lnd: LndClient, inv: object) -> str:
    return str(lnd.pb.ln.Invoice.InvoiceState.Name(inv.state))  # type: ignore[attr-defined]


async def watch_invoices(ctx: AppContext, lnd: LndClient) -> None:
    # LND's stream only shows new events: first catch up on invoices that were open when we stopped.
    with session_scope(ctx.sessions) as s:
        open_hashes = invoices.open_hashes(s)
    for h in open_hashes:
        inv = await lnd.lookup_invoice(h)
        with session_scope(ctx.sessions) as s:
            settled = invoices.apply_update(s, inv, _state_name(lnd, inv))
        if settled is not None:
            notify.invoice_settled(ctx, settled)
    async for inv in lnd.subscribe_invoices():
        with session_scope(ctx.sessions) as s:
            settled = invoices.apply_update(s, inv, _state_name(lnd, inv))
        if settled is not None:
            notify.invoice_settled(ctx, settled)


async def reconcile_channels(ctx: AppContext, lnd: LndClient) -> None:
    for cid, status in await channels.resolve_opening(lnd, ctx.sessions, grace_s=ctx.settings.channel_open_grace):
        log.warning("channel %s: its open request was interrupted; resolved from LND as %s", cid, status)
    open_chans = await lnd.list_channels()
    closed = await lnd.closed_channels()
    with session_scope(ctx.sessions) as s:
        transitions = channels.apply_lnd_state(s, open_chans=open_chans, closed=closed)
    for kind, ch in transitions:
        notify.channel_changed(ctx, kind, ch)


# Only these change a channel's pending/open/closed state. Found live: LND also sends
# CHANNEL_UPDATE on every commitment update (several per payment, per channel), and
# reconciling on each of those (ListChannels + ClosedChannels + a query) was the largest
# CPU cost of a payment through the API.
STATE_EVENTS = frozenset(
    {"OPEN_CHANNEL", "CLOSED_CHANNEL", "PENDING_OPEN_CHANNEL", "FULLY_RESOLVED_CHANNEL", "CHANNEL_FUNDING_TIMEOUT"}
)


async def watch_channels(ctx: AppContext, lnd: LndClient) -> None:
    await reconcile_channels(ctx, lnd)
    await security.detect_breaches(ctx, lnd)
    names = lnd.pb.ln.ChannelEventUpdate.UpdateType
    async for update in lnd.subscribe_channel_events():
        if names.Name(update.type) in STATE_EVENTS:
            await reconcile_channels(ctx, lnd)
            await security.detect_breaches(ctx, lnd)


async def poll_channels(ctx: AppContext, lnd: LndClient) -> None:
    while True:  # belt and braces: a missed stream event is caught within RECONCILE_EVERY_S
        await asyncio.sleep(RECONCILE_EVERY_S)
        await reconcile_channels(ctx, lnd)
        # (also catches a breach that ended while the LSP, or its LND, was down: a tower swept it)
        await security.detect_breaches(ctx, lnd)


async def poll_forwards(ctx: AppContext, lnd: LndClient) -> None:
    while True:
        with session_scope(ctx.sessions) as s:
            last_ns = int(s.scalar(select(func.max(ForwardingEvent.timestamp_ns))) or 0)
        resp = await lnd.forwarding_history(start_time=last_ns // 1_000_000_000)
        for f in resp.forwarding_events:
            if int(f.timestamp_ns) <= last_ns:
                continue
            fwd = ForwardingEvent(
                timestamp_ns=int(f.timestamp_ns),
                chan_id_in=int(f.chan_id_in),
                chan_id_out=int(f.chan_id_out),
                amt_in_msat=int(f.amt_in_msat),
                amt_out_msat=int(f.amt_out_msat),
                fee_msat=int(f.fee_msat),
            )
            try:
                with session_scope(ctx.sessions) as s:
                    s.add(fwd)
            except IntegrityError:
                continue
            notify.routing_fee(ctx, fwd)
        await asyncio.sleep(RECONCILE_EVERY_S)


async def resume_payments(ctx: AppContext, lnd: LndClient) -> None:
    n = await payments.resume_in_flight(lnd, ctx.sessions, on_final=lambda p: notify.payment_final(ctx, p))
    if n:
        log.info("reconciled %d in-flight payment(s) with LND", n)


async def settle_stale_payments(ctx: AppContext, lnd: LndClient) -> None:
    """Payments whose request lost LND mid-payment (unreachable, or the stream's deadline passed)
    stay in flight with their funds reserved; this asks LND about them until they are final,
    instead of waiting for the next restart's ``resume_in_flight``."""
    while True:
        n = await payments.settle_stale(
            lnd, ctx.sessions, ctx.settings, on_final=lambda p: notify.payment_final(ctx, p)
        )
        if n:
            log.info("settled %d stale in-flight payment(s) with LND", n)
        await asyncio.sleep(RECONCILE_EVERY_S)


async def expire_reservations(ctx: AppContext) -> None:
    while True:
        with session_scope(ctx.sessions) as s:
            liquidity.expire_due(s)
        await asyncio.sleep(RECONCILE_EVERY_S)


async def monitoring_catch_up(ctx: AppContext) -> None:
    """Alerts that events lost in a crash should have raised (``monitoring.catch_up``)."""
    from lsp.compliance import kyc, monitoring

    r = await asyncio.to_thread(monitoring.catch_up, ctx.sessions, kyc.policy_of(ctx.settings))
    if r.created or r.extended:
        log.warning(
            "compliance catch-up after start: %d alert(s) raised, %d extended, over %d transactions",
            r.created,
            r.extended,
            r.transactions,
        )
    else:
        log.info("compliance catch-up after start: nothing missed (%d transactions)", r.transactions)


def start_all(ctx: AppContext) -> list[asyncio.Task[None]]:
    from lsp.services.webhooks import WebhookDispatcher

    s = ctx.settings
    dispatcher = WebhookDispatcher(
        ctx.sessions, ctx.box, max_attempts=s.webhook_max_attempts, backoff_base_s=s.webhook_backoff_base
    )
    loops: dict[str, Callable[[], Awaitable[None]]] = {
        "webhooks": dispatcher.run,
        "reservations": lambda: expire_reservations(ctx),
    }
    lnd = ctx.lnd
    if lnd is not None:
        loops.update(
            {
                "invoices": lambda: watch_invoices(ctx, lnd),
                "channel-events": lambda: watch_channels(ctx, lnd),
                "channel-poll": lambda: poll_channels(ctx, lnd),
                "forwards": lambda: poll_forwards(ctx, lnd),
                "stale-payments": lambda: settle_stale_payments(ctx, lnd),
            }
        )
        if s.watchtowers:  # LSP_WATCHTOWERS (lsp/services/security.py)
            loops["watchtowers"] = lambda: security.keep_towers(ctx, lnd)
        if s.fees.enabled:  # the dynamic fee policy (lsp/services/fees.py)
            from lsp.services.fees import FeeEngine

            engine = FeeEngine(lnd, ctx.sessions, s.fees)
            loops["fees"] = engine.loop
    tasks = [asyncio.create_task(supervise(name, fn), name=f"lsp-{name}") for name, fn in loops.items()]
    tasks.append(
        asyncio.create_task(
            supervise("monitoring-catch-up", lambda: monitoring_catch_up(ctx), once=True), name="lsp-monitoring-catch-up"
        )
    )
    if lnd is not None:
        resume = supervise("resume-payments", lambda: resume_payments(ctx, lnd), once=True)
        tasks.append(asyncio.create_task(resume, name="lsp-resume-payments"))
    return tasks
