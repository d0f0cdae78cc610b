"""The `lsp` command: clear refusal of bad settings, and `lsp migrate` building the schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lsp.cli import main
from lsp.db import migrate

pytestmark = pytest.mark.unit


def test_unsafe_mainnet_config_exits_2_with_the_reason_and_no_traceback() -> None:
    result = CliRunner().invoke(main, ["check-config"], env={"LSP_NETWORK": "mainnet"})
    assert result.exit_code == 2
    assert "refusing unsafe settings on mainnet" in result.output
    assert "Traceback" not in result.output


def test_check_config_masks_secrets() -> None:
    result = CliRunner().invoke(main, ["check-config"], env={"LSP_ADMIN_API_KEY": "super-secret-admin-key"})
    assert result.exit_code == 0, result.output
    assert "LSP_MIN_CHANNEL_SIZE=1000000" in result.output
    assert "super-secret-admin-key" not in result.output


def test_migrate_builds_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(main, ["migrate"], env={"LSP_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert migrate.current_revision(url) == migrate.head_revision()
