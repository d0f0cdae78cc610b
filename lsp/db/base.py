"""Engine and session factory. SQLite (file) by default, PostgreSQL in production."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy.exc
from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations are the same on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements an "INTEGER PRIMARY KEY"; PostgreSQL wants BIGINT for ids that grow forever.
BigIntPK = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Scid(TypeDecorator[int]):
    """A short channel id: an unsigned 64-bit number in a signed BIGINT column (two's complement).

    SCIDs of ordinary channels fit a signed BIGINT (block height < 2^23), but scid-alias and
    JIT SCIDs (block height 16,000,000+) are >= 2^63 and overflow it: SQLite refuses the value
    and PostgreSQL answers "bigint out of range". LND reports forwards over zero-conf JIT
    channels with those ids, so every column holding an SCID uses this type."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not 0 <= value < 2**64:
            raise ValueError(f"{value} is not an unsigned 64-bit short channel id")
        return value - 2**64 if value >= 2**63 else value

    def process_result_value(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return value + 2**64 if value < 0 else value


# The database is down, restarting, refusing connections or out of pooled connections: a
# transient state the LSP waits out (503 + Retry-After in the API; retry with backoff in the
# background loops), never a bug to print a traceback for.
DB_UNAVAILABLE: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


def db_error_line(exc: BaseException) -> str:
    """The first line of what the driver said (no SQL, no traceback)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, *, pool_size: int = 5, pool_timeout_s: float = 30.0) -> Engine:
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        # The API serves requests from a thread pool; SQLite needs to know that's fine.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_size=pool_size, pool_timeout=pool_timeout_s, pool_pre_ping=True)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")
_writers: weakref.WeakKeyDictionary[Engine, ThreadPoolExecutor] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def _writer_thread(engine: Engine) -> ThreadPoolExecutor:
    with _writers_lock:
        pool = _writers.get(engine)
        if pool is None:
            pool = _writers[engine] = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            weakref.finalize(engine, pool.shutdown, wait=False)  # the thread ends with its engine
        return pool


async def off_loop(sessions: sessionmaker[Session], work: Callable[[], T]) -> T:
    """Run ``work`` (blocking database work, typically one write transaction) off the event loop.

    On SQLite, in one thread per engine: SQLite lets one connection write at a time, and writers
    meeting in threads of their own wait in its busy handler, which sleeps 1, 2, 5, 10, 15 ... ms
    between looks, long after the lock is free. At 8 concurrent API payments the payment's two
    write transactions waited 7-10 ms on average and 30-37 ms at the 95th percentile that way
    (docs/BENCHMARKS.md); queued on one thread they follow each other at once. On PostgreSQL,
    whose transactions run side by side, in the default executor."""
    bind = sessions.kw.get("bind")
    loop = asyncio.get_running_loop()
    # The caller's context goes along (the request id its audit entries carry), as asyncio.to_thread does.
    call = contextvars.copy_context().run
    if isinstance(bind, Engine) and bind.dialect.name == "sqlite":
        return await loop.run_in_executor(_writer_thread(bind), call, work)
    return await loop.run_in_executor(None, call, work)
