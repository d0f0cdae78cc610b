"""/api/admin/fees: the dynamic fee policy (docs/LSP.md, "Dynamic fees"), operator only."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field

from lsp.api.deps import Ctx, get_lnd, require_admin
from lsp.api.schemas import ERROR_RESPONSES, CamelModel
from lsp.services.fees import ChannelFeePlan, FeeEngine, FeeRun
from lsp.services.fees_config import FeeSettings

router = APIRouter(
    prefix="/api/admin/fees", tags=["admin"], responses=ERROR_RESPONSES, dependencies=[Depends(require_admin)]
)


class FeePolicyView(CamelModel):
    enabled: bool = Field(description="the engine runs every intervalS (LSP_FEES_ENABLED)")
    dry_run: bool
    interval_s: float
    min_ppm: int
    max_ppm: int
    base_fee_msat: int
    max_inbound_discount_ppm: int
    max_step_ppm: int
    min_change_ppm: int
    channels: list[ChannelFeePlan] = Field(description="each active channel: its rates now, its targets, the next step")

    @classmethod
    def of(cls, s: FeeSettings, channels: list[ChannelFeePlan]) -> FeePolicyView:
        return cls(channels=channels, **s.model_dump())


class RunRequest(CamelModel):
    dry_run: bool | None = Field(default=None, description="default: LSP_FEES_DRY_RUN")


def _engine(ctx: Ctx) -> FeeEngine:
    return FeeEngine(get_lnd(ctx), ctx.sessions, ctx.settings.fees)


@router.get("", response_model=FeePolicyView)
async def fee_policy(ctx: Ctx) -> FeePolicyView:
    """The policy's bounds and what it would do now, channel by channel (nothing changes)."""
    return FeePolicyView.of(ctx.settings.fees, await _engine(ctx).plan())


@router.post("/run", response_model=FeeRun)
async def run_fees(ctx: Ctx, body: RunRequest | None = None) -> FeeRun:
    """Run the policy once now (also when the periodic engine is off); every update is audited."""
    return await _engine(ctx).run(dry_run=body.dry_run if body else None)
