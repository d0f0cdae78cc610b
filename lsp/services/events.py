"""In-process event bus: what happened to a client (payment_received, channel_opened, ...).

``publish`` fans an event out to the client's live WebSocket subscribers and
queues one webhook delivery per matching webhook (persisted, so a restart
does not lose it). Events without a client (a forward through no client's
channel) reach only the listeners (monitoring, audit, the operator's
dashboard), never a client's WebSocket or webhooks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lsp.db.base import session_scope, utcnow
from lsp.db.models import Channel, Invoice, Payment, Webhook, WebhookDelivery

log = logging.getLogger("lsp.events")


# What an event says about a row, in one place: the event itself (WebSocket, webhooks) and the audit
# entry written with the change carry the same payload.
def payment_data(p: Payment) -> dict[str, Any]:
    return {
        "paymentHash": p.payment_hash,
        "amount": p.amount_sat,
        "fee": p.fee_sat,
        "status": p.status,
        "failureReason": p.failure_reason,
    }


def invoice_data(inv: Invoice) -> dict[str, Any]:
    return {"invoiceId": inv.id, "paymentHash": inv.payment_hash, "amount": inv.amount_paid_sat}


def channel_data(ch: Channel) -> dict[str, Any]:
    return {"channelId": ch.id, "channelPoint": ch.channel_point, "capacity": ch.capacity_sat, "status": ch.status}


EVENT_TYPES = (
    "payment_received",
    "payment_sent",
    "payment_failed",
    "channel_opened",
    "channel_closed",
    "routing_fee_earned",
    "liquidity_request",
    "swap_updated",  # every swap state change (lsp/swaps, docs/SWAPS.md)
    "channel_breach",  # a revoked commitment broadcast against the LSP's channel (lsp/services/security.py)
    "node_running",  # a hosted node (lsp/hosting) is up: created, started or restarted
    "node_stopped",  # stopped by its client, or deleted (data.state says which)
    "node_failed",  # provisioning failed, or its container died (data.reason)
)


@dataclass(frozen=True)
class Event:
    type: str
    client_id: str | None
    data: dict[str, Any]
    at: str = field(default_factory=lambda: utcnow().isoformat())

    def to_json(self) -> str:
        return json.dumps({"type": self.type, "at": self.at, "data": self.data}, sort_keys=True)


class EventBus:
    def __init__(self, sessions: sessionmaker[Session], *, queue_size: int = 1000):
        self._sessions = sessions
        self._subs: dict[str | None, set[asyncio.Queue[Event]]] = {}
        self._queue_size = queue_size
        # Called with every event, whoever it is for (compliance monitoring, audit, the operator dashboard).
        self._listeners: list[Callable[[Event], None]] = []
        # client id -> its active webhooks as (id, wanted event types). ``publish`` runs on the event
        # loop for every payment; most clients have no webhook, and asking the database each time
        # cost a session per event there. Filled on first use, dropped by ``webhooks_changed``.
        self._hooks: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {}

    def add_listener(self, fn: Callable[[Event], None]) -> None:
        self._listeners.append(fn)

    def webhooks_changed(self, client_id: str) -> None:
        """Call after committing a change to the client's webhooks."""
        self._hooks.pop(client_id, None)

    @contextmanager
    def subscribe(self, client_id: str) -> Iterator[asyncio.Queue[Event]]:
        q: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subs.setdefault(client_id, set()).add(q)
        try:
            yield q
        finally:
            self._subs[client_id].discard(q)

    def publish(self, event: Event) -> None:
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:  # a listener's bug must never stop the client's own events
                log.exception("event listener %r failed on %s", fn, event.type)
        targets = () if event.client_id is None else self._subs.get(event.client_id, ())
        for q in list(targets):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("dropping %s for a slow WebSocket subscriber", event.type)
        if event.client_id is not None:
            hooks = self._hooks.get(event.client_id)
            if hooks is None:
                with session_scope(self._sessions) as session:
                    hooks = self._hooks[event.client_id] = active_webhooks(session, event.client_id)
            wanted = [hook_id for hook_id, types in hooks if "*" in types or event.type in types]
            if wanted:
                with session_scope(self._sessions) as session:
                    queue_deliveries(session, wanted, event)


def active_webhooks(session: Session, client_id: str) -> tuple[tuple[str, frozenset[str]], ...]:
    rows = session.execute(
        select(Webhook.id, Webhook.events).where(Webhook.client_id == client_id, Webhook.active.is_(True))
    )
    return tuple((str(hook_id), frozenset(events.split(","))) for hook_id, events in rows)


def queue_deliveries(session: Session, webhook_ids: list[str], event: Event) -> None:
    payload = event.to_json()
    session.add_all(WebhookDelivery(webhook_id=i, event_type=event.type, payload=payload) for i in webhook_ids)

