"""/api/channels: open, inspect, close; the LSP's channel balance."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lsp.api.deps import DB, Ctx, CurrentClient, Lnd, get_lnd, require_admin
from lsp.api.schemas import ERROR_RESPONSES, MAX_SAT, MAX_SCID, MAX_TIMEOUT_S, CamelModel
from lsp.compliance import audit, kyc
from lsp.db.base import session_scope
from lsp.db.models import Channel
from lsp.routing import service as routing_service
from lsp.services import channels
from lsp.services import health as health_svc
from lsp.services import rebalance as rebalance_svc
from lsp.services.channels import ChannelsBalanceView, LspChannelBalance
from lsp.services.payments import default_max_fee

router = APIRouter(prefix="/api/channels", tags=["channels"], responses=ERROR_RESPONSES)


class OpenChannelRequest(CamelModel):
    """The seed's ChannelRequest."""

    client_pubkey: str = Field(description="the client's node id (66 hex chars)")
    channel_size: int = Field(gt=0, le=MAX_SAT, description="sats")
    push_amount: int = Field(default=0, ge=0, le=MAX_SAT, description="sats pushed to the client at open")
    fee_rate: int | None = Field(default=None, ge=1, le=100_000, description="on-chain fee rate, sat/vbyte")
    is_private: bool = False
    host: str | None = Field(default=None, description="client node host:port, if the LSP is not yet connected")


class CloseChannelRequest(CamelModel):
    force: bool = False


class ChannelView(CamelModel):
    channel_id: str
    client_pubkey: str
    capacity: int
    push_amount: int
    is_private: bool
    opening_fee: int
    status: str
    funding_txid: str | None
    output_index: int | None
    channel_point: str | None
    chan_id: str | None
    closing_txid: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Channel) -> ChannelView:
        return cls(
            channel_id=c.id,
            client_pubkey=c.remote_pubkey,
            capacity=c.capacity_sat,
            push_amount=c.push_sat,
            is_private=c.private,
            opening_fee=c.opening_fee_sat,
            status=c.status,
            funding_txid=c.funding_txid,
            output_index=c.output_index,
            channel_point=c.channel_point,
            chan_id=str(c.chan_id) if c.chan_id is not None else None,
            closing_txid=c.closing_txid,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


@router.post("/open", status_code=201, response_model=ChannelView)
async def open_channel(body: OpenChannelRequest, client: CurrentClient, ctx: Ctx) -> ChannelView:
    # Validate before touching LND so bad requests get a 422 even when LND is down.
    channels.validate_open(
        ctx.settings, pubkey=body.client_pubkey, capacity_sat=body.channel_size, push_sat=body.push_amount
    )
    await run_in_threadpool(
        kyc.check, ctx.sessions, kyc.enforce_channel, ctx.settings, client.id, body.channel_size, "body.channelSize"
    )
    ch = await channels.open_channel(
        get_lnd(ctx),
        ctx.sessions,
        ctx.settings,
        client.id,
        pubkey=body.client_pubkey,
        capacity_sat=body.channel_size,
        push_sat=body.push_amount,
        private=body.is_private,
        host=body.host,
        sat_per_vbyte=body.fee_rate,
        # Audited with the intent (row + fee), before LND is asked: the trail never misses an open.
        on_intent=lambda s, c: audit.record(
            s,
            actor=f"client:{client.id}",
            action="channel.open",
            target=f"channel:{c.id}",
            after={"capacitySat": c.capacity_sat, "openingFeeSat": c.opening_fee_sat, "pushSat": c.push_sat},
        ),
    )
    return ChannelView.of(ch)


@router.get("", response_model=list[ChannelView])
def list_channels(
    client: CurrentClient,
    db: DB,
    status: Annotated[
        Literal["opening", "pending", "open", "closing", "closed", "failed"] | None,
        Query(description="only this status"),
    ] = None,
) -> list[ChannelView]:
    """Your channels, newest first."""
    return [ChannelView.of(c) for c in channels.list_for_client(db, client.id, status=status)]


@router.get("/balance", response_model=ChannelsBalanceView, response_model_exclude_none=True)
async def balance(client: CurrentClient, ctx: Ctx) -> ChannelsBalanceView:
    """The client's channels, and the LSP node's channel balance when LND is connected."""

    def summary() -> ChannelsBalanceView:
        with session_scope(ctx.sessions) as db:
            return channels.summary_for_client(db, client.id)

    out = await run_in_threadpool(summary)
    if ctx.lnd is not None:
        b = await ctx.lnd.channel_balance()
        out.lsp = LspChannelBalance(
            local_balance=int(b.local_balance.sat),
            remote_balance=int(b.remote_balance.sat),
            pending_open_local_balance=int(b.pending_open_local_balance.sat),
        )
    return out


class RebalanceRequest(CamelModel):
    channel_id: str = Field(description="your channel (LSP channel id) that should get more LSP-side liquidity")
    amount: int = Field(gt=0, le=MAX_SAT, description="sats to move")
    max_fee: int | None = Field(default=None, ge=0, le=MAX_SAT, description="routing fee cap, sats; charged to you")
    source_chan_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SCID,
        description="LND short channel id of the LSP channel to take it from; default: the richest",
    )
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT_S, description="capped by LSP_PAYMENT_TIMEOUT"
    )
    strategy: Literal["lnd", "mcf"] = Field(
        default="lnd",
        description="lnd: LND finds the circle; mcf: the LSP's min-cost-flow router plans it (docs/ROUTING.md)",
    )


class RebalanceView(CamelModel):
    status: str
    strategy: str
    amount: int
    fee: int
    max_fee: int
    payment_hash: str
    source_chan_id: str
    target_chan_id: str
    failure_reason: str | None


@router.post("/rebalance", response_model=RebalanceView)
async def rebalance(body: RebalanceRequest, client: CurrentClient, ctx: Ctx) -> RebalanceView:
    """Circular payment from another LSP channel to yours, with a fee cap; 200 with status succeeded/failed."""
    await run_in_threadpool(kyc.check, ctx.sessions, kyc.enforce_rebalance, ctx.settings, client.id, body.amount)
    lnd = get_lnd(ctx)

    def read() -> Channel:
        with session_scope(ctx.sessions) as s:
            return channels.get_for_client(s, client.id, body.channel_id)

    ch = await run_in_threadpool(read)
    cap = ctx.settings.payment_timeout // 1000
    mcf = await routing_service.executor_for(ctx) if body.strategy == "mcf" else None
    res = await rebalance_svc.rebalance(
        lnd,
        ctx.sessions,
        client.id,
        ch,
        amount_sat=body.amount,
        max_fee_sat=body.max_fee if body.max_fee is not None else default_max_fee(ctx.settings, body.amount),
        source_chan_id=body.source_chan_id,
        timeout_s=min(body.timeout_seconds or cap, cap),
        mcf=mcf,
    )
    await run_in_threadpool(  # off the event loop, as all database work (docs/LSP.md)
        audit.record_in,
        ctx.sessions,
        actor=f"client:{client.id}",
        action="channel.rebalance",
        target=f"channel:{ch.id}",
        after={
            "status": res.status,
            "amountSat": res.amount_sat,
            "feeSat": res.fee_sat,
            "strategy": body.strategy,
            "sourceChanId": str(res.source_chan_id),
            "paymentHash": res.payment_hash,
        },
    )
    return RebalanceView(
        status=res.status,
        strategy=body.strategy,
        amount=res.amount_sat,
        fee=res.fee_sat,
        max_fee=res.max_fee_sat,
        payment_hash=res.payment_hash,
        source_chan_id=str(res.source_chan_id),
        target_chan_id=str(res.target_chan_id),
        failure_reason=res.failure_reason,
    )


@router.get("/health", dependencies=[Depends(require_admin)], response_model=health_svc.NodeHealthView)
async def health(ctx: Ctx, lnd: Lnd) -> health_svc.NodeHealthView:
    """Operator only (X-Admin-Key): it shows every client's channels. Inactive peers, stuck HTLCs,
    local/remote ratio against LSP_REBALANCE_THRESHOLD."""
    return await health_svc.node_health(lnd, ctx.settings.rebalance_threshold)


@router.get("/{channel_id}", response_model=ChannelView)
def get_channel(channel_id: str, client: CurrentClient, db: DB) -> ChannelView:
    return ChannelView.of(channels.get_for_client(db, client.id, channel_id))


@router.post("/{channel_id}/close", response_model=ChannelView)
async def close_channel(channel_id: str, body: CloseChannelRequest, client: CurrentClient, ctx: Ctx, lnd: Lnd) -> ChannelView:
    def read() -> Channel:
        with session_scope(ctx.sessions) as db:
            return channels.closable(db, client.id, channel_id)

    ch = await run_in_threadpool(read)
    closing_txid = await lnd.close_channel(ch.channel_point or "", force=body.force)

    def record() -> ChannelView:
        with session_scope(ctx.sessions) as db:
            closed = channels.mark_closing(db, ch.id, closing_txid)
            audit.record(
                db,
                actor=f"client:{client.id}",
                action="channel.close",
                target=f"channel:{ch.id}",
                before={"status": ch.status},
                after={"status": closed.status, "force": body.force, "closingTxid": closed.closing_txid},
            )
            return ChannelView.of(closed)

    return await run_in_threadpool(record)
