"""``LSP_FEES_*``: the dynamic fee policy's settings (the engine is ``lsp.services.fees``)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class FeeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LSP_FEES_", env_file=".env", extra="ignore")

    enabled: bool = Field(default=False, description="run the policy engine every interval_s")
    dry_run: bool = Field(default=False, description="plan and report only: never change a policy")
    interval_s: float = Field(default=300.0, ge=5, description="seconds between runs")
    min_ppm: int = Field(default=1, ge=0, le=1_000_000, description="outbound fee rate of a full channel")
    max_ppm: int = Field(default=2_000, ge=0, le=1_000_000, description="outbound fee rate of a drained channel")
    base_fee_msat: int = Field(default=1_000, ge=0, le=1_000_000_000, description="outbound base fee, kept fixed")
    max_inbound_discount_ppm: int = Field(
        default=0, ge=0, le=1_000_000, description="inbound discount of a drained channel (0: no inbound fees)"
    )
    max_step_ppm: int = Field(default=200, ge=1, description="most a rate moves in one run")
    min_change_ppm: int = Field(default=5, ge=1, description="smaller moves are not worth a channel update")

    @model_validator(mode="after")
    def _bounds(self) -> FeeSettings:
        if self.min_ppm > self.max_ppm:
            raise ValueError(f"min_ppm ({self.min_ppm}) is larger than max_ppm ({self.max_ppm})")
        return self
