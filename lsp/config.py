"""The LSP's one typed settings object.

Every value comes from an ``LSP_``-prefixed environment variable or a ``.env``
file and is validated once, at start-up. The fee schedule and limits mirror
the user's original configuration (MIN_CHANNEL_SIZE, CHANNEL_FEE_RATE, ...);
amounts are satoshis, rates are fractions (0.001 = 0.1 %), times say their unit.

On mainnet the demo defaults that make a lab convenient (a well-known admin
key, a well-known encryption secret, debug mode) are refused: a mainnet LSP
started with them would hand its API to anyone who read this file.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from lsp.errors import ConfigError
from lsp.hosting.config import HostingSettings
from lsp.lsps.config import Lsps1Settings, Lsps2Settings, Lsps5Settings
from lsp.services.fees_config import FeeSettings
from lsp.swaps.config import SwapSettings

Network = Literal["regtest", "signet", "testnet", "mainnet"]

# LSP_PEER_LSPS entries: NODE_ID@HOST:PORT (a name, IPv4 or [IPv6] address).
PEER_LSP_RE = re.compile(r"^(02|03)[0-9a-fA-F]{64}@([A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):[0-9]{1,5}$")
# Public on purpose: the lab and the docs use them. Refused on mainnet.
DEMO_ADMIN_KEY = "demo-admin-key"
DEMO_SECRET_KEY = "demo-secret-key-change-me"
MIN_MAINNET_SECRET_LEN = 32

if TYPE_CHECKING:
    from lncore.lnd.client import LndClient


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LSP_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- where we run
    network: Network = "regtest"
    debug: bool = False
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=3005, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    background_tasks: bool = Field(default=True, description="run the LND watchers and the webhook dispatcher")

    # --- the LND node (gRPC)
    lnd_host: str = "localhost:10009"
    lnd_tls_cert_path: Path | None = None
    lnd_macaroon_path: Path | None = None

    # --- persistence
    database_url: str = "sqlite:///./lsp.db"
    db_pool_size: int = Field(default=25, ge=1)
    db_pool_timeout: int = Field(default=30000, ge=1, description="milliseconds")

    # --- secrets
    admin_api_key: SecretStr = SecretStr(DEMO_ADMIN_KEY)
    # Encrypts client API secrets and webhook secrets at rest (Fernet key derived from it).
    secret_key: SecretStr = SecretStr(DEMO_SECRET_KEY)

    # --- request authentication and limits
    auth_max_clock_skew: int = Field(default=300, ge=1, description="seconds a signed timestamp may be off")
    default_requests_per_minute: int = Field(default=60, ge=1)
    default_monthly_volume: int = Field(default=100_000_000, ge=0, description="sats")

    # --- channel management (sats / fractions)
    min_channel_size: int = Field(default=1_000_000, ge=20_000)
    max_channel_size: int = Field(default=100_000_000, ge=20_000)
    channel_base_fee: int = Field(default=1000, ge=0, description="sats per channel open")
    channel_fee_rate: float = Field(default=0.001, ge=0, lt=1, description="fraction of capacity")
    channel_open_grace: float = Field(
        default=180.0,
        ge=1,
        description="seconds an interrupted channel open request may run before LND decides it",
    )
    rebalance_threshold: float = Field(default=0.1, ge=0, le=0.5)

    # --- liquidity
    jit_channel_enabled: bool = True
    liquidity_fee_rate: float = Field(default=0.002, ge=0, lt=1)
    liquidity_reservation_fee: int = Field(default=100, ge=0, description="sats per reservation")
    max_liquidity_requests: int = Field(default=100, ge=0, description="active reservations, all clients")
    max_liquidity_duration: int = Field(default=86_400_000, ge=1, description="milliseconds")

    # --- other LSPs whose offers GET /api/liquidity/providers shows, asked over LSPS0 at each request
    peer_lsps: str = Field(default="", description="comma-separated NODE_ID@HOST:PORT of other LSPs")
    peer_lsps_timeout: float = Field(default=10.0, gt=0, le=120, description="seconds to wait for a peer LSP")

    # --- watchtowers the LSP's LND backs its channel states up to (needs LND's --wtclient.active)
    watchtowers: str = Field(default="", description="comma-separated TOWER_PUBKEY@HOST:PORT")

    # --- routing / payments
    routing_fee_rate: float = Field(default=0.0001, ge=0, lt=1)
    max_routing_attempts: int = Field(default=5, ge=1)
    payment_timeout: int = Field(default=60000, ge=1000, description="milliseconds")
    routing_prior: Literal["uniform", "bimodal"] = Field(
        default="uniform",
        description="liquidity prior of the mcf router (docs/ROUTING.md): uniform, or LND's bimodal shape",
    )

    # --- webhooks
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_base: float = Field(default=2.0, gt=0, description="seconds; doubles per attempt")

    # --- compliance (KYC tiers, monitoring rules, operator dashboard): see docs/COMPLIANCE.md
    compliance_config_path: Path | None = Field(default=None, description="YAML/JSON file: KYC tiers and rules")
    kyc_initial_state: Literal["pending", "approved"] | None = Field(
        default=None, description="state of a newly onboarded client; default approved on regtest, else pending"
    )
    admin_password: SecretStr = SecretStr("demo-admin-password")

    # --- sections, each read from its own prefix and validated with the rest at start-up
    swap: SwapSettings = Field(default_factory=SwapSettings, description="LSP_SWAP_*: submarine swaps")
    lsps1: Lsps1Settings = Field(default_factory=Lsps1Settings, description="LSP_LSPS1_*: LSPS1 channel sales")
    lsps2: Lsps2Settings = Field(default_factory=Lsps2Settings, description="LSP_LSPS2_*: LSPS2 JIT channels")
    lsps5: Lsps5Settings = Field(default_factory=Lsps5Settings, description="LSP_LSPS5_*: LSPS5 webhooks")
    fees: FeeSettings = Field(default_factory=FeeSettings, description="LSP_FEES_*: dynamic channel fees")
    hosting: HostingSettings = Field(default_factory=HostingSettings, description="LSP_HOSTING_*: hosted nodes")

    # --- drills: named crash points (lsp/faults.py), comma-separated; refused on mainnet
    crash_at: str = Field(default="", description="crash points to SIGKILL at, for crash drills")

    @field_validator("crash_at")
    @classmethod
    def _crash_at(cls, value: str) -> str:
        from lsp import faults

        return ",".join(faults.parse(value))

    @field_validator("peer_lsps", "watchtowers")
    @classmethod
    def _peer_lsps(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if entry and not PEER_LSP_RE.match(entry):
                raise ValueError(f"{entry!r} is not NODE_ID@HOST:PORT (a 66-hex-character node id, then its address)")
        return ",".join(e.strip() for e in value.split(",") if e.strip())

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        # The seed's DATABASE_URL is the common postgresql://user@host/db form; SQLAlchemy reads that
        # as "use psycopg2", which is not installed: the LSP's PostgreSQL driver is psycopg 3.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                value = "postgresql+psycopg://" + value.removeprefix(prefix)
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL (e.g. sqlite:///./lsp.db or postgresql://user@host/db)") from None
        if url.drivername not in ("sqlite", "postgresql+psycopg"):
            raise ValueError(
                f"unsupported database {url.drivername!r}: use sqlite:///PATH or postgresql://user:pass@host/db"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.min_channel_size > self.max_channel_size:
            raise ValueError(
                f"min_channel_size ({self.min_channel_size}) is larger than max_channel_size ({self.max_channel_size})"
            )
        self.hosting.on_network(self.network)  # a hosted node runs on the LSP's own chain
        if self.network == "mainnet":
            problems = []
            admin = self.admin_api_key.get_secret_value()
            secret = self.secret_key.get_secret_value()
            if admin == DEMO_ADMIN_KEY or len(admin) < MIN_MAINNET_SECRET_LEN:
                problems.append(
                    f"LSP_ADMIN_API_KEY is the demo key or shorter than {MIN_MAINNET_SECRET_LEN} characters"
                )
            if secret == DEMO_SECRET_KEY or len(secret) < MIN_MAINNET_SECRET_LEN:
                problems.append(
                    f"LSP_SECRET_KEY is the demo secret or shorter than {MIN_MAINNET_SECRET_LEN} characters"
                )
            if self.debug:
                problems.append("LSP_DEBUG is on")
            if self.crash_at:
                problems.append("LSP_CRASH_AT arms crash points")
            if self.admin_password.get_secret_value() in ("demo-admin-password", ""):
                problems.append("LSP_ADMIN_PASSWORD is the demo password")
            if problems:
                raise ValueError("refusing unsafe settings on mainnet: " + "; ".join(problems))
        return self

    @property
    def crash_points(self) -> list[str]:
        return [n for n in self.crash_at.split(",") if n]

    @property
    def peer_lsp_list(self) -> list[tuple[str, str]]:
        """(node id, host:port) of each configured peer LSP."""
        return [(e.split("@", 1)[0].lower(), e.split("@", 1)[1]) for e in self.peer_lsps.split(",") if e]

    @property
    def watchtower_list(self) -> list[tuple[str, str]]:
        """(tower pubkey, host:port) of each configured watchtower."""
        return [(e.split("@", 1)[0].lower(), e.split("@", 1)[1]) for e in self.watchtowers.split(",") if e]

    @property
    def lnd_configured(self) -> bool:
        return self.lnd_tls_cert_path is not None and self.lnd_macaroon_path is not None

    def opening_fee(self, capacity_sat: int) -> int:
        """The seed's channel opening fee: base fee + capacity fee (rounded up)."""
        return self.channel_base_fee + _ceil_fraction(capacity_sat, self.channel_fee_rate)


def _ceil_fraction(amount: int, rate: float) -> int:
    # Work in parts-per-billion integers so 0.001 * 1_000_000 is exactly 1000.
    ppb = round(rate * 1_000_000_000)
    return -(-amount * ppb // 1_000_000_000)


# Not settings of the LSP but read from the same environment: the test suite's database.
FOREIGN_PREFIXES = ("LSP_TEST_",)


# The sections of Settings (its fields that are settings of their own, each with its prefix).
SECTIONS: dict[str, type[BaseSettings]] = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings)
}


def _prefix(section: type[BaseSettings]) -> str:
    return str(section.model_config.get("env_prefix", ""))


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``LSP_*`` variables that configure nothing, each with the setting it was probably meant to
    be: a typo (``LSP_MIN_CHANEL_SIZE``) would otherwise leave the default in force, silently."""
    known = {f"LSP_{n.upper()}" for n in Settings.model_fields if n not in SECTIONS}
    for section in SECTIONS.values():
        known |= {f"{_prefix(section)}{n.upper()}" for n in section.model_fields}
    out = []
    for name in sorted(environ):
        if not name.startswith("LSP_") or name in known or name.startswith(FOREIGN_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        out.append(f"{name}: not a setting" + (f"; did you mean {close[0]}?" if close else ""))
    return out


def error_lines(exc: ValidationError | SettingsError, prefix: str) -> list[str]:
    """pydantic's errors as ``VARIABLE: reason`` lines, each naming the environment variable."""
    if isinstance(exc, SettingsError):  # a JSON-valued variable that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        return [f"{prefix}{field.group(1).upper() if field else ''}: is not valid JSON"]
    lines = []
    for err in exc.errors():
        loc = err["loc"]
        name = f"{prefix}{str(loc[0]).upper()}" if loc else prefix.rstrip("_")
        # Inside a JSON value: LSP_LSPS2_MENU[1].min_fee_msat
        name += "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
        lines.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
    return lines


def load_settings(**overrides: object) -> Settings:
    """Build and validate settings and their sections, turning pydantic's errors into one
    ConfigError that names each variable. An ``LSP_*`` environment variable that is no setting is
    refused too, naming the one meant."""
    unknown = unknown_variables(os.environ)
    if unknown:
        raise ConfigError("invalid LSP configuration:\n  " + "\n  ".join(unknown))
    lines: list[str] = []
    sections: dict[str, object] = {}
    for name, section in SECTIONS.items():
        if name in overrides:
            continue
        try:
            sections[name] = section()
        except (ValidationError, SettingsError) as exc:
            lines += error_lines(exc, _prefix(section))
            sections[name] = section.model_construct()  # its defaults, so the rest is still checked
    try:
        settings = Settings(**sections, **overrides)  # type: ignore[arg-type]
    except (ValidationError, SettingsError) as exc:
        lines = error_lines(exc, "LSP_") + lines
    if lines:
        raise ConfigError("invalid LSP configuration:\n  " + "\n  ".join(lines)) from None
    return settings


def lnd_from_settings(settings: Settings) -> LndClient:
    """The LSP's LND client, from LSP_LND_HOST, LSP_LND_TLS_CERT_PATH and LSP_LND_MACAROON_PATH."""
    from lncore.lnd.client import LndClient
    from lsp.errors import LndUnavailable

    if settings.lnd_tls_cert_path is None or settings.lnd_macaroon_path is None:
        raise LndUnavailable("LSP_LND_TLS_CERT_PATH and LSP_LND_MACAROON_PATH must both be set", grpc_code="CONFIG")
    return LndClient.from_paths(settings.lnd_host, settings.lnd_tls_cert_path, settings.lnd_macaroon_path)
