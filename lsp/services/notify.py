"""Turn state changes into events (WebSocket + webhooks) and metrics, in one place."""

from __future__ import annotations

from sqlalchemy import select

from lsp.context import AppContext
from lsp.db.base import session_scope
from lsp.db.models import Channel, ForwardingEvent, Invoice, LiquidityReservation, Payment
from lsp.services.events import Event, channel_data, invoice_data, payment_data


def payment_final(ctx: AppContext, p: Payment) -> None:
    if p.completed_at is not None:
        ctx.metrics.payment_latency.labels(p.status).observe((p.completed_at - p.created_at).total_seconds())
    kind = "payment_sent" if p.status == "succeeded" else "payment_failed"
    ctx.bus.publish(Event(kind, p.client_id, payment_data(p)))


def invoice_settled(ctx: AppContext, inv: Invoice) -> None:
    ctx.bus.publish(Event("payment_received", inv.client_id, invoice_data(inv)))


def channel_changed(ctx: AppContext, event_type: str, ch: Channel) -> None:
    ctx.bus.publish(Event(event_type, ch.client_id, channel_data(ch)))


def liquidity_reserved(ctx: AppContext, r: LiquidityReservation) -> None:
    ctx.bus.publish(
        Event(
            "liquidity_request",
            r.client_id,
            {"reservationId": r.id, "amount": r.amount_sat, "fee": r.fee_sat, "expiresAt": r.expires_at.isoformat()},
        )
    )


def routing_fee(ctx: AppContext, fwd: ForwardingEvent) -> None:
    """A forward the LSP earned a fee on goes to the clients whose channels carried it (in or out),
    each seeing only its own side's channel id; the operator's listeners see every forward. Other
    clients never see it: amounts and channel ids of someone else's traffic are not theirs to see."""
    with session_scope(ctx.sessions) as s:
        owners = dict(
            s.execute(
                select(Channel.chan_id, Channel.client_id).where(Channel.chan_id.in_([fwd.chan_id_in, fwd.chan_id_out]))
            ).all()
        )
    data: dict[str, object] = {"feeMsat": fwd.fee_msat, "amountInMsat": fwd.amt_in_msat}
    if not owners:  # no client's channel: for the operator only
        both = {"chanIdIn": str(fwd.chan_id_in), "chanIdOut": str(fwd.chan_id_out)}
        ctx.bus.publish(Event("routing_fee_earned", None, {**data, **both}))
        return
    for client_id in sorted(set(owners.values())):
        mine = {
            key: str(chan)
            for key, chan in (("chanIdIn", fwd.chan_id_in), ("chanIdOut", fwd.chan_id_out))
            if owners.get(chan) == client_id
        }
        ctx.bus.publish(Event("routing_fee_earned", client_id, {**data, **mine}))
