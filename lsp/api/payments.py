"""/api/payments: send (idempotent) and status by payment hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from lsp.api.compliance import record_denied_attempt
from lsp.api.deps import DB, Ctx, CurrentClient, SignedClient, get_lnd
from lsp.api.schemas import ERROR_RESPONSES, MAX_SAT, MAX_TIMEOUT_S, CamelModel
from lsp.compliance import audit, kyc
from lsp.db.models import Payment
from lsp.routing import service as routing_service
from lsp.services import notify, payments

router = APIRouter(prefix="/api/payments", tags=["payments"], responses=ERROR_RESPONSES)


class SendPaymentRequest(CamelModel):
    invoice: str = Field(min_length=10, description="BOLT 11 payment request")
    max_fee: int | None = Field(default=None, ge=0, le=MAX_SAT, description="sats; default from ROUTING_FEE_RATE")
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=MAX_TIMEOUT_S, description="capped by LSP_PAYMENT_TIMEOUT"
    )
    strategy: Literal["lnd", "mcf"] = Field(
        default="lnd", description="lnd: LND's own pathfinding; mcf: the LSP's min-cost-flow router (docs/ROUTING.md)"
    )
    reservation_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="your liquidity reservation (POST /api/liquidity/request) to draw on: amount + max fee must fit "
        "in what is left of it",
    )


class PaymentView(CamelModel):
    payment_id: str
    payment_hash: str
    amount: int
    max_fee: int
    fee: int
    status: str
    failure_reason: str | None
    preimage: str | None
    created_at: datetime
    completed_at: datetime | None
    reservation_id: str | None = Field(description="the liquidity reservation it drew on, if any")

    @classmethod
    def of(cls, p: Payment) -> PaymentView:
        return cls(
            payment_id=p.id,
            payment_hash=p.payment_hash,
            amount=p.amount_sat,
            max_fee=p.max_fee_sat,
            fee=p.fee_sat,
            status=p.status,
            failure_reason=p.failure_reason,
            preimage=p.preimage,
            created_at=p.created_at,
            completed_at=p.completed_at,
            reservation_id=p.reservation_id,
        )


@router.post("/send", response_model=PaymentView)
async def send(
    body: SendPaymentRequest,
    signed: SignedClient,
    ctx: Ctx,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> PaymentView:
    """Pay an invoice from the client's balance and wait for the final state.

    Retrying with the same ``Idempotency-Key`` returns the original payment and never pays
    twice (without a key, the payment hash is the key). 200 = final; 202 = still in flight."""
    client = signed.client
    lnd = get_lnd(ctx)
    # Built before the payment is recorded: if the router cannot start, nothing is reserved.
    mcf = await routing_service.executor_for(ctx) if body.strategy == "mcf" else None
    try:
        payment, created = await payments.start(
            lnd,
            ctx.sessions,
            ctx.settings,
            client.id,
            payment_request=body.invoice,
            idempotency_key=idempotency_key,
            max_fee_sat=body.max_fee,
            guard=lambda s, amount, dest: kyc.enforce_payment(s, ctx.settings, client.id, amount, dest),
            on_created=lambda s, p: audit.record(
                s,
                actor=f"client:{client.id}",
                action="payment.start",
                target=f"payment:{p.id}",
                after={
                    "paymentHash": p.payment_hash,
                    "amountSat": p.amount_sat,
                    "maxFeeSat": p.max_fee_sat,
                    "reservationId": p.reservation_id,
                },
            ),
            # The request's nonce, spent in the payment's own transaction (nothing left the LSP before).
            first=signed.spend,
            reservation_id=body.reservation_id,
        )
    except kyc.DeniedDestination as exc:
        await run_in_threadpool(record_denied_attempt, ctx, client.id, exc.destination, exc.amount_sat)
        raise
    if created:
        cap = ctx.settings.payment_timeout // 1000
        timeout = min(body.timeout_seconds or cap, cap)
        payment = await payments.execute(
            lnd,
            ctx.sessions,
            ctx.settings,
            payment,
            timeout_s=timeout,
            on_final=lambda p: notify.payment_final(ctx, p),
            mcf=mcf,
        )
    if payment.status == "in_flight":
        response.status_code = 202
    return PaymentView.of(payment)


@router.get("/{payment_hash}", response_model=PaymentView)
def get_payment(payment_hash: str, client: CurrentClient, db: DB) -> PaymentView:
    return PaymentView.of(payments.get_for_client(db, client.id, payment_hash))
