"""Run the LSP's LSPS service (``lsp.lsps.server.LspsServer``) against a lab node, in a thread.

The service is asyncio; tests and benchmarks are synchronous. ``LspsRunner``
owns an event loop in a background thread, a database (SQLite by default,
migrated with Alembic so the real schema is exercised) and the server:

    with LspsRunner(lab.node("lsp"), tmp_path / "lsps.db") as lsp:
        ...                      # the LSP answers LSPS0 messages and intercepts HTLCs
        lsp.restart()            # a new process-equivalent: fresh objects, same database
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from harness.node import LndNode
from lncore.lnd.client import LndClient
from lsp.db.base import make_engine, make_sessionmaker
from lsp.db.migrate import upgrade
from lsp.lsps.interceptor import ChannelSizing
from lsp.lsps.lsps2 import Lsps2Config, MenuEntry
from lsp.lsps.server import LspsServer

T = TypeVar("T")

LAB_MENU = [
    MenuEntry(min_fee_msat=2_000_000, proportional=5_000, valid_for=timedelta(hours=1), min_payment_size_msat=1_000),
    MenuEntry(min_fee_msat=3_000_000, proportional=8_000, valid_for=timedelta(hours=24), min_payment_size_msat=1_000),
]


class LspsRunner:
    def __init__(
        self,
        node: LndNode,
        db_path: Path,
        *,
        menu: list[MenuEntry] | None = None,
        secret: bytes = b"lab-lsps2-promise-secret",
        sizing: ChannelSizing | None = None,
        mpp_timeout_s: float = 90.0,
        probe: LndNode | None = None,
    ):
        """``probe``: an LND peer of ``node``; when given, ``start`` returns only once the service
        answers LSPS0 from it over the wire (see ``harness.lsps_client.wait_answering``)."""
        self.node = node
        self.probe = probe
        self.url = f"sqlite:///{db_path}"
        upgrade(self.url)
        self.config = Lsps2Config(menu=menu or LAB_MENU, secret=secret)
        self.sizing = sizing
        self.mpp_timeout_s = mpp_timeout_s
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="lsps-runner", daemon=True)
        self._thread.start()
        self.server: LspsServer | None = None
        self._lnd: LndClient | None = None
        self._engine = make_engine(self.url)
        # The service's own log (every LSPS0 message in and answer out) beside its LND's, so a
        # failed test's kept lab directory shows the LSP side too.
        self._log = logging.FileHandler(node.config.lnddir / "lsps-service.log")
        self._log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._log.setLevel(logging.DEBUG)
        service_log = logging.getLogger("lsp.lsps")
        service_log.setLevel(logging.DEBUG)
        service_log.addHandler(self._log)

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    async def _start(self) -> LspsServer:
        cfg = self.node.config
        self._lnd = LndClient.from_paths(f"127.0.0.1:{cfg.rpc_port}", cfg.tls_cert, cfg.macaroon)
        server = LspsServer(
            self._lnd,
            make_sessionmaker(self._engine),
            self.config,
            sizing=self.sizing,
            mpp_timeout_s=self.mpp_timeout_s,
        )
        await server.start()
        return server

    async def _stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self._lnd is not None:
            await self._lnd.close()
            self._lnd = None

    def start(self) -> LspsRunner:
        self.server = self.run(self._start())
        if self.probe is not None:
            from harness.lsps_client import wait_answering

            wait_answering(self.probe, self.node.pubkey)
        return self

    def stop(self) -> None:
        self.run(self._stop())

    def restart(self) -> None:
        """Drop every in-memory object (streams, held groups) and start over from the database."""
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self._engine.dispose()
            logging.getLogger("lsp.lsps").removeHandler(self._log)
            self._log.close()

    def __enter__(self) -> LspsRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
