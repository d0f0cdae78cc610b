from __future__ import annotations

import pytest

from lsp.config import DEMO_ADMIN_KEY, load_settings
from lsp.errors import ConfigError

pytestmark = pytest.mark.unit

STRONG = "x" * 40


def test_defaults_are_the_seed_fee_schedule() -> None:
    s = load_settings()
    assert (s.min_channel_size, s.max_channel_size) == (1_000_000, 100_000_000)
    assert (s.channel_fee_rate, s.liquidity_fee_rate, s.routing_fee_rate) == (0.001, 0.002, 0.0001)
    assert (s.rebalance_threshold, s.max_liquidity_requests, s.max_routing_attempts) == (0.1, 100, 5)
    assert s.payment_timeout == 60000
    # Opening fee: 1000 sat base + 0.1 % of capacity.
    assert s.opening_fee(1_000_000) == 2000
    assert s.opening_fee(1_234_567) == 1000 + 1235  # rounded up, never down


def test_env_vars_with_lsp_prefix_configure_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSP_NETWORK", "signet")
    monkeypatch.setenv("LSP_MIN_CHANNEL_SIZE", "50000")
    monkeypatch.setenv("LSP_CHANNEL_FEE_RATE", "0.002")
    s = load_settings()
    assert s.network == "signet"
    assert s.opening_fee(50_000) == 1100


def test_dotenv_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("LSP_NETWORK=testnet\nLSP_MAX_ROUTING_ATTEMPTS=9\n")
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert (s.network, s.max_routing_attempts) == ("testnet", 9)


def test_mainnet_refuses_demo_secrets_naming_each_variable() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(network="mainnet")
    msg = str(exc.value)
    assert "refusing unsafe settings on mainnet" in msg
    assert "LSP_ADMIN_API_KEY" in msg and "LSP_SECRET_KEY" in msg


def test_mainnet_refuses_debug() -> None:
    with pytest.raises(ConfigError, match="LSP_DEBUG"):
        load_settings(network="mainnet", admin_api_key=STRONG, secret_key=STRONG + "y", debug=True)


def test_mainnet_starts_with_strong_secrets() -> None:
    s = load_settings(network="mainnet", admin_api_key=STRONG, secret_key=STRONG + "y", admin_password=STRONG + "z")
    assert s.network == "mainnet"
    assert DEMO_ADMIN_KEY not in repr(s)  # secrets are SecretStr: never printed


def test_regtest_allows_demo_defaults() -> None:
    assert load_settings(network="regtest").admin_api_key.get_secret_value() == DEMO_ADMIN_KEY


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"network": "moonnet"}, "LSP_NETWORK"),
        ({"min_channel_size": 5_000_000, "max_channel_size": 2_000_000}, "min_channel_size"),
        ({"channel_fee_rate": 1.5}, "LSP_CHANNEL_FEE_RATE"),
        ({"payment_timeout": 5}, "LSP_PAYMENT_TIMEOUT"),
    ],
)
def test_invalid_values_are_refused_with_the_variable_named(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(**overrides)


def test_a_misspelt_lsp_variable_is_refused_naming_the_setting_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSP_MIN_CHANEL_SIZE", "50000")
    monkeypatch.setenv("LSP_SWAP_MAX_AMOUNTT", "5")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "LSP_MIN_CHANEL_SIZE: not a setting; did you mean LSP_MIN_CHANNEL_SIZE?" in err.value.message
    assert "LSP_SWAP_MAX_AMOUNTT: not a setting; did you mean LSP_SWAP_MAX_AMOUNT?" in err.value.message


def test_swap_settings_and_the_test_suites_database_are_not_mistaken_for_typos(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LSP_SWAP_POLL_S", "1")
    monkeypatch.setenv("LSP_TEST_POSTGRES_URL", "postgresql://x@127.0.0.1/y")
    assert load_settings().network == "regtest"


def test_crash_points_must_be_named_points_and_are_refused_on_mainnet() -> None:
    assert load_settings(crash_at="payment.in_flight, swap.enter.claimed").crash_points == [
        "payment.in_flight",
        "swap.enter.claimed",
    ]
    with pytest.raises(ConfigError, match=r"LSP_CRASH_AT: unknown crash point\(s\) \['payment.inflight'\]"):
        load_settings(crash_at="payment.inflight")
    with pytest.raises(ConfigError, match="LSP_CRASH_AT arms crash points"):
        load_settings(network="mainnet", admin_api_key=STRONG, secret_key=STRONG, admin_password=STRONG,
                      crash_at="payment.in_flight")
