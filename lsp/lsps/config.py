"""The LSPS services' settings: ``LSP_LSPS1_*`` (channel sales) and ``LSP_LSPS2_*`` (JIT channels).

Sections of the one ``Settings`` object (``settings.lsps1``, ``settings.lsps2``), read from
the same environment and validated at start-up with it; ``lsp serve`` (the HTTPS mirror) and
``lsp lsps`` (the peer-message daemon) read the same values, so they sell the same thing.

The LSPS2 fee menu is JSON, one object per line of the price list, cheapest first (bLIP-52
requires each entry to cost at least as much as the one before, on both fee components):

    LSP_LSPS2_MENU='[{"min_fee_msat": 2000000, "proportional": 5000, "valid_for_s": 3600},
                     {"min_fee_msat": 3000000, "proportional": 8000, "valid_for_s": 86400}]'
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from lsp.lsps.interceptor import ChannelSizing
    from lsp.lsps.lsps2 import Lsps2Config, MenuEntry

U32 = 2**32 - 1
U64 = 2**64 - 1


class MenuLine(BaseModel):
    """One entry of the LSPS2 fee menu, before the LSP dates and signs it (bLIP-52 field names)."""

    model_config = ConfigDict(extra="forbid")

    min_fee_msat: int = Field(ge=0, le=U64)
    proportional: int = Field(ge=0, le=U32, description="parts per million of the payment")
    valid_for_s: int = Field(ge=1, description="how long an offer of this line stays valid (valid_until)")
    min_lifetime: int = Field(default=1008, ge=0, le=U32, description="blocks the LSP keeps the channel open")
    max_client_to_self_delay: int = Field(default=2016, ge=0, le=U32)
    min_payment_size_msat: int = Field(default=1_000_000, ge=1, le=U64)
    max_payment_size_msat: int = Field(default=4_000_000_000, ge=1, le=U64)

    @model_validator(mode="after")
    def _sizes(self) -> MenuLine:
        if self.min_payment_size_msat > self.max_payment_size_msat:
            raise ValueError("min_payment_size_msat is larger than max_payment_size_msat")
        return self

    def entry(self) -> MenuEntry:
        from lsp.lsps.lsps2 import MenuEntry

        return MenuEntry(
            min_fee_msat=self.min_fee_msat,
            proportional=self.proportional,
            valid_for=timedelta(seconds=self.valid_for_s),
            min_lifetime=self.min_lifetime,
            max_client_to_self_delay=self.max_client_to_self_delay,
            min_payment_size_msat=self.min_payment_size_msat,
            max_payment_size_msat=self.max_payment_size_msat,
        )


DEFAULT_MENU = [
    MenuLine(min_fee_msat=2_000_000, proportional=5_000, valid_for_s=3600),
    MenuLine(min_fee_msat=3_000_000, proportional=8_000, valid_for_s=86_400),
]


class Lsps2Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LSP_LSPS2_", env_file=".env", extra="ignore")

    menu: list[MenuLine] = Field(default_factory=lambda: list(DEFAULT_MENU), min_length=1)
    mpp_timeout_s: float = Field(
        default=90.0, gt=0, description="seconds the parts of a buy may take to add up (bLIP-52 suggests 90)"
    )
    cltv_expiry_delta: int = Field(
        default=144, ge=81, le=U32, description="lsp_cltv_expiry_delta; above the new channel's delta (LND: 80)"
    )
    max_liquidity_msat: int = Field(default=4_000_000_000, ge=1, description="what one JIT channel may carry")
    min_capacity_sat: int = Field(default=1_000_000, ge=20_000, description="smallest JIT channel opened")
    headroom_factor: int = Field(default=2, ge=1, description="capacity = payment x this + 20,000 sat, at least")

    @field_validator("menu")
    @classmethod
    def _ordered(cls, menu: list[MenuLine]) -> list[MenuLine]:
        from lsp.lsps.lsps2 import check_menu

        check_menu(menu)
        return menu

    def config(self, secret: bytes) -> Lsps2Config:
        from lsp.lsps.lsps2 import Lsps2Config

        return Lsps2Config(
            menu=[line.entry() for line in self.menu],
            secret=secret,
            lsp_cltv_expiry_delta=self.cltv_expiry_delta,
            max_liquidity_msat=self.max_liquidity_msat,
        )

    def sizing(self) -> ChannelSizing:
        from lsp.lsps.interceptor import ChannelSizing

        return ChannelSizing(min_capacity_sat=self.min_capacity_sat, headroom_factor=self.headroom_factor)


class Lsps1Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LSP_LSPS1_", env_file=".env", extra="ignore")

    min_channel_balance_sat: int = Field(default=100_000, ge=20_000)
    max_channel_balance_sat: int = Field(default=10_000_000, ge=20_000)
    max_channel_expiry_blocks: int = Field(default=20_160, ge=1)
    base_fee_sat: int = Field(default=2_000, ge=0)
    fee_ppm: int = Field(default=5_000, ge=0, le=1_000_000, description="of the LSP's balance in the channel")
    order_expiry_s: int = Field(default=3600, ge=1, description="how long an unpaid order may be paid")
    onchain: bool = Field(default=True, description="offer on-chain payment to clients that give a refund address")
    min_onchain_payment_confirmations: int = Field(default=1, ge=1, le=100)
    min_funding_confirms_within_blocks: int = Field(default=6, ge=1, description="bLIP-51 get_info option")
    min_required_channel_confirmations: int = Field(default=0, ge=0, description="bLIP-51 get_info option")
    onchain_poll_s: float = Field(default=1.0, gt=0, description="how often orders waiting on chain look")
    # bLIP-51's min_fee_for_0conf (sat per 1000 weight units, a number, never null): the LSP's
    # estimate for confirmation within this many blocks, floored at the relay minimum. This LSP
    # waits for min_onchain_payment_confirmations (>= 1) all the same; see docs/LSPS.md.
    zero_conf_fee_target_blocks: int = Field(default=2, ge=1)

    @property
    def order_expiry(self) -> timedelta:
        return timedelta(seconds=self.order_expiry_s)

    @model_validator(mode="after")
    def _range(self) -> Lsps1Settings:
        if self.min_channel_balance_sat > self.max_channel_balance_sat:
            raise ValueError("min_channel_balance_sat is larger than max_channel_balance_sat")
        return self


class Lsps5Settings(BaseSettings):
    """LSPS5 (bLIP-55): webhooks the LSP calls to wake a client's app."""

    model_config = SettingsConfigDict(env_prefix="LSP_LSPS5_", env_file=".env", extra="ignore")

    max_webhooks: int = Field(default=4, ge=1, le=100, description="per client node (bLIP-55's max_webhooks)")
    cooldown_s: float = Field(
        default=600.0, ge=0, description="a method is not sent to a node again within this, unless it came online since"
    )
    hold_s: float = Field(
        default=30.0, ge=0, le=600, description="how long an HTLC for an offline client with webhooks is held for it to wake"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=60, description="per webhook POST")
    expiry_soon_blocks: int = Field(default=24, ge=1, description="bLIP-55: HTLCs within this many blocks of timing out")
    ca_bundle: Path | None = Field(
        default=None, description="PEM file of CAs to trust for webhook HTTPS besides the system's (a lab's own CA)"
    )
