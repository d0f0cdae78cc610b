"""The FastAPI application factory: ``create_app(settings, lnd=None)``.

``lnd`` is an ``LndClient`` (the lab passes one it built); when it is None and
the settings name a TLS cert and macaroon, the app connects at start-up. With
neither, endpoints that need LND answer 503 ``lnd_unavailable`` and the rest
of the API (onboarding, auth, ledger, reservations) still works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from lsp import faults
from lsp.api import channels, enterprise, fees, invoices, liquidity, lsps, nodes, payments, routing, security, swaps, ws
from lsp.api import errors as api_errors
from lsp.api.middleware import RequestContextMiddleware
from lsp.config import Settings
from lsp.context import AppContext
from lsp.db.base import make_engine, make_sessionmaker
from lsp.metrics import Metrics
from lsp.paypage import views as paypage
from lsp.routing import service as routing_service
from lsp.security.auth import Authenticator
from lsp.security.crypto import SecretBox
from lsp.security.ratelimit import RateLimiter
from lsp.services.events import EventBus
from lsp.services.watchers import start_all

if TYPE_CHECKING:
    from lncore.lnd.client import LndClient

log = logging.getLogger("lsp.app")


def build_context(settings: Settings, lnd: LndClient | None = None) -> AppContext:
    faults.arm(settings.crash_points)
    engine = make_engine(
        settings.database_url, pool_size=settings.db_pool_size, pool_timeout_s=settings.db_pool_timeout / 1000
    )
    box = SecretBox(settings.secret_key.get_secret_value())
    sessions = make_sessionmaker(engine)
    return AppContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        box=box,
        auth=Authenticator(box, max_skew_s=settings.auth_max_clock_skew),
        limiter=RateLimiter(),
        bus=EventBus(sessions),
        metrics=Metrics(sessions),
        lnd=lnd,
    )


class HealthView(BaseModel):
    status: str
    network: str
    lnd: str = Field(description="configured or none")


def create_app(settings: Settings, lnd: LndClient | None = None) -> FastAPI:
    ctx = build_context(settings, lnd)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owns_lnd = False
        if ctx.lnd is None and settings.lnd_configured:
            from lsp.config import lnd_from_settings

            ctx.lnd = lnd_from_settings(settings)
            owns_lnd = True
        log.info("LSP up: network=%s lnd=%s", settings.network, "connected" if ctx.lnd else "none")
        # Start order: LND client, watchers and workers, then the swap loop (it uses the watchers'
        # events); stop in reverse, then drain the compliance queue, close the routing engine
        # (stream, model save), LND and the database last.
        tasks = start_all(ctx) if settings.background_tasks else []
        if settings.hosting.enabled:  # hosted nodes: the service, and its supervisor (lsp/hosting)
            from lsp.hosting.service import HostedNodes
            from lsp.services.watchers import supervise

            ctx.hosting = HostedNodes(ctx)
            if settings.background_tasks:
                tasks.append(asyncio.create_task(supervise("hosting", ctx.hosting.run), name="lsp-hosting"))
        swap_loop = swaps.start_loop(ctx)
        try:
            yield
        finally:
            await swaps.stop_loop(ctx, swap_loop)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if ctx.hosting is not None:
                await ctx.hosting.close()
            worker = ctx.compliance_worker
            if worker is not None:  # audit and monitor what is still queued before the database goes
                await asyncio.to_thread(worker.flush)
            await routing_service.close(ctx)
            if owns_lnd and ctx.lnd is not None:
                await ctx.lnd.close()
                ctx.lnd = None
            ctx.engine.dispose()

    app = FastAPI(
        title="Lightning Service Provider",
        version="0.1.0",
        description="Channels, payments, invoices and liquidity on a real LND node. Every /api request is HMAC-signed.",
        debug=settings.debug,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    api_errors.install(app)

    app.add_middleware(RequestContextMiddleware, metrics=ctx.metrics)

    @app.get("/health", tags=["meta"], response_model=HealthView)
    def health() -> dict[str, str]:
        return {
            "status": "ok",
            "network": settings.network,
            "lnd": "configured" if ctx.lnd or settings.lnd_configured else "none",
        }

    @app.get("/metrics", tags=["meta"], include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in (
        enterprise.router, channels.router, payments.router, invoices.router, liquidity.router, ws.router,
        routing.router, swaps.router,  # swaps: docs/SWAPS.md
        fees.router, security.router,  # operator: the dynamic fee policy; watchtowers and breaches
        nodes.router,  # hosted nodes (docs/HOSTING.md)
    ):  # fmt: skip
        app.include_router(router)
    app.include_router(lsps.router)  # LSPS JSON-RPC over HTTPS (docs/LSPS.md)
    app.include_router(paypage.router)  # public, branded payment pages (/pay/{invoiceId})
    _install_compliance(app, ctx)
    return app


def _install_compliance(app: FastAPI, ctx: AppContext) -> None:
    """Issue 9: KYC/alerts/reports endpoints, the operator dashboard, and monitoring + audit on the event bus."""
    from lsp.api import compliance as compliance_api
    from lsp.compliance import kyc, monitoring
    from lsp.dashboard import views as dashboard

    app.include_router(compliance_api.admin)
    app.include_router(compliance_api.client_router)
    app.include_router(dashboard.router)
    monitoring.install(ctx, kyc.policy_of(ctx.settings))  # a bad policy file fails start-up, not a request
    dashboard.install(ctx)
