"""``off_loop``: database work leaves the event loop; on SQLite the writes queue on one thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from lsp.config import Settings
from lsp.db.base import make_engine, make_sessionmaker, off_loop
from lsp.logs import request_id_var

pytestmark = pytest.mark.unit


def test_sqlite_writes_queue_on_one_thread_and_carry_the_callers_context(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    loop_thread = threading.get_ident()

    def work(i: int) -> tuple[int, str | None]:
        return threading.get_ident(), request_id_var.get()

    async def many() -> list[tuple[int, str | None]]:
        async def one(i: int) -> tuple[int, str | None]:
            request_id_var.set(f"req-{i}")  # each task's own context
            return await off_loop(sessions, lambda: work(i))

        return await asyncio.gather(*(one(i) for i in range(20)))

    try:
        results = asyncio.run(many())
    finally:
        engine.dispose()
    threads = {t for t, _ in results}
    assert loop_thread not in threads  # never on the event loop
    assert [rid for _, rid in results] == [f"req-{i}" for i in range(20)]  # the request id goes along
    if engine.dialect.name == "sqlite":
        assert len(threads) == 1  # one writer at a time, queued, not racing for SQLite's lock
