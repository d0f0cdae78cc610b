"""The LSPS service: one dispatcher shared by the peer-message and HTTPS transports, plus the
background loops (LSPS0 peer messages, the JIT HTLC interceptor, wrapped-invoice watchers).

    server = LspsServer(lnd, sessions, Lsps2Config(menu=[...], secret=b"..."))
    await server.start()      # background tasks on the running loop
    ...
    await server.stop()
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from lncore.lnd.client import LndClient
from lsp.lsps import lsps0
from lsp.lsps.interceptor import MPP_TIMEOUT_S, ChannelSizing, JitInterceptor
from lsp.lsps.jsonrpc import Dispatcher
from lsp.lsps.lsps0 import PeerTransport
from lsp.lsps.lsps1 import Lsps1Config, Lsps1Methods
from lsp.lsps.lsps2 import Lsps2Config, Lsps2Methods, MenuEntry
from lsp.lsps.store import LspsStore
from lsp.lsps.wrapped import WrappedJit

log = logging.getLogger("lsp.lsps")

# Served over peer messages and the HTTPS mirror alike (the mirror's LSPS1 orders are followed by
# this daemon: poll_new_orders).
SUPPORTED_PROTOCOLS = [1, 2]
LSPS1_POLL_S = 2.0

DEFAULT_MENU = [
    MenuEntry(min_fee_msat=2_000_000, proportional=5_000, valid_for=timedelta(hours=1)),
    MenuEntry(min_fee_msat=3_000_000, proportional=8_000, valid_for=timedelta(hours=24)),
]


def promise_secret(settings_secret: str) -> bytes:
    """The key for LSPS2 promises, derived from LSP_SECRET_KEY (never the key itself), so the
    HTTPS API and the peer-message daemon issue and verify the same promises."""
    return hmac.new(settings_secret.encode(), b"lsps2-promise", hashlib.sha256).digest()


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
        lsps1: Lsps1Config | None = None,
    ):
        self.lnd = lnd
        self.store = LspsStore(sessions)
        self.config = config
        self.dispatcher = Dispatcher()
        lsps0.register(self.dispatcher, SUPPORTED_PROTOCOLS)
        self.lsps2 = Lsps2Methods(config, self.store)
        self.lsps2.register(self.dispatcher)
        self.wrapped = WrappedJit(self.lnd, self.store, config, sizing=sizing)
        self.wrapped.register(self.dispatcher)
        self.lsps1 = Lsps1Methods(self.lnd, sessions, lsps1)
        self.lsps1.register(self.dispatcher)
        self.interceptor = JitInterceptor(self.lnd, self.store, sizing=sizing, mpp_timeout_s=mpp_timeout_s)
        self.transport = PeerTransport(self.lnd, self.dispatcher)
        self.intercept = intercept
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.transport.run()))
        if self.intercept:
            self._tasks.append(asyncio.create_task(self.interceptor.run()))
            await asyncio.wait_for(self.interceptor.connected.wait(), 30)
        self.wrapped.resume_all()
        # Its first round follows every unfinished order (a restart's resume), then new ones.
        self._tasks.append(asyncio.create_task(self.lsps1.poll_new_orders(LSPS1_POLL_S)))

    async def stop(self) -> None:
        await self.interceptor.close()
        await self.wrapped.close()
        await self.lsps1.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
