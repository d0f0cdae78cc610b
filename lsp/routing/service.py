"""The LSP's one routing engine per app: built on first use, closed with the app.

``executor_for(ctx)`` loads the live graph from LND (and the learned liquidity from the
database) the first time a payment or an estimate asks for it, then keeps it current from
LND's graph stream. Lazy because most deployments start before their node has synced the
graph, and the ``lnd`` strategy never needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsp.config import Settings
from lsp.context import AppContext
from lsp.errors import LndUnavailable
from lsp.routing.executor import McfExecutor
from lsp.routing.liquidity import Prior
from lsp.routing.live import LiveGraph

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from lncore.lnd.client import LndClient



def live_graph_for(settings: Settings, lnd: LndClient, sessions: sessionmaker[Session] | None = None) -> LiveGraph:
    """The live graph ``settings`` ask for (``LSP_ROUTING_PRIOR`` picks the liquidity prior).
    Makes no LND call: ``load()`` does."""
    return LiveGraph(lnd, sessions=sessions, prior=Prior(settings.routing_prior))


async def executor_for(ctx: AppContext) -> McfExecutor:
    if ctx.routing_executor is not None:
        return ctx.routing_executor
    async with ctx.routing_lock:
        if ctx.routing_executor is not None:
            return ctx.routing_executor
        if ctx.lnd is None:
            raise LndUnavailable("the LSP is not connected to an LND node", grpc_code="CONFIG")
        live = live_graph_for(ctx.settings, ctx.lnd, ctx.sessions)
        await live.load()
        live.start()
        executor = McfExecutor(live, max_attempts=ctx.settings.max_routing_attempts)
        ctx.routing_executor = executor
        return executor


async def close(ctx: AppContext) -> None:
    executor, ctx.routing_executor = ctx.routing_executor, None
    if executor is not None:
        await executor.live.close()
        executor.live.save_model()
