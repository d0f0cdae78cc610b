"""Run the LSPS daemon: ``lsp lsps`` (or ``python -m lsp.lsps``; same LSP_* settings as the API).

Serves LSPS0 peer messages (type 37913), intercepts HTLCs for JIT SCIDs and
follows wrapped invoices, against the LND node and database the settings name.
The HTTPS mirror lives in the API process; both share the database and the
promise key, so a buy made over HTTPS is honoured by this interceptor. Run the
LND node with ``--requireinterceptor`` so held HTLCs survive this process.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from lsp import faults
from lsp.config import Settings, lnd_from_settings, load_settings
from lsp.db.base import make_engine, make_sessionmaker
from lsp.lsps.server import LspsServer


async def main(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    faults.arm(settings.crash_points)
    lnd = lnd_from_settings(settings)
    engine = make_engine(settings.database_url)
    server = LspsServer.from_settings(lnd, make_sessionmaker(engine), settings)
    await server.start()
    logging.getLogger("lsp.lsps").info("LSPS daemon running (LSPS0 peer messages, JIT interceptor)")
    stopping = asyncio.Event()
    # SIGTERM (systemd, docker stop, the lab) stops it in order, as ctrl-c does.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        await stopping.wait()
        logging.getLogger("lsp.lsps").info("LSPS daemon stopping (SIGTERM)")
    finally:
        await server.stop()
        await lnd.close()
        engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
