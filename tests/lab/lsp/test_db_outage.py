"""PostgreSQL stopped for 10 s under load: the API answers 503 with ``Retry-After`` (never a 500,
never a hang), recovers by itself when the database is back, and loses nothing: every payment it
answered for is recorded, an invoice paid to the LSP during the outage is credited afterwards,
and ``lsp reconcile`` finds no difference.

The database is a private PostgreSQL cluster started for this test (scripts/start-postgres.sh on
its own directory and port), so stopping it touches no other test."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.lsp_process import free_port, reconcile
from harness.wait import wait_for
from lsp.client import LSPAPIError
from tests.lab.lsp.conftest import LiveLsp  # type: ignore[import-not-found]

pytestmark = pytest.mark.topology("star5")
REPO = Path(__file__).resolve().parents[3]
OUTAGE_S = 10.0


def _pg_ctl(datadir: str, *args: str) -> None:
    pg_ctl = next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))), shutil.which("pg_ctl") or "pg_ctl"
    )
    cmd = [pg_ctl, "-D", datadir, *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


class PrivatePostgres:
    def __init__(self) -> None:
        if not (shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))):
            pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
        # Under /tmp itself: the postgres user must reach it (pytest's tmp_path is root-only).
        self.datadir = tempfile.mkdtemp(prefix="lab-pg-outage-")
        self.port = free_port()
        self.url = ""

    def start(self) -> str:
        env = {**os.environ, "PGDATA_DIR": self.datadir, "PGPORT": str(self.port)}
        out = subprocess.run(
            [str(REPO / "scripts" / "start-postgres.sh")], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        self.url = out.stdout.strip()
        return self.url

    def stop(self) -> None:
        _pg_ctl(self.datadir, "stop", "-m", "fast", "-w")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.datadir, ignore_errors=True)


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    p = PrivatePostgres()
    try:
        yield p
    finally:
        p.destroy()


@pytest.fixture
def lsp_db_url(pg: PrivatePostgres) -> str:
    return pg.start()


def test_postgres_outage_under_load_is_503_with_retry_after_then_recovers_losing_nothing(
    pg: PrivatePostgres, lsp_factory: Callable[..., LiveLsp]
) -> None:
    live = lsp_factory()
    lab, api = live.lab, live.client
    live.fund_client(200_000, payer="c2")
    statuses: Counter[str] = Counter()
    retry_after: set[str] = set()
    answered: list[str] = []  # payment hashes the API answered 200 for
    stop = threading.Event()

    def load() -> None:  # bounded: ends with the test, at most ~2 requests in flight
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            try:
                if n % 5 == 0:
                    inv = lab.node("c3").add_invoice(1_000, memo=f"outage load {n}")
                    p = api.send_payment(inv.payment_request, max_fee_sat=20, idempotency_key=f"load-{n}")
                    answered.append(p["paymentHash"])
                else:
                    api.balance()
                statuses["ok"] += 1
            except LSPAPIError as exc:
                statuses[str(exc.status)] += 1
                if exc.status == 503:
                    retry_after.add(exc.headers.get("Retry-After", ""))
            time.sleep(0.05)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    wait_for(lambda: statuses["ok"] >= 10, what="the load to get going", timeout_s=30)

    # An invoice paid to the LSP while its database is down: LND settles it then, the ledger later.
    paid_during = api.create_invoice(7_000, "paid during the outage")
    pg.stop()
    down_at = time.monotonic()
    assert lab.node("c2").pay_invoice(paid_during["paymentRequest"], fee_limit_sat=100).succeeded
    time.sleep(max(0.0, OUTAGE_S / 2 - (time.monotonic() - down_at)))
    assert live.server.proc is not None and live.server.proc.poll() is None, "the LSP died with its database"
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    outage_answers = dict(statuses)
    pg.start()

    def answers() -> bool:
        try:
            return api.balance() is not None
        except LSPAPIError as exc:
            assert exc.status == 503, exc
            return False

    wait_for(answers, what="the API to answer again without a restart", timeout_s=60)
    time.sleep(2)
    stop.set()
    worker.join(timeout=60)

    assert statuses["503"] > 0, statuses  # the outage was seen ...
    assert retry_after == {"5"}, retry_after  # ... and always said when to come back
    assert set(statuses) <= {"ok", "503"}, statuses  # never a 500 or another error
    assert statuses["ok"] > outage_answers.get("ok", 0), "no success after the database came back"
    # Nothing lost: every payment answered for is in the LSP, final, and matches LND.
    for h in answered:
        assert api.get_payment(h)["status"] in ("succeeded", "failed", "in_flight")
    wait_for(
        lambda: api.get_invoice(paid_during["invoiceId"])["status"] == "settled",
        what="the invoice paid during the outage to be credited", timeout_s=90,
    )
    inv = api.create_invoice(5_000, "after the outage")
    assert lab.node("c2").pay_invoice(inv["paymentRequest"], fee_limit_sat=100).succeeded
    wait_for(
        lambda: api.get_invoice(inv["invoiceId"])["status"] == "settled",
        what="an invoice paid after the outage to be credited", timeout_s="PAYMENT",
    )
    wait_for(
        lambda: all(api.get_payment(h)["status"] != "in_flight" for h in answered),
        what="every payment to be final", timeout_s="PAYMENT",
    )
    report = reconcile(live.server.env)
    assert report["ok"], report
    assert "Traceback" not in live.server.log_text()
