"""Client webhooks: registration, signed delivery, retry with exponential backoff, and a delivery log.

Each delivery is POSTed with ``X-LSP-Timestamp`` (ms) and ``X-LSP-Signature`` =
hex HMAC-SHA256(webhook secret, timestamp + "." + body), so the receiver can
check it came from the LSP, and ``X-LSP-Delivery`` (the delivery's id, the same on every
attempt: delivery is at least once, so a receiver dedupes on it). A failed attempt (network error or non-2xx) is
retried after ``backoff_base * 2**(attempt-1)`` seconds, up to ``max_attempts``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lsp.db.base import DB_UNAVAILABLE, db_error_line, session_scope, utcnow
from lsp.db.models import Webhook, WebhookDelivery
from lsp.errors import NotFound, ValidationFailed
from lsp.faults import crash_point
from lsp.security import signing
from lsp.security.crypto import SecretBox
from lsp.services.events import EVENT_TYPES

log = logging.getLogger("lsp.webhooks")


def sign_payload(secret: str, timestamp_ms: int, body: str) -> str:
    return hmac.new(secret.encode(), f"{timestamp_ms}.{body}".encode(), hashlib.sha256).hexdigest()


def register(session: Session, box: SecretBox, client_id: str, url: str, events: list[str]) -> tuple[Webhook, str]:
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(f"unknown event type(s) {unknown}; known: {list(EVENT_TYPES)}", field="body.events")
    secret = "whsec_" + secrets.token_urlsafe(24)
    hook = Webhook(client_id=client_id, url=url, secret_encrypted=box.encrypt(secret), events=",".join(events or ["*"]))
    session.add(hook)
    session.flush()
    return hook, secret


def get_for_client(session: Session, client_id: str, webhook_id: str) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.client_id != client_id:
        raise NotFound(f"no webhook {webhook_id}")
    return hook


def list_for_client(session: Session, client_id: str) -> list[Webhook]:
    return list(session.scalars(select(Webhook).where(Webhook.client_id == client_id).order_by(Webhook.created_at)))


def deliveries(session: Session, webhook_id: str, limit: int = 100) -> list[WebhookDelivery]:
    q = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return list(session.scalars(q))


class WebhookDispatcher:
    """Background task: deliver due webhook deliveries, forever."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        box: SecretBox,
        *,
        max_attempts: int,
        backoff_base_s: float,
        http: httpx.AsyncClient | None = None,
        poll_s: float = 1.0,
    ):
        self.sessions = sessions
        self.box = box
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self.poll_s = poll_s

    async def run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except DB_UNAVAILABLE as exc:
                log.warning("webhook dispatcher: database unavailable (%s); retrying", db_error_line(exc))
            except Exception:
                log.exception("webhook dispatcher pass failed")
            await asyncio.sleep(self.poll_s)

    async def deliver_due(self, limit: int = 50) -> int:
        def due() -> list[tuple[int, str, str, str]]:
            with session_scope(self.sessions) as s:
                rows = s.execute(
                    select(WebhookDelivery.id, Webhook.url, Webhook.secret_encrypted, WebhookDelivery.payload)
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
                    .order_by(WebhookDelivery.id)
                    .limit(limit)
                ).all()
                return [(r[0], r[1], r[2], r[3]) for r in rows]

        work = await asyncio.to_thread(due)
        for delivery_id, url, secret_enc, payload in work:
            await self._attempt(delivery_id, url, self.box.decrypt(secret_enc), payload)
        return len(work)

    async def _attempt(self, delivery_id: int, url: str, secret: str, payload: str) -> None:
        ts = signing.now_ms()
        headers = {
            "Content-Type": "application/json",
            "X-LSP-Timestamp": str(ts),
            "X-LSP-Signature": sign_payload(secret, ts, payload),
            # The same on every attempt of this delivery: delivery is at least once (a crash between
            # the receiver's 2xx and our record sends it again), so receivers dedupe on it.
            "X-LSP-Delivery": str(delivery_id),
        }
        status: int | None = None
        error: str | None = None
        crash_point("webhook.before_send")
        try:
            resp = await self.http.post(url, content=payload, headers=headers)
            status = resp.status_code
            if not resp.is_success:
                error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            # Delivered but not yet recorded: after a crash here the receiver gets it again (at least
            # once); the payload's event id is what lets it tell.
            crash_point("webhook.sent_before_record")

        def record() -> None:
            with session_scope(self.sessions) as s:
                d = s.get(WebhookDelivery, delivery_id)
                if d is None:
                    return
                d.attempts += 1
                d.last_status_code = status
                d.last_error = error
                if error is None:
                    d.status = "delivered"
                    d.delivered_at = utcnow()
                elif d.attempts >= self.max_attempts:
                    d.status = "failed"
                else:
                    d.next_attempt_at = utcnow() + timedelta(seconds=self.backoff_base_s * 2 ** (d.attempts - 1))

        await asyncio.to_thread(record)
