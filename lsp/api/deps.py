"""FastAPI dependencies: the app context, a DB session, the authenticated client, the admin check."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from lncore.lnd.client import LndClient
from lsp.context import AppContext
from lsp.db.base import session_scope
from lsp.db.models import Client
from lsp.errors import AuthError, LndUnavailable, RateLimited
from lsp.security.auth import Authenticator, SignedRequest
from lsp.security.ratelimit import MAX_AUTH_FAILURES_PER_MINUTE


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def get_session(ctx: Ctx) -> Iterator[Session]:
    with session_scope(ctx.sessions) as session:
        yield session


# The request's transaction, owned by this dependency: committed when the handler returns and
# *before* the response is sent (scope="function"), so the caller's next request sees it and a
# failed commit is the request's error, not a 2xx followed by a lost write. Handlers never commit;
# one that must act after the commit (e.g. tell the event bus) opens its own ``session_scope``.
DB = Annotated[Session, Depends(get_session, scope="function")]


def signed_path(request: Request) -> str:
    """The path exactly as the client sent (and signed) it: raw path + '?' + raw query."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


async def _signed_client(request: Request, ctx: Ctx, *, spend_nonce: bool) -> tuple[Client, SignedRequest]:
    """Check the request's signature (and spend its nonce, unless the route will), count it
    against the client's rate limit, and name the client in the request's log lines."""
    body = await request.body()
    signed = SignedRequest.from_headers(request.headers, method=request.method, path=signed_path(request), body=body)

    def check() -> Client:
        # Its own transaction: a used nonce stays used even if the request later fails.
        with session_scope(ctx.sessions) as session:
            if spend_nonce:
                return ctx.auth.authenticate(session, signed)
            return ctx.auth.verify(session, signed)

    client = await run_in_threadpool(check)
    retry_after = ctx.limiter.hit(client.id, client.requests_per_minute)
    if retry_after is not None:
        raise RateLimited(
            f"rate limit of {client.requests_per_minute} requests per minute exceeded", retry_after=retry_after
        )
    request.state.client_id = client.id
    return client, signed


async def authenticated_client(request: Request, ctx: Ctx) -> Client:
    client, _ = await _signed_client(request, ctx, spend_nonce=True)
    return client


CurrentClient = Annotated[Client, Depends(authenticated_client)]


@dataclass
class NonceToSpend:
    """A signed request checked in every way but its nonce, which the route spends in its own first
    transaction (``spend``), saving a write transaction of its own: on SQLite every write waits for
    the one write lock, and at 8 concurrent payments the nonce's own transaction waited 6 ms on
    average for it (docs/BENCHMARKS.md). Only for routes whose first effect is that transaction
    (nothing reaches LND or anyone else before it): a replayed request is refused there with 401,
    before anything happens. If the route never spends it (it failed first, or wrote nothing), the
    dependency spends it in a transaction of its own before the response goes out."""

    client: Client
    request: SignedRequest
    auth: Authenticator
    spent: bool = False

    def spend(self, session: Session) -> None:
        """Spend the nonce in ``session``'s transaction (it counts once that transaction commits)."""
        self.auth.use_nonce(session, self.client.id, self.request)
        event.listen(session, "after_commit", self._committed, once=True)

    def _committed(self, _session: Session) -> None:
        self.spent = True


async def client_with_nonce_to_spend(request: Request, ctx: Ctx) -> AsyncIterator[NonceToSpend]:
    client, signed = await _signed_client(request, ctx, spend_nonce=False)
    pending = NonceToSpend(client, signed, ctx.auth)
    try:
        yield pending
    finally:
        if not pending.spent:

            def spend() -> None:
                with session_scope(ctx.sessions) as session:
                    ctx.auth.use_nonce(session, client.id, signed)

            await run_in_threadpool(spend)


# scope="function": the nonce is spent (or the replay refused) before the response is sent.
SignedClient = Annotated[NonceToSpend, Depends(client_with_nonce_to_spend, scope="function")]


def require_admin(request: Request, ctx: Ctx, x_admin_key: Annotated[str | None, Header()] = None) -> None:
    key = f"admin-auth-failures:{request.client.host if request.client else '?'}"
    wait = ctx.limiter.blocked(key, MAX_AUTH_FAILURES_PER_MINUTE)
    if wait is not None:
        raise RateLimited("too many wrong admin keys from this address; try again later", retry_after=wait)
    expected = ctx.settings.admin_api_key.get_secret_value()
    if not x_admin_key or not hmac.compare_digest(x_admin_key.encode(), expected.encode()):
        ctx.limiter.hit(key, MAX_AUTH_FAILURES_PER_MINUTE)
        raise AuthError("admin key missing or wrong", code="invalid_admin_key", field="X-Admin-Key")


def get_lnd(ctx: Ctx) -> LndClient:
    if ctx.lnd is None:
        raise LndUnavailable(
            "the LSP is not connected to an LND node (set LSP_LND_TLS_CERT_PATH and LSP_LND_MACAROON_PATH)",
            grpc_code="CONFIG",
        )
    return ctx.lnd


Lnd = Annotated[LndClient, Depends(get_lnd)]
