"""/api/swaps: quotes, swap-in (submarine) and reverse swaps, their status; the swap loop's lifespan hook.

``start_loop`` / ``stop_loop`` are called by the app's one lifespan (lsp/app.py) so the swap
loop starts with the LND client (and stops before it closes).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from lsp.api.deps import DB, Ctx, CurrentClient
from lsp.api.schemas import ERROR_RESPONSES, MAX_SAT, CamelModel
from lsp.compliance import audit, kyc
from lsp.context import AppContext
from lsp.db.models_swaps import Swap, SwapEvent
from lsp.errors import LndUnavailable, NotFound
from lsp.services.watchers import supervise
from lsp.swaps.service import SwapService
from lsp.swaps.state import Kind

router = APIRouter(prefix="/api/swaps", tags=["swaps"], responses=ERROR_RESPONSES)


def get_service(ctx: Ctx) -> SwapService:
    if ctx.swaps is None:
        if ctx.lnd is None:
            raise LndUnavailable("swaps need the LSP's LND node", grpc_code="CONFIG")
        ctx.swaps = SwapService(ctx, ctx.lnd, ctx.settings.swap)
    return ctx.swaps


Service = Annotated[SwapService, Depends(get_service)]


class QuoteView(CamelModel):
    kind: str
    invoice_amount: int
    onchain_amount: int
    service_fee: int
    miner_fee: int
    total_fee: int
    fee_rate_sat_per_vbyte: float
    timeout_blocks: int
    confirmations: int


class SubmarineRequest(CamelModel):
    invoice: str = Field(min_length=10, max_length=4000, description="BOLT 11 invoice the LSP pays")
    refund_public_key: str = Field(description="client's 33-byte compressed pubkey (hex): refunds after the timeout")


class ReverseRequest(CamelModel):
    amount: int = Field(
        gt=0, le=MAX_SAT, description="sats the client pays over Lightning (the hold invoice amount)"
    )
    payment_hash: str = Field(description="SHA256 of the client's 32-byte preimage (hex)")
    claim_public_key: str = Field(description="client's 33-byte compressed pubkey (hex): claims with the preimage")


class SwapEventView(CamelModel):
    from_state: str
    to_state: str
    detail: str
    at: datetime


# A swap-in's payment_fee_sat is a marker (0) while the payment is in flight; it is the fee once paid.
PAID_STATES = frozenset({"invoice_paid", "claim_pending", "claimed"})


class SwapView(CamelModel):
    swap_id: str
    kind: str
    state: str
    invoice: str
    invoice_amount: int
    onchain_amount: int
    service_fee: int
    miner_fee: int
    payment_hash: str
    address: str
    witness_script: str
    lsp_public_key: str
    client_public_key: str
    timeout_height: int
    created_height: int
    confirmations: int
    lockup_txid: str | None
    lockup_vout: int | None
    lockup_value: int | None
    spend_txid: str | None
    spend_fee: int | None = Field(default=None, description="sats: the miner fee of the claim or refund actually paid")
    payment_fee: int | None = Field(default=None, description="sats: the routing fee the LSP paid (swap-in)")
    preimage: str | None
    failure_reason: str | None
    created_at: datetime
    events: list[SwapEventView] = []

    @classmethod
    def of(cls, s: Swap, events: list[SwapEvent] | None = None) -> SwapView:
        return cls(
            swap_id=s.id,
            kind=s.kind,
            state=s.state,
            invoice=s.invoice,
            invoice_amount=s.invoice_amount_sat,
            onchain_amount=s.onchain_amount_sat,
            service_fee=s.service_fee_sat,
            miner_fee=s.miner_fee_sat,
            payment_hash=s.payment_hash,
            address=s.address,
            witness_script=s.witness_script,
            lsp_public_key=s.lsp_pubkey,
            client_public_key=s.client_pubkey,
            timeout_height=s.timeout_height,
            created_height=s.created_height,
            confirmations=s.confirmations,
            lockup_txid=s.lockup_txid,
            lockup_vout=s.lockup_vout,
            lockup_value=s.lockup_value_sat,
            spend_txid=s.spend_txid,
            spend_fee=s.spend_fee_sat,
            payment_fee=s.payment_fee_sat if s.state in PAID_STATES else None,
            # A reverse swap's preimage is the client's own; a swap-in's is public once the LSP claimed.
            preimage=s.preimage,
            failure_reason=s.failure_reason,
            created_at=s.created_at,
            events=[
                SwapEventView(from_state=e.from_state, to_state=e.to_state, detail=e.detail, at=e.at)
                for e in events or []
            ],
        )


class SwapLimits(CamelModel):
    min_amount: int = Field(description="sats")
    max_amount: int = Field(description="sats")


class SwapFees(CamelModel):
    base_fee: int = Field(description="sats per swap")
    fee_ppm: int = Field(description="proportional fee, parts per million")
    miner_fee: str = Field(description="how the miner fee is set (not a figure: it is estimated per quote)")


class SwapTimeouts(CamelModel):
    submarine_blocks: int
    reverse_blocks: int
    claim_margin_blocks: int
    invoice_cltv_margin_blocks: int


class SwapServiceStatus(CamelModel):
    enabled: bool
    lnd: bool = Field(description="the LSP is connected to LND")
    loop_running: bool
    limits: SwapLimits
    fees: SwapFees
    timeouts: SwapTimeouts
    confirmations: int = Field(description="lockup confirmations before paying")
    swaps: dict[str, dict[str, int]] = Field(description="number of swaps by kind, then by state")


@router.get("/status", response_model=SwapServiceStatus)
def status(ctx: Ctx, db: DB) -> dict[str, Any]:
    """Public service status (the seed's `curl /api/swaps/status`): limits, fees, swaps by state."""
    s = ctx.settings.swap
    rows = db.execute(select(Swap.kind, Swap.state, func.count()).group_by(Swap.kind, Swap.state)).all()
    counts: dict[str, dict[str, int]] = {}
    for kind, state, n in rows:
        counts.setdefault(kind, {})[state] = int(n)
    return {
        "enabled": s.enabled,
        "lnd": ctx.lnd is not None,
        "loopRunning": ctx.swaps_task is not None,
        "limits": {"minAmount": s.min_amount, "maxAmount": s.max_amount},
        "fees": {"baseFee": s.base_fee, "feePpm": s.fee_ppm, "minerFee": "LND EstimateFee at quote time"},
        "timeouts": {
            "submarineBlocks": s.submarine_timeout_blocks,
            "reverseBlocks": s.reverse_timeout_blocks,
            "claimMarginBlocks": s.claim_margin_blocks,
            "invoiceCltvMarginBlocks": s.invoice_cltv_margin_blocks,
        },
        "confirmations": s.confirmations,
        "swaps": counts,
    }


@router.get("/quote", response_model=QuoteView)
async def quote(
    _client: CurrentClient,
    svc: Service,
    kind: Annotated[Literal["submarine", "reverse"], Query()],
    amount: Annotated[int, Query(gt=0)],
) -> QuoteView:
    """What a swap of ``amount`` costs now, before the client commits to anything."""
    q = await svc.quote(Kind(kind), amount)
    s = svc.settings
    return QuoteView(
        kind=kind,
        invoice_amount=q.invoice_amount_sat,
        onchain_amount=q.onchain_amount_sat,
        service_fee=q.service_fee_sat,
        miner_fee=q.miner_fee_sat,
        total_fee=q.service_fee_sat + q.miner_fee_sat,
        fee_rate_sat_per_vbyte=q.sat_per_vbyte,
        timeout_blocks=s.submarine_timeout_blocks if kind == "submarine" else s.reverse_timeout_blocks,
        confirmations=s.confirmations,
    )


@router.post("/submarine", status_code=201, response_model=SwapView)
async def create_submarine(body: SubmarineRequest, client: CurrentClient, svc: Service, ctx: Ctx) -> SwapView:
    """Swap-in: pay ``onchainAmount`` to ``address``; the LSP pays ``invoice`` once the lockup confirms."""
    await run_in_threadpool(kyc.check, ctx.sessions, kyc.enforce_approved, ctx.settings, client.id)  # issue 9
    swap = await svc.create_submarine(client.id, body.invoice, body.refund_public_key.lower())
    await svc.add(swap, client.id, volume_field="body.invoice")
    return SwapView.of(swap)


@router.post("/reverse", status_code=201, response_model=SwapView)
async def create_reverse(body: ReverseRequest, client: CurrentClient, svc: Service, ctx: Ctx) -> SwapView:
    """Reverse swap: pay the hold ``invoice``; the LSP locks ``onchainAmount`` at ``address`` for your claim."""
    await run_in_threadpool(kyc.check, ctx.sessions, kyc.enforce_swap, ctx.settings, client.id, body.amount)
    swap = await svc.create_reverse(client.id, body.amount, body.payment_hash.lower(), body.claim_public_key.lower())
    await svc.add(swap, client.id, volume_field=None)
    return SwapView.of(swap)


class LockupRequest(CamelModel):
    transaction: str = Field(min_length=20, max_length=400_000, description="the client's signed lockup (hex)")


@router.post("/{swap_id}/lockup", response_model=SwapView)
async def submit_lockup(
    swap_id: str, body: LockupRequest, client: CurrentClient, svc: Service, ctx: Ctx
) -> SwapView:
    """Swap-in: hand the LSP the lockup transaction. It publishes it; up to ``LSP_SWAP_ZERO_CONF_MAX_AMOUNT``
    (and without RBF) it pays the invoice at once, otherwise it waits for the configured confirmations."""
    swap = await svc.submit_lockup(swap_id, client.id, body.transaction.strip().lower())
    await run_in_threadpool(  # off the event loop, as all database work (docs/LSP.md)
        audit.record_in,
        ctx.sessions,
        actor=f"client:{client.id}",
        action="swap.lockup",
        target=f"swap:{swap.id}",
        after={"lockupTxid": swap.lockup_txid, "lockupValueSat": swap.lockup_value_sat, "state": swap.state},
    )
    svc.follow(swap.id)
    return SwapView.of(swap)


@router.get("/{swap_id}", response_model=SwapView)
def get_swap(swap_id: str, client: CurrentClient, db: DB) -> SwapView:
    swap = db.get(Swap, swap_id)
    if swap is None or swap.client_id != client.id:
        raise NotFound(f"swap {swap_id} not found")
    events = list(db.scalars(select(SwapEvent).where(SwapEvent.swap_id == swap_id).order_by(SwapEvent.id)))
    return SwapView.of(swap, events)


def start_loop(ctx: AppContext) -> asyncio.Task[None] | None:
    """Start the swap loop when LND, background tasks and the swap settings allow it (the app's
    lifespan calls this after the other background components, and ``stop_loop`` first)."""
    s = ctx.settings.swap
    if ctx.lnd is None or not ctx.settings.background_tasks or not (s.enabled and s.watch):
        return None
    task = asyncio.create_task(supervise("swaps", get_service(ctx).run), name="lsp-swaps")
    ctx.swaps_task = task
    return task


async def stop_loop(ctx: AppContext, task: asyncio.Task[None] | None) -> None:
    ctx.swaps_task = None
    ctx.swaps = None
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
