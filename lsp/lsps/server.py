"""The LSPS service: one dispatcher shared by the peer-message and HTTPS transports, plus the
background loops (LSPS0 peer messages, the JIT HTLC interceptor, wrapped-invoice watchers).

    server = LspsServer.from_settings(lnd, sessions, settings)   # what `lsp lsps` runs
    await server.start()      # background tasks on the running loop
    ...
    await server.stop()

``dispatcher`` builds the methods both transports serve from the same settings; the HTTPS
mirror (``POST /api/lsps/``) calls it with ``follow=False`` (the daemon follows the orders).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from lncore.lnd.client import LndClient
from lsp.lsps import lsps0
from lsp.lsps.config import Lsps1Settings, Lsps5Settings
from lsp.lsps.interceptor import MPP_TIMEOUT_S, ChannelSizing, JitInterceptor
from lsp.lsps.jsonrpc import Dispatcher
from lsp.lsps.lsps0 import PeerTransport
from lsp.lsps.lsps1 import Lsps1Methods
from lsp.lsps.lsps2 import Lsps2Config, Lsps2Methods
from lsp.lsps.lsps5 import Lsps5Service
from lsp.lsps.store import LspsStore
from lsp.lsps.wrapped import WrappedJit

if TYPE_CHECKING:
    from lsp.config import Settings

log = logging.getLogger("lsp.lsps")

# Served over peer messages and the HTTPS mirror alike (the mirror's LSPS1 orders are followed by
# this daemon: poll_new_orders).
SUPPORTED_PROTOCOLS = [1, 2]
LSPS1_POLL_S = 2.0


def promise_secret(settings_secret: str) -> bytes:
    """The key for LSPS2 promises, derived from LSP_SECRET_KEY (never the key itself), so the
    HTTPS API and the peer-message daemon issue and verify the same promises."""
    return hmac.new(settings_secret.encode(), b"lsps2-promise", hashlib.sha256).digest()


def lsps2_config(settings: Settings) -> Lsps2Config:
    return settings.lsps2.config(promise_secret(settings.secret_key.get_secret_value()))


def dispatcher(
    lnd: LndClient | None,
    sessions: sessionmaker[Session],
    lsps2: Lsps2Config,
    lsps1: Lsps1Settings | None = None,
    *,
    follow: bool = True,
    protocols: list[int] | None = None,
) -> tuple[Dispatcher, Lsps1Methods]:
    """LSPS0, LSPS1 and LSPS2 methods on one dispatcher (every transport serves these), and the
    LSPS1 methods (whose orders the daemon follows when ``follow``). ``protocols``: what
    ``lsps0.list_protocols`` answers (the daemon adds 5, LSPS5, which only it serves)."""
    d = Dispatcher()
    lsps0.register(d, protocols or SUPPORTED_PROTOCOLS)
    Lsps2Methods(lsps2, LspsStore(sessions)).register(d)
    orders = Lsps1Methods(lnd, sessions, lsps1, follow=follow)
    orders.register(d)
    return d, orders


class LspsServer:
    def __init__(
        self,
        lnd: LndClient,
        sessions: sessionmaker[Session],
        config: Lsps2Config,
        *,
        sizing: ChannelSizing | None = None,
        mpp_timeout_s: float = MPP_TIMEOUT_S,
        intercept: bool = True,
        lsps1: Lsps1Settings | None = None,
        lsps5: Lsps5Settings | None = None,
    ):
        self.lnd = lnd
        self.store = LspsStore(sessions)
        self.config = config
        # LSPS5 needs the peer's node id too (and LND to sign): peer messages only, this daemon only.
        self.lsps5 = Lsps5Service(lnd, sessions, lsps5 or Lsps5Settings())
        self.dispatcher, self.lsps1 = dispatcher(lnd, sessions, config, lsps1, protocols=[*SUPPORTED_PROTOCOLS, 5])
        self.lsps5.register(self.dispatcher)
        # Wrapped invoices need the peer's node id: peer messages only.
        self.wrapped = WrappedJit(self.lnd, self.store, config, sizing=sizing)
        self.wrapped.register(self.dispatcher)
        self.interceptor = JitInterceptor(
            self.lnd, self.store, sizing=sizing, mpp_timeout_s=mpp_timeout_s, lsps5=self.lsps5
        )
        self.transport = PeerTransport(self.lnd, self.dispatcher)
        self.intercept = intercept
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_settings(cls, lnd: LndClient, sessions: sessionmaker[Session], settings: Settings) -> LspsServer:
        """The daemon as the operator configured it (LSP_LSPS1_*, LSP_LSPS2_*)."""
        return cls(
            lnd,
            sessions,
            lsps2_config(settings),
            sizing=settings.lsps2.sizing(),
            mpp_timeout_s=settings.lsps2.mpp_timeout_s,
            lsps1=settings.lsps1,
            lsps5=settings.lsps5,
        )

    async def start(self) -> None:
        await self.lsps5.start()
        self._tasks.append(asyncio.create_task(self.transport.run()))
        if self.intercept:
            self._tasks.append(asyncio.create_task(self.interceptor.run()))
            await asyncio.wait_for(self.interceptor.connected.wait(), 30)
        self.wrapped.resume_all()
        # Its first round follows every unfinished order (a restart's resume), then new ones.
        self._tasks.append(asyncio.create_task(self.lsps1.poll_new_orders(LSPS1_POLL_S)))

    async def stop(self) -> None:
        await self.interceptor.close()
        await self.lsps5.close()
        await self.wrapped.close()
        await self.lsps1.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
