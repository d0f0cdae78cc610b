"""/api/liquidity: the rate card and expiring liquidity reservations; /api/balance: the client's ledger."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lsp.api.deps import DB, Ctx, CurrentClient, get_lnd
from lsp.api.lsps import lsps_dispatcher
from lsp.api.schemas import ERROR_RESPONSES, MAX_SAT, CamelModel
from lsp.compliance import audit, kyc
from lsp.db.base import session_scope
from lsp.db.models import LiquidityReservation
from lsp.errors import ValidationFailed
from lsp.lsps import peers
from lsp.services import channels, jit, ledger, liquidity, notify
from lsp.services.liquidity import RatesView

router = APIRouter(tags=["liquidity"], responses=ERROR_RESPONSES)


class LiquidityRequest(CamelModel):
    """The seed's LiquidityRequest."""

    amount: int = Field(gt=0, le=MAX_SAT, description="sats")
    duration: int = Field(gt=0, le=10 * 365 * 86_400_000, description="milliseconds (at most 10 years)")
    max_fee_rate: int = Field(ge=0, le=1_000_000, description="ppm")


class ReservationView(CamelModel):
    reservation_id: str
    allocated: bool
    amount: int
    fee_rate: int = Field(description="ppm")
    fee: int = Field(description="sats, debited from the balance")
    used: int = Field(description="sats drawn by your payments: amount + max fee in flight, amount + fee once paid")
    remaining: int = Field(description="sats still guaranteed to payments naming this reservation")
    status: str
    expires_at: datetime

    @classmethod
    def of(cls, r: LiquidityReservation) -> ReservationView:
        return cls(
            reservation_id=r.id,
            allocated=r.status == "active",
            amount=r.amount_sat,
            fee_rate=r.fee_rate_ppm,
            fee=r.fee_sat,
            used=r.used_sat,
            remaining=max(0, r.amount_sat - r.used_sat) if r.status == "active" else 0,
            status=r.status,
            expires_at=r.expires_at,
        )


class BalanceView(CamelModel):
    balance: int = Field(description="sats the client holds at the LSP")
    by_kind: dict[str, int] = Field(description="the ledger's sum per entry kind (deposits, payments, fees, ...)")


class JitRequest(CamelModel):
    """A JIT channel (LSPS2) for your node, bought over HTTP instead of peer messages."""

    client_pubkey: str = Field(description="your node's id (66 hex chars): the channel opens to it")
    host: str | None = Field(default=None, max_length=300, description="your node's host:port, if the LSP is not connected to it")
    payment_size_msat: int | None = Field(
        default=None,
        gt=0,
        le=MAX_SAT * 1000,
        description="the payment the channel is for (LSPS2's fixed-amount mode, MPP allowed); omit for any amount",
    )
    token: str | None = Field(default=None, max_length=256, description="the LSPS2 token, if the LSP requires one")


class RouteHint(CamelModel):
    """The hop to put in your invoice's route hint (BOLT 11 ``r``): LSP -> you over the JIT SCID."""

    node_id: str = Field(description="the LSP's node id")
    short_channel_id: str = Field(description="the JIT SCID, BLOCKxTXxOUT")
    fee_base_msat: int
    fee_proportional_millionths: int
    cltv_expiry_delta: int


class JitView(CamelModel):
    lsp_node_id: str
    jit_channel_scid: str = Field(description="BLOCKxTXxOUT: the SCID your invoice's route hint names")
    lsp_cltv_expiry_delta: int
    client_trusts_lsp: bool
    opening_fee_params: dict[str, Any] = Field(description="the LSPS2 fee line bought, as issued (with its promise)")
    payment_size_msat: int | None
    opening_fee_msat: int | None = Field(description="deducted from the payment when the channel opens (fixed size only)")
    route_hint: RouteHint


@router.post("/api/liquidity/jit", status_code=201, response_model=JitView)
async def buy_jit(body: JitRequest, request: Request, client: CurrentClient, ctx: Ctx) -> JitView:
    """Buy a just-in-time channel (LSPS2): issue an invoice with the returned route hint; the LSP
    opens the channel to your node when the first payment arrives and keeps the opening fee from it.
    The cheapest fee line that accepts ``paymentSizeMsat`` is bought."""
    if not channels.is_valid_pubkey(body.client_pubkey):
        raise ValidationFailed("clientPubkey must be a compressed secp256k1 public key (66 hex chars)", field="body.clientPubkey")
    await run_in_threadpool(kyc.check, ctx.sessions, kyc.enforce_approved, ctx.settings, client.id)
    lnd = get_lnd(ctx)
    # The LSP opens the channel when the payment arrives: it must reach the node then.
    await channels.ensure_connected(lnd, body.client_pubkey, body.host)
    lsp_node_id = (await lnd.get_info()).identity_pubkey
    bought = await jit.buy(
        lsps_dispatcher(request, ctx), body.client_pubkey, payment_size_msat=body.payment_size_msat, token=body.token
    )
    await run_in_threadpool(
        audit.record_in,
        ctx.sessions,
        actor=f"client:{client.id}",
        action="liquidity.jit_buy",
        target=f"jit:{bought.jit_channel_scid}",
        after={
            "clientNodeId": body.client_pubkey,
            "paymentSizeMsat": body.payment_size_msat,
            "minFeeMsat": bought.params.min_fee_msat,
            "proportional": bought.params.proportional,
        },
    )
    return JitView(
        lsp_node_id=lsp_node_id,
        jit_channel_scid=bought.jit_channel_scid,
        lsp_cltv_expiry_delta=bought.lsp_cltv_expiry_delta,
        client_trusts_lsp=bought.client_trusts_lsp,
        opening_fee_params=bought.opening_fee_params,
        payment_size_msat=bought.payment_size_msat,
        opening_fee_msat=bought.opening_fee_msat,
        route_hint=RouteHint(
            node_id=lsp_node_id,
            short_channel_id=bought.jit_channel_scid,
            fee_base_msat=0,
            fee_proportional_millionths=0,
            cltv_expiry_delta=bought.lsp_cltv_expiry_delta,
        ),
    )


class ProviderView(CamelModel):
    node_id: str
    address: str | None = Field(description="host:port (this LSP: the first address its node advertises, if any)")
    this_lsp: bool = Field(description="true for the LSP you are talking to")
    protocols: list[int] = Field(description="the LSPS protocols it serves (lsps0.list_protocols)")
    lsps1: dict[str, Any] | None = Field(description="its channel sale terms: lsps1.get_info as it answered (bLIP-51)")
    lsps2: dict[str, Any] | None = Field(
        description="its JIT channel fee menu: lsps2.get_info as it answered (bLIP-52), without the promises "
        "(they are bound to the node that asked)"
    )
    error: str | None = Field(description="why its terms are missing (unreachable, no answer in time, ...)")
    latency_ms: float | None = Field(description="how long the peer took to answer everything")


class ProvidersView(CamelModel):
    providers: list[ProviderView] = Field(description="this LSP first, then each configured peer LSP (LSP_PEER_LSPS)")


@router.get("/api/liquidity/providers", response_model=ProvidersView)
async def providers(request: Request, client: CurrentClient, ctx: Ctx) -> ProvidersView:
    """Liquidity providers and their current terms: this LSP, and the other LSPs the operator
    configured, each asked live over LSPS0 peer messages (lsps0.list_protocols, lsps1.get_info,
    lsps2.get_info) within LSP_PEER_LSPS_TIMEOUT seconds."""
    lnd = get_lnd(ctx)
    info = await lnd.get_info()
    address = info.uris[0].split("@", 1)[1] if info.uris else None
    own = await peers.own_offer(lsps_dispatcher(request, ctx), info.identity_pubkey, address)
    others = await peers.ask_peers(lnd, ctx.settings.peer_lsp_list, timeout_s=ctx.settings.peer_lsps_timeout)
    return ProvidersView(providers=[ProviderView(this_lsp=o is own, **asdict(o)) for o in [own, *others]])


@router.get("/api/liquidity/rates", response_model=RatesView)
def rates(client: CurrentClient, ctx: Ctx) -> RatesView:
    return liquidity.rates(ctx.settings)


@router.post("/api/liquidity/request", status_code=201, response_model=ReservationView)
async def request_liquidity(body: LiquidityRequest, client: CurrentClient, ctx: Ctx) -> ReservationView:
    liquidity.validate_request(ctx.settings, body.amount, body.duration, body.max_fee_rate)
    await run_in_threadpool(
        kyc.check, ctx.sessions, kyc.enforce_channel, ctx.settings, client.id, body.amount, "body.amount"
    )
    outbound = await liquidity.spendable_outbound(get_lnd(ctx))

    def reserve() -> LiquidityReservation:
        with session_scope(ctx.sessions) as db:
            res = liquidity.reserve(
                db,
                ctx.settings,
                client.id,
                amount_sat=body.amount,
                duration_ms=body.duration,
                max_fee_rate_ppm=body.max_fee_rate,
                outbound_sat=outbound,
            )
            audit.record(
                db,
                actor=f"client:{client.id}",
                action="liquidity.reserve",
                target=f"reservation:{res.id}",
                after={"amountSat": res.amount_sat, "feeSat": res.fee_sat},
            )
            return res

    res = await run_in_threadpool(reserve)
    notify.liquidity_reserved(ctx, res)  # after the commit
    return ReservationView.of(res)


@router.get("/api/liquidity/reservations/{reservation_id}", response_model=ReservationView)
def get_reservation(reservation_id: str, client: CurrentClient, db: DB) -> ReservationView:
    return ReservationView.of(liquidity.get_for_client(db, client.id, reservation_id))


@router.get("/api/balance", response_model=BalanceView)
def balance(client: CurrentClient, db: DB) -> dict[str, Any]:
    """Sats the client holds at the LSP: received minus sent, fees and reservations."""
    return {"balance": ledger.balance(db, client.id), "byKind": ledger.breakdown(db, client.id)}
