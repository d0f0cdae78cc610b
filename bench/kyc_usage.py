"""`lab bench kyc-usage`: the KYC volume query every payment runs, against a long history.

The daily and monthly limits (lsp/compliance/kyc.py) sum what the client moved this UTC day
and month, under the client's lock, on every payment. One run, one database: ``payments``
synthetic payments spread over ``days`` days between two clients, then the query timed with the
schema's index on (client_id, created_at) and again with only the old index on client_id (the
schema before migration usage_0001). Reported: ms per query each way and their ratio.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from harness.lsp_process import scratch_postgres
from lsp.compliance import kyc
from lsp.db import migrate
from lsp.db.base import make_engine, make_sessionmaker, session_scope, utcnow

CLIENTS = ("busy", "other")
BATCH = 10_000


def _fill(engine: Engine, payments: int, days: int, seed: int) -> None:
    rng = random.Random(seed)
    now = utcnow()
    with engine.begin() as c:
        for cid in CLIENTS:
            c.execute(
                text(
                    "INSERT INTO clients (id, name, api_key, secret_encrypted, requests_per_minute, monthly_volume_sat,"
                    " custom_routing, priority_support, dedicated_liquidity, active, created_at, balance_sat)"
                    " VALUES (:id, :id, :id, 'x', 60, 0, false, false, false, true, :at, 0)"
                ),
                {"id": cid, "at": now - timedelta(days=days)},
            )
        insert = text(
            "INSERT INTO payments (id, client_id, idempotency_key, payment_hash, payment_request, amount_sat,"
            " max_fee_sat, fee_sat, status, created_at) VALUES (:id, :client, :id, :id, 'lnbcrt', 1000, 10, 1,"
            " :status, :at)"
        )
        for start in range(0, payments, BATCH):
            c.execute(
                insert,
                [
                    {
                        "id": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "client": rng.choice(CLIENTS),
                        "status": rng.choice(("succeeded", "succeeded", "failed")),
                        "at": now - timedelta(seconds=rng.uniform(0, days * 86_400)),
                    }
                    for _ in range(min(BATCH, payments - start))
                ],
            )


def _time_usage(engine: Engine, queries: int) -> tuple[float, kyc.Usage]:
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as s:
        usage = kyc.usage(s, CLIENTS[0])  # warm
        t = time.perf_counter()
        for _ in range(queries):
            kyc.usage(s, CLIENTS[0])
        return (time.perf_counter() - t) * 1000 / queries, usage


def run(
    *,
    payments: int = 100_000,
    days: int = 180,
    queries: int = 50,
    db_url: str | None = None,
    seed: int = 7,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    with ExitStack() as stack:
        if db_url is None:
            url = f"sqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory())) / 'usage.db'}"
        else:
            url = stack.enter_context(scratch_postgres(db_url, "lsp_bench_usage"))
        migrate.upgrade(url)
        engine = make_engine(url)
        stack.callback(engine.dispose)
        _fill(engine, payments, days, seed)
        indexed_ms, usage = _time_usage(engine, queries)
        with engine.begin() as c:  # the schema before usage_0001
            c.execute(text("DROP INDEX ix_payments_client_id_created_at"))
            c.execute(text("CREATE INDEX ix_payments_client_id ON payments (client_id)"))
        client_only_ms, again = _time_usage(engine, queries)
        assert again == usage
    result = {
        "benchmark": "kyc-usage",
        "database": "postgresql" if db_url else "sqlite",
        "payments": payments,
        "days": days,
        "month_sat": usage.month_sat,
        "ms_per_query": {"client_id_created_at": indexed_ms, "client_id_only": client_only_ms},
        "ratio": client_only_ms / indexed_ms if indexed_ms else 0.0,
    }
    echo(
        f"{result['database']}: {payments:,} payments over {days} days; usage query {indexed_ms:.2f} ms with "
        f"(client_id, created_at), {client_only_ms:.2f} ms with client_id only ({result['ratio']:.1f}x)"
    )
    return result
