"""The ``lsp`` command: ``lsp serve`` runs the API, ``lsp migrate`` brings the database to the latest schema.

Configuration comes from LSP_* environment variables and ``.env`` (see docs/LSP.md);
an invalid or unsafe configuration is printed, without a traceback, and exits 2.
"""

from __future__ import annotations

import sys

import click

from lsp.config import Settings, load_settings
from lsp.errors import ConfigError


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    for var, path in (
        ("LSP_LND_TLS_CERT_PATH", settings.lnd_tls_cert_path),
        ("LSP_LND_MACAROON_PATH", settings.lnd_macaroon_path),
    ):
        if path is not None and not path.is_file():
            click.echo(f"error: {var}={path} is not a readable file", err=True)
            sys.exit(2)
    return settings


@click.group()
def main() -> None:
    """Lightning Service Provider."""


@main.command()
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to")
def migrate(revision: str) -> None:
    """Create or upgrade the database schema (SQLite or PostgreSQL, from LSP_DATABASE_URL)."""
    from lsp.db import migrate as m

    settings = _settings()
    m.upgrade(settings.database_url, revision)
    click.echo(f"database at revision {m.current_revision(settings.database_url)}")


@main.command()
@click.option("--host", default=None, help="bind address (default LSP_API_HOST)")
@click.option("--port", default=None, type=int, help="port (default LSP_API_PORT)")
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
    logs.configure(settings.log_level)
    if run_migrations:
        m.upgrade(settings.database_url)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


@main.command("check-config")
def check_config() -> None:
    """Validate the configuration and print it (secrets masked)."""
    settings = _settings()
    for name, value in settings.model_dump().items():
        click.echo(f"LSP_{name.upper()}={value}")


if __name__ == "__main__":
    main()


@main.group()
def swaps() -> None:
    """Submarine swaps (docs/SWAPS.md)."""


@swaps.command("rescan")
@click.option("--from-height", type=int, required=True, help="first block to scan")
@click.option("--to-height", type=int, default=None, help="last block (default: the tip)")
def swaps_rescan(from_height: int, to_height: int | None) -> None:
    """Find swap-in lockups the LSP missed: scan blocks for outputs paying known swap addresses."""
    import asyncio

    from lsp.app import build_context
    from lsp.lnd.client import LndClient
    from lsp.swaps.config import SwapSettings
    from lsp.swaps.service import SwapService

    settings = _settings()

    async def run() -> list[tuple[str, str, str | None]]:
        async with LndClient.from_settings(settings) as lnd:
            ctx = build_context(settings, lnd)
            try:
                found = await SwapService(ctx, lnd, SwapSettings()).rescan(from_height, to_height)
            finally:
                ctx.engine.dispose()
            return [(s.id, s.state, s.lockup_txid) for s in found]

    found = asyncio.run(run())
    for swap_id, state, txid in found:
        click.echo(f"swap {swap_id}: lockup {txid} recorded, state {state}")
    click.echo(f"{len(found)} lockup(s) recovered")
