"""The LSPS sections of the settings (LSP_LSPS1_*, LSP_LSPS2_*): read from the environment, validated
at start-up with errors naming the variable, and what both transports then sell."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from lsp.config import load_settings
from lsp.errors import ConfigError
from lsp.lsps.jsonrpc import Caller
from lsp.lsps.lsps2 import Lsps2Methods

pytestmark = pytest.mark.unit

CLIENT = "02" + "11" * 32


class NoBuys:
    """A buy store that is never reached: get_info stores nothing."""


def test_default_menu_is_two_lines_an_hour_and_a_day() -> None:
    menu = load_settings().lsps2.config(b"k" * 32).menu
    assert [(m.min_fee_msat, m.proportional, m.valid_for) for m in menu] == [
        (2_000_000, 5_000, timedelta(hours=1)),
        (3_000_000, 8_000, timedelta(hours=24)),
    ]


def test_menu_from_the_environment_is_what_get_info_offers(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        {"min_fee_msat": 1_000, "proportional": 100, "valid_for_s": 60, "min_payment_size_msat": 1_000},
        {"min_fee_msat": 5_000, "proportional": 900, "valid_for_s": 600, "max_payment_size_msat": 9_000_000},
    ]
    monkeypatch.setenv("LSP_LSPS2_MENU", json.dumps(lines))
    monkeypatch.setenv("LSP_LSPS2_MPP_TIMEOUT_S", "12.5")
    settings = load_settings()
    assert settings.lsps2.mpp_timeout_s == 12.5
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    methods = Lsps2Methods(settings.lsps2.config(b"k" * 32), NoBuys(), clock=lambda: now)  # type: ignore[arg-type]
    offered = asyncio.run(methods.get_info({}, Caller(CLIENT, "lightning")))["opening_fee_params_menu"]
    # bLIP-52 wire form: msat amounts as strings, valid_until an ISO 8601 UTC time.
    assert [(o["min_fee_msat"], o["proportional"], o["valid_until"]) for o in offered] == [
        ("1000", 100, "2026-12-04T12:01:00.000Z"),
        ("5000", 900, "2026-12-04T12:10:00.000Z"),
    ]
    assert (offered[0]["min_payment_size_msat"], offered[1]["max_payment_size_msat"]) == ("1000", "9000000")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "LSP_LSPS2_MENU: is not valid JSON"),
        ("[]", "LSP_LSPS2_MENU: List should have at least 1 item"),
        ('[{"min_fee_msat": -1, "proportional": 1, "valid_for_s": 60}]', "LSP_LSPS2_MENU[0].min_fee_msat:"),
        ('[{"min_fee_msat": 1, "proportional": 1, "valid_for_s": 60, "fee": 2}]', "LSP_LSPS2_MENU[0].fee:"),
        (
            '[{"min_fee_msat": 9, "proportional": 1, "valid_for_s": 60},'
            ' {"min_fee_msat": 1, "proportional": 1, "valid_for_s": 60}]',
            "LSP_LSPS2_MENU: must be ordered by increasing min_fee_msat and proportional",
        ),
    ],
)
def test_a_bad_menu_is_refused_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("LSP_LSPS2_MENU", value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert message in err.value.message, err.value.message


def test_every_section_reports_its_own_variables_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSP_LSPS1_MIN_CHANNEL_BALANCE_SAT", "5000000")
    monkeypatch.setenv("LSP_LSPS1_MAX_CHANNEL_BALANCE_SAT", "1000000")
    monkeypatch.setenv("LSP_SWAP_FEE_PPM", "2000000")
    monkeypatch.setenv("LSP_LSPS2_MPP_TIMEOUT_S", "0")
    monkeypatch.setenv("LSP_API_PORT", "0")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = err.value.message
    for expected in (
        "LSP_API_PORT:",
        "LSP_SWAP_FEE_PPM:",
        "LSP_LSPS2_MPP_TIMEOUT_S:",
        "LSP_LSPS1: min_channel_balance_sat is larger than max_channel_balance_sat",
    ):
        assert expected in msg, msg


def test_lsps1_section_is_the_order_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSP_LSPS1_ORDER_EXPIRY_S", "8")
    monkeypatch.setenv("LSP_LSPS1_FEE_PPM", "1234")
    monkeypatch.setenv("LSP_LSPS1_ONCHAIN", "false")
    cfg = load_settings().lsps1
    assert (cfg.order_expiry, cfg.fee_ppm, cfg.onchain) == (timedelta(seconds=8), 1234, False)


def test_a_typo_in_a_section_variable_names_the_one_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSP_LSPS2_MPP_TIMEOUT", "10")
    with pytest.raises(ConfigError, match="LSP_LSPS2_MPP_TIMEOUT: not a setting; did you mean LSP_LSPS2_MPP_TIMEOUT_S"):
        load_settings()
