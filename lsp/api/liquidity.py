"""/api/liquidity: the rate card and expiring liquidity reservations; /api/balance: the client's ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lsp.api.deps import DB, Ctx, CurrentClient, get_lnd
from lsp.api.schemas import ERROR_RESPONSES, MAX_SAT, CamelModel
from lsp.compliance import audit, kyc
from lsp.db.base import session_scope
from lsp.db.models import LiquidityReservation
from lsp.services import ledger, liquidity, notify
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
