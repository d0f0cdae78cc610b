"""The compliance policy: KYC tiers with their limits and the monitoring rules' parameters.

Built-in defaults below; ``LSP_COMPLIANCE_CONFIG_PATH`` names a YAML or JSON file
whose ``tiers`` and ``rules`` sections replace them (a section left out keeps the
defaults; a rule left out of ``rules`` keeps its defaults). Changing thresholds,
windows, severities or the deny list needs no code change, only a restart
(or ``lsp compliance scan --config FILE`` for a batch run).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lsp.errors import ConfigError

Severity = Literal["low", "medium", "high", "critical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tier(_Strict):
    """Limits in sats. ``required_fields`` must be present before a client can be approved at this tier."""

    required_fields: list[str] = Field(default_factory=list)
    per_payment_sat: int = Field(ge=0)
    daily_volume_sat: int = Field(ge=0)
    monthly_volume_sat: int = Field(ge=0)
    max_channel_sat: int = Field(ge=0)
    max_hosted_nodes: int = Field(default=1, ge=0, description="hosted nodes (lsp/hosting) a client may run at once")


class LargeAmount(_Strict):
    enabled: bool = True
    severity: Severity = "high"
    threshold_sat: int = Field(default=2_000_000, ge=1)


class Velocity(_Strict):
    enabled: bool = True
    severity: Severity = "medium"
    window_s: int = Field(default=3600, ge=1)
    max_count: int = Field(default=30, ge=1)
    max_sum_sat: int = Field(default=10_000_000, ge=1)


class Structuring(_Strict):
    """``min_count`` amounts within ``band`` below ``threshold_sat`` (e.g. 90-99.99 %) inside ``window_s``."""

    enabled: bool = True
    severity: Severity = "high"
    threshold_sat: int = Field(default=1_000_000, ge=1)
    band: float = Field(default=0.1, gt=0, lt=1)
    window_s: int = Field(default=86_400, ge=1)
    min_count: int = Field(default=3, ge=2)


class RapidInOut(_Strict):
    """Money received and sent on within ``window_s``: out >= ``min_ratio`` x in, in >= ``min_amount_sat``."""

    enabled: bool = True
    severity: Severity = "medium"
    window_s: int = Field(default=600, ge=1)
    min_ratio: float = Field(default=0.9, gt=0)
    min_amount_sat: int = Field(default=500_000, ge=1)


class NewClient(_Strict):
    """A client younger than ``age_s`` moving more than ``max_sum_sat`` within ``window_s``."""

    enabled: bool = True
    severity: Severity = "low"
    age_s: int = Field(default=7 * 86_400, ge=1)
    window_s: int = Field(default=86_400, ge=1)
    max_sum_sat: int = Field(default=5_000_000, ge=1)


class DenyList(_Strict):
    enabled: bool = True
    severity: Severity = "critical"
    pubkeys: list[str] = Field(default_factory=list)
    block: bool = Field(default=True, description="refuse the payment (403) as well as raising the alert")


class Rules(_Strict):
    large_amount: LargeAmount = Field(default_factory=LargeAmount)
    velocity: Velocity = Field(default_factory=Velocity)
    structuring: Structuring = Field(default_factory=Structuring)
    rapid_in_out: RapidInOut = Field(default_factory=RapidInOut)
    new_client: NewClient = Field(default_factory=NewClient)
    deny_list: DenyList = Field(default_factory=DenyList)


def default_tiers() -> dict[str, Tier]:
    return {
        "basic": Tier(
            required_fields=["legal_name", "email"],
            per_payment_sat=1_000_000,
            daily_volume_sat=5_000_000,
            monthly_volume_sat=50_000_000,
            max_channel_sat=5_000_000,
        ),
        "standard": Tier(
            required_fields=["legal_name", "email", "country", "registration_number"],
            per_payment_sat=10_000_000,
            daily_volume_sat=100_000_000,
            monthly_volume_sat=1_000_000_000,
            max_channel_sat=100_000_000,
            max_hosted_nodes=3,
        ),
        "enterprise": Tier(
            required_fields=["legal_name", "email", "country", "registration_number", "beneficial_owners"],
            per_payment_sat=100_000_000,
            daily_volume_sat=2_000_000_000,
            monthly_volume_sat=20_000_000_000,
            max_channel_sat=1_000_000_000,
            max_hosted_nodes=10,
        ),
    }


class Policy(_Strict):
    default_tier: str = "standard"
    tiers: dict[str, Tier] = Field(default_factory=default_tiers)
    rules: Rules = Field(default_factory=Rules)

    def tier(self, name: str) -> Tier:
        return self.tiers.get(name) or self.tiers[self.default_tier]


def parse_policy(data: dict[str, object]) -> Policy:
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid compliance policy: " + "; ".join(parts)) from None
    if policy.default_tier not in policy.tiers:
        raise ConfigError(f"invalid compliance policy: default_tier {policy.default_tier!r} is not in tiers")
    return policy


@lru_cache(maxsize=8)
def load_policy(path: Path | None) -> Policy:
    if path is None:
        return Policy()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"LSP_COMPLIANCE_CONFIG_PATH={path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"LSP_COMPLIANCE_CONFIG_PATH={path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"LSP_COMPLIANCE_CONFIG_PATH={path}: the top level must be a mapping")
    return parse_policy(data or {})
