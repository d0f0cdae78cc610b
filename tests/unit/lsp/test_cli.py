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


def test_seed_style_postgresql_url_uses_psycopg3() -> None:
    from lsp.config import load_settings

    s = load_settings(database_url="postgresql://lsp:pw@db.example/lsp")
    assert s.database_url == "postgresql+psycopg://lsp:pw@db.example/lsp"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LSP_DATABASE_URL": "mysql://x@y/z"}, "LSP_DATABASE_URL: unsupported database 'mysql'"),
        ({"LSP_DATABASE_URL": "not a url"}, "LSP_DATABASE_URL: is not a database URL"),
        ({"LSP_COMPLIANCE_CONFIG_PATH": "/nonexistent/policy.yaml"}, "LSP_COMPLIANCE_CONFIG_PATH=/nonexistent/policy.yaml"),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(env: dict[str, str], expected: str) -> None:
    result = CliRunner().invoke(main, ["check-config"], env=env)
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output


def test_malformed_policy_file_is_refused_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("tiers: [unclosed\n")
    result = CliRunner().invoke(main, ["check-config"], env={"LSP_COMPLIANCE_CONFIG_PATH": str(bad)})
    assert result.exit_code == 2
    assert f"LSP_COMPLIANCE_CONFIG_PATH={bad}: not valid yaml" in result.output


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens there; the connection is refused at once.
    result = CliRunner().invoke(
        main, ["migrate"], env={"LSP_DATABASE_URL": "postgresql://nobody:secretpw@127.0.0.1:1/lsp"}
    )
    assert result.exit_code == 2
    assert "LSP_DATABASE_URL=postgresql+psycopg://nobody:***@127.0.0.1:1/lsp: cannot use the database" in result.output
    assert "secretpw" not in result.output and "Traceback" not in result.output


def test_scan_with_a_bad_date_names_the_option(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert CliRunner().invoke(main, ["migrate"], env={"LSP_DATABASE_URL": url}).exit_code == 0
    result = CliRunner().invoke(main, ["compliance", "scan", "--from", "garbage"], env={"LSP_DATABASE_URL": url})
    assert result.exit_code == 2
    assert "--from" in result.output and "'garbage' is not an ISO date" in result.output


def test_rescan_without_lnd_says_what_to_set(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["swaps", "rescan", "--from-height", "1"])
    assert result.exit_code == 2
    assert "this command needs LND: set LSP_LND_HOST" in result.output


def test_lsps_daemon_without_lnd_says_what_to_set() -> None:
    result = CliRunner().invoke(main, ["lsps"])
    assert result.exit_code == 2
    assert "this command needs LND: set LSP_LND_HOST" in result.output


def test_reconcile_without_lnd_says_what_to_set() -> None:
    result = CliRunner().invoke(main, ["reconcile"])
    assert result.exit_code == 2
    assert "this command needs LND: set LSP_LND_HOST" in result.output


def test_a_misspelt_variable_stops_every_command_before_it_starts() -> None:
    result = CliRunner().invoke(main, ["check-config"], env={"LSP_PAYMENT_TIMEOUTS": "1000"})
    assert result.exit_code == 2
    assert "LSP_PAYMENT_TIMEOUTS: not a setting; did you mean LSP_PAYMENT_TIMEOUT?" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_a_port_out_of_range_before_binding() -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "99999"])
    assert result.exit_code == 2
    assert "'--port': 99999 is not in the range 1<=x<=65535" in result.output


def test_migrate_to_an_unknown_revision_names_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lsp.db'}"
    result = CliRunner().invoke(main, ["migrate", "--revision", "nosuch"], env={"LSP_DATABASE_URL": url})
    assert result.exit_code == 2
    assert "--revision nosuch: Can't locate revision identified by 'nosuch'" in result.output
    assert "Traceback" not in result.output


def test_serve_without_generated_stubs_says_how_to_make_them_and_generates_nothing(tmp_path: Path) -> None:
    """Starting the LSP never runs Go or protoc: missing stubs are one line naming `lsp stubs`."""
    cert, macaroon = tmp_path / "tls.cert", tmp_path / "admin.macaroon"
    cert.write_text("not used")
    macaroon.write_bytes(b"not used")
    empty = tmp_path / "no-stubs"
    env = {
        "LND_STUBS_DIR": str(empty),
        "LSP_LND_HOST": "127.0.0.1:1",
        "LSP_LND_TLS_CERT_PATH": str(cert),
        "LSP_LND_MACAROON_PATH": str(macaroon),
        "LSP_DATABASE_URL": f"sqlite:///{tmp_path / 'lsp.db'}",
    }
    for command in (["serve", "--no-migrate"], ["lsps"], ["reconcile"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 2, (command, result.output)
        assert "run `lsp stubs`" in result.output
        assert "Traceback" not in result.output
    assert not empty.exists()


def test_a_bad_swap_setting_stops_the_lsp_at_start_naming_it() -> None:
    result = CliRunner().invoke(main, ["check-config"], env={"LSP_SWAP_MIN_AMOUNT": "20000000"})
    assert result.exit_code == 2
    assert "LSP_SWAP_MIN_AMOUNT is larger than LSP_SWAP_MAX_AMOUNT" in result.output
    result = CliRunner().invoke(main, ["check-config"], env={"LSP_SWAP_FEE_PPM": "lots"})
    assert result.exit_code == 2 and "LSP_SWAP_FEE_PPM:" in result.output
    assert "Traceback" not in result.output
