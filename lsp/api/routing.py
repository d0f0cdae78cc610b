"""/api/payments/estimate: what our router would do for a prospective payment, and how likely it works.

The answer is the MCF plan over the live graph and the learned liquidity: its parts (route,
amount, fee, success probability) and the whole payment's success probability (the product
over parts). Nothing is sent and nothing is learned.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from lsp.api.deps import Ctx, CurrentClient, get_lnd
from lsp.api.schemas import ERROR_RESPONSES, CamelModel
from lsp.errors import LndError, LndUnavailable, ValidationFailed
from lsp.routing import service
from lsp.routing.plan import NoRouteError

router = APIRouter(prefix="/api/payments", tags=["payments"], responses=ERROR_RESPONSES)


class EstimateRequest(CamelModel):
    destination: str | None = Field(default=None, pattern="^(02|03)[0-9a-f]{64}$", description="node pubkey (hex)")
    invoice: str | None = Field(default=None, min_length=10, description="BOLT 11 payment request")
    amount: int | None = Field(default=None, gt=0, le=2_100_000_000_000_000, description="sats; default: the invoice's")


class PartView(CamelModel):
    amount: int = Field(description="sats delivered by this part")
    amount_msat: int
    fee_msat: int
    probability: float
    hops: list[str] = Field(description="node pubkeys after us, recipient last")
    channels: list[str] = Field(description="short channel ids, in order")


class EstimateView(CamelModel):
    destination: str
    amount: int
    fee_msat: int
    success_probability: float
    parts: list[PartView]
    planning_ms: float
    reason: str | None = Field(default=None, description="why there is no plan, when parts is empty")


@router.post("/estimate", response_model=EstimateView)
async def estimate(body: EstimateRequest, client: CurrentClient, ctx: Ctx) -> EstimateView:
    """Plan (without paying) a payment to ``destination`` or to the node of ``invoice``."""
    if (body.destination is None) == (body.invoice is None):
        raise ValidationFailed("give exactly one of destination and invoice", field="body.destination")
    lnd = get_lnd(ctx)
    destination, amount_msat = body.destination, (body.amount or 0) * 1000
    if body.invoice is not None:
        try:
            decoded = await lnd.decode_pay_req(body.invoice)
        except LndUnavailable:
            raise
        except LndError as exc:
            raise ValidationFailed(f"invalid invoice: {exc.message}", field="body.invoice") from None
        destination = decoded.destination
        amount_msat = amount_msat or int(decoded.num_msat)
    if amount_msat <= 0:
        raise ValidationFailed("amount is required (the invoice has none)", field="body.amount")
    assert destination is not None
    executor = await service.executor_for(ctx)
    if destination not in executor.live.graph().node_index:
        raise ValidationFailed("destination is not in the LSP's channel graph", field="body.destination")
    try:
        plan = executor.estimate(destination, amount_msat)
    except NoRouteError as err:
        return EstimateView(
            destination=destination,
            amount=amount_msat // 1000,
            fee_msat=0,
            success_probability=0.0,
            parts=[],
            planning_ms=0.0,
            reason=err.reason,
        )
    parts = [
        PartView(
            amount=p.amount_msat // 1000,
            amount_msat=p.amount_msat,
            fee_msat=p.fee_msat,
            probability=round(p.probability, 6),
            hops=[ch.dest for ch in p.route],
            channels=[ch.scid for ch in p.route],
        )
        for p in plan.parts
    ]
    return EstimateView(
        destination=destination,
        amount=amount_msat // 1000,
        fee_msat=plan.fee_msat,
        success_probability=round(plan.probability, 6),
        parts=parts,
        planning_ms=round(plan.planning_ms, 2),
    )
