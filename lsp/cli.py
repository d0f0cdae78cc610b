"""The ``lsp`` command: ``lsp serve`` runs the API, ``lsp migrate`` brings the database to the latest schema.

Configuration comes from LSP_* environment variables and ``.env`` (see docs/LSP.md);
an invalid or unsafe configuration is printed, without a traceback, and exits 2.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click

from lsp.config import Settings, load_settings
from lsp.errors import ConfigError

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _settings() -> Settings:
    from lsp.compliance.policy import load_policy

    try:
        settings = load_settings()  # with its sections (LSP_SWAP_*, LSP_LSPS1_*, LSP_LSPS2_*)
        # The policy file is read at start, not at the first request that needs it.
        load_policy(settings.compliance_config_path)
    except ConfigError as exc:
        _fail(exc.message)
    for var, path in (
        ("LSP_LND_TLS_CERT_PATH", settings.lnd_tls_cert_path),
        ("LSP_LND_MACAROON_PATH", settings.lnd_macaroon_path),
    ):
        if path is not None and not path.is_file():
            _fail(f"{var}={path} is not a readable file")
    return settings


@contextmanager
def _database(settings: Settings) -> Iterator[None]:
    """Turn a database that cannot be reached or used into one line naming the setting."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        yield
    except sqlalchemy.exc.OperationalError as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        reason = str(exc.orig or exc).strip().splitlines()[0]
        _fail(f"LSP_DATABASE_URL={where}: cannot use the database: {reason}")


def _run(settings: Settings, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async command body; the database's and LND's failures end it in one line each."""
    import asyncio

    from lsp.errors import LSPError

    try:
        with _database(settings):
            return asyncio.run(work())
    except LSPError as exc:
        _fail(exc.message)


def _stubs_or_fail() -> None:
    """Checked at start-up, before the server accepts a request: the LND client needs them."""
    from lncore.stubs import StubsError, require

    try:
        require()
    except StubsError as exc:
        _fail(str(exc))


def _lnd_or_fail(settings: Settings) -> None:
    if not settings.lnd_configured:
        _fail("this command needs LND: set LSP_LND_HOST, LSP_LND_TLS_CERT_PATH and LSP_LND_MACAROON_PATH")
    _stubs_or_fail()


@click.group()
def main() -> None:
    """Lightning Service Provider."""


@main.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to")
def migrate(revision: str) -> None:
    """Create or upgrade the database schema (SQLite or PostgreSQL, from LSP_DATABASE_URL)."""
    from alembic.util.exc import CommandError

    from lsp.db import migrate as m

    settings = _settings()
    with _database(settings):
        try:
            m.upgrade(settings.database_url, revision)
        except CommandError as exc:  # an unknown or ambiguous revision
            _fail(f"--revision {revision}: {exc}")
        click.echo(f"database at revision {m.current_revision(settings.database_url)}")


@main.command()
@click.option("--host", default=None, help="bind address (default LSP_API_HOST)")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="port (default LSP_API_PORT)")
@click.option(
    "--migrate/--no-migrate",
    "run_migrations",
    default=True,
    show_default=True,
    help="upgrade the database schema before serving",
)
def serve(host: str | None, port: int | None, run_migrations: bool) -> None:
    """Serve the HTTP API (uvicorn)."""
    import uvicorn

    from lsp import logs
    from lsp.app import create_app
    from lsp.db import migrate as m

    settings = _settings()
    if settings.lnd_configured:
        _stubs_or_fail()
    logs.configure(settings.log_level)
    if run_migrations:
        with _database(settings):
            m.upgrade(settings.database_url)
    try:
        app = create_app(settings)
    except ConfigError as exc:
        _fail(exc.message)
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


@main.command("stubs")
def stubs_command() -> None:
    """Generate LND's gRPC stubs for the pinned LND version (once, at setup; needs Go).

    Fetches LND's .proto files through the Go module proxy and runs grpcio-tools over them
    into the cache (LAB_CACHE_DIR, else ~/.cache/lightning-lab); `lsp serve` refuses to start
    without them. Idempotent."""
    from lncore.stubs import StubsError, generate

    try:
        click.echo(f"stubs ready: {generate()}")
    except StubsError as exc:
        _fail(str(exc))


@main.command("lsps")
def lsps_daemon() -> None:
    """Run the LSPS daemon: LSPS0 peer messages, the LSPS2 JIT interceptor, wrapped invoices and
    LSPS1 order follow-up, against the same LND node and database as `lsp serve` (docs/LSPS.md).
    Run LND with --requireinterceptor so HTLCs it holds survive this process."""
    import asyncio

    from lsp import logs
    from lsp.lsps.__main__ import main as run_daemon

    settings = _settings()
    _lnd_or_fail(settings)
    logs.configure(settings.log_level)
    try:
        with _database(settings):
            asyncio.run(run_daemon(settings))
    except KeyboardInterrupt:
        pass


@main.command("check-config")
def check_config() -> None:
    """Validate the configuration and print it (secrets masked)."""
    settings = _settings()
    for name, value in settings.model_dump().items():
        click.echo(f"LSP_{name.upper()}={value}")


# --- compliance (issue 9) --------------------------------------------------------------------------


@main.group()
def compliance() -> None:
    """Transaction monitoring over the database's history."""


@compliance.command("scan")
@click.option("--from", "frm", default=None, help="ISO date/datetime (UTC); default: all history")
@click.option("--to", "to", default=None, help="ISO date/datetime (UTC), exclusive")
@click.option(
    "--config",
    "config_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="policy file (default LSP_COMPLIANCE_CONFIG_PATH)",
)
def compliance_scan(frm: str | None, to: str | None, config_path: str | None) -> None:
    """Run every monitoring rule over past transactions; new alerts are stored (a re-scan adds none)."""
    from datetime import UTC, datetime
    from pathlib import Path

    from lsp.compliance import monitoring
    from lsp.compliance.policy import load_policy
    from lsp.db.base import make_engine, make_sessionmaker, session_scope

    settings = _settings()

    def when(value: str | None, option: str) -> datetime | None:
        if value is None:
            return None
        try:
            d = datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an ISO date or datetime", param_hint=option) from None
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    since, until = when(frm, "--from"), when(to, "--to")

    try:
        policy = load_policy(Path(config_path) if config_path else settings.compliance_config_path)
    except ConfigError as exc:
        _fail(exc.message)
    engine = make_engine(settings.database_url)
    try:
        with _database(settings), session_scope(make_sessionmaker(engine)) as s:
            r = monitoring.scan(s, policy, since=since, until=until)
    finally:
        engine.dispose()
    click.echo(
        f"scanned {r.transactions} transactions: {r.hits} rule hits, {r.created} new alerts, {r.extended} extended"
    )


@main.group("audit")
def audit_group() -> None:
    """The hash-chained audit trail."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Check every entry's hash and link; exit 1 listing each edited, missing or reordered entry."""
    from lsp.compliance import audit
    from lsp.db.base import make_engine, make_sessionmaker, session_scope

    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        with _database(settings), session_scope(make_sessionmaker(engine)) as s:
            n, problems = audit.verify(s)
    finally:
        engine.dispose()
    if not problems:
        click.echo(f"audit trail intact: {n} entries verified")
        return
    for p in problems:
        where = f"seq {p.seq}" if p.seq is not None else "chain"
        click.echo(f"TAMPERED {p.kind} at {where}: {p.detail}")
    click.echo(f"audit trail BROKEN: {len(problems)} problem(s) in {n} entries", err=True)
    sys.exit(1)


@main.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def reconcile_cmd(as_json: bool) -> None:
    """Check every client's ledger, channel, LSPS order and swap against LND, and the audit chain.

    Prints each difference (nothing changes) and the HTLCs still pending on the node's channels;
    exits 1 when anything differs or the audit chain is broken."""
    import json

    from lsp.compliance import audit
    from lsp.config import lnd_from_settings
    from lsp.db.base import make_engine, make_sessionmaker, session_scope
    from lsp.services.reconcile import Reconciliation, reconcile

    settings = _settings()
    _lnd_or_fail(settings)
    engine = make_engine(settings.database_url)

    async def run() -> tuple[Reconciliation, int, list[audit.Problem]]:
        async with lnd_from_settings(settings) as lnd:
            with session_scope(make_sessionmaker(engine)) as s:
                report = await reconcile(lnd, s)
                entries, problems = audit.verify(s)
        return report, entries, problems

    try:
        report, entries, problems = _run(settings, run)
    finally:
        engine.dispose()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok and not problems,
                    "clients": report.clients,
                    "checked": {
                        "invoices": report.invoices_checked,
                        "payments": report.payments_checked,
                        "channels": report.channels_checked,
                        "lsps1Orders": report.orders_checked,
                        "jitBuys": report.buys_checked,
                        "swaps": report.swaps_checked,
                        "auditEntries": entries,
                    },
                    "pendingHtlcs": report.pending_htlcs,
                    "differences": [d.__dict__ for d in report.differences],
                    "auditProblems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in problems],
                },
                indent=2,
            )
        )
    else:
        for d in report.differences:
            click.echo(f"DIFF {d.kind} {d.reference} (client {d.client_id}): {d.problem}")
        for p in problems:
            click.echo(f"AUDIT {p.kind} at {'seq ' + str(p.seq) if p.seq is not None else 'chain'}: {p.detail}")
        click.echo(
            f"checked {report.invoices_checked} invoice(s), {report.payments_checked} payment(s), "
            f"{report.channels_checked} channel(s), {report.orders_checked} LSPS1 order(s), "
            f"{report.buys_checked} JIT buy(s), {report.swaps_checked} swap(s) of {report.clients} client(s) "
            f"and {entries} audit entries; {report.pending_htlcs} HTLC(s) pending on the node's channels"
        )
        click.echo(
            "reconciled: the ledger agrees with LND to the sat"
            if report.ok and not problems
            else f"NOT reconciled: {len(report.differences)} difference(s), {len(problems)} audit problem(s)"
        )
    if not report.ok or problems:
        sys.exit(1)


@main.group()
def swaps() -> None:
    """Submarine swaps (docs/SWAPS.md)."""


@swaps.command("rescan")
@click.option("--from-height", type=int, required=True, help="first block to scan")
@click.option("--to-height", type=int, default=None, help="last block (default: the tip)")
def swaps_rescan(from_height: int, to_height: int | None) -> None:
    """Find swap-in lockups the LSP missed: scan blocks for outputs paying known swap addresses."""

    from lsp.app import build_context
    from lsp.config import lnd_from_settings
    from lsp.swaps.service import SwapService

    settings = _settings()
    _lnd_or_fail(settings)
    if from_height < 0 or (to_height is not None and to_height < from_height):
        _fail("--from-height must be >= 0 and --to-height (when given) >= --from-height")

    async def run() -> list[tuple[str, str, str | None]]:
        async with lnd_from_settings(settings) as lnd:
            ctx = build_context(settings, lnd)
            try:
                found = await SwapService(ctx, lnd, settings.swap).rescan(from_height, to_height)
            finally:
                ctx.engine.dispose()
            return [(s.id, s.state, s.lockup_txid) for s in found]

    found = _run(settings, run)
    for swap_id, state, txid in found:
        click.echo(f"swap {swap_id}: lockup {txid} recorded, state {state}")
    click.echo(f"{len(found)} lockup(s) recovered")


@main.group()
def lsps5() -> None:
    """LSPS5 webhooks (bLIP-55; docs/LSPS.md)."""


@lsps5.command("notify")
@click.argument("node_id")
@click.argument(
    "method", type=click.Choice(["liquidity_management_request", "onion_message_incoming", "payment_incoming"])
)
def lsps5_notify(node_id: str, method: str) -> None:
    """Send lsps5.METHOD to NODE_ID's webhooks (skipped while it is connected or the method is
    cooling down for it, as for the LSP's own notifications)."""

    from lsp.config import lnd_from_settings
    from lsp.db.base import make_engine, make_sessionmaker
    from lsp.lsps.lsps5 import notify_once

    settings = _settings()
    _lnd_or_fail(settings)
    if not re.fullmatch(r"(02|03)[0-9a-f]{64}", node_id):
        _fail("NODE_ID must be a 66-character lowercase hex node id")

    async def run() -> list[tuple[str, int | None, str | None]]:
        engine = make_engine(settings.database_url)
        try:
            async with lnd_from_settings(settings) as lnd:
                out = await notify_once(lnd, make_sessionmaker(engine), settings.lsps5, node_id, f"lsps5.{method}")
        finally:
            engine.dispose()
        return [(d.url, d.status, d.error) for d in out]

    sent = _run(settings, run)
    if not sent:
        click.echo(f"nothing sent: {node_id[:16]}... has no webhooks, is connected, or was sent lsps5.{method} lately")
    for url, status, error in sent:
        click.echo(f"{url}: {error or f'HTTP {status}'}")
    if sent and not any(status == 200 for _, status, _ in sent):
        sys.exit(1)


if __name__ == "__main__":
    main()
