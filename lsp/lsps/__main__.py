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

from lsp import faults
from lsp.config import Settings, lnd_from_settings, load_settings
from lsp.db.base import make_engine, make_sessionmaker
from lsp.lsps.lsps2 import Lsps2Config
from lsp.lsps.server import DEFAULT_MENU, LspsServer, promise_secret


async def main(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    faults.arm(settings.crash_points)
    lnd = lnd_from_settings(settings)
    engine = make_engine(settings.database_url)
    config = Lsps2Config(menu=DEFAULT_MENU, secret=promise_secret(settings.secret_key.get_secret_value()))
    server = LspsServer(lnd, make_sessionmaker(engine), config)
    await server.start()
    logging.getLogger("lsp.lsps").info("LSPS daemon running (LSPS0 peer messages, JIT interceptor)")
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
        await lnd.close()
        engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
