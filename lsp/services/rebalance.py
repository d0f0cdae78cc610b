"""Circular rebalancing: move the LSP's liquidity from one of its channels to a client's channel.

The LSP pays an invoice of its own: out through the source channel
(``outgoing_chan_ids``), around the graph, and back in through the client's
channel (``last_hop_pubkey`` = that channel's peer, ``allow_self_payment``).
Afterwards the LSP has less local balance on the source channel and more on the
client's channel, i.e. more room to pay *to* the client. Only the routing fee
leaves the LSP; it is capped by ``max_fee`` and charged to the client who asked
(kind ``rebalance_fee``), so the client's balance must cover the cap.

A client only names its own channel; the source is any other active channel of
the LSP (given by LND's short channel id, or chosen: the one with the most local
balance), which reveals nothing a graph listing does not.

Two strategies, as for payments: ``lnd`` (one SendPaymentV2 with the source as the
outgoing channel and the client's peer as the last hop; LND finds the circle) and
``mcf`` (the LSP's own router, lsp/routing: the circle planned as a min-cost flow from
the source channel back in through the client's channel, possibly in several parts,
sent with SendToRouteV2 and learning from each part).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from lncore.lnd.client import LndClient
from lncore.lnd.types import PaymentOutcome
from lsp.db.base import session_scope
from lsp.db.models import Channel
from lsp.errors import Conflict, InsufficientFunds, LndError, LndUnavailable, ValidationFailed
from lsp.services import ledger

if TYPE_CHECKING:
    from lsp.routing.executor import McfExecutor

log = logging.getLogger("lsp.rebalance")


@dataclass(frozen=True)
class RebalanceResult:
    status: str  # succeeded | failed
    amount_sat: int
    fee_sat: int
    max_fee_sat: int
    payment_hash: str
    source_chan_id: int
    target_chan_id: int
    failure_reason: str | None


def pick_source(chans: list[Any], target_chan_id: int, amount_sat: int, source_chan_id: int | None) -> Any:
    """The LSP channel to leave through: the given one (validated), else the active one with most local balance."""
    candidates = [c for c in chans if int(c.chan_id) != target_chan_id and c.active]
    if source_chan_id is not None:
        for c in candidates:
            if int(c.chan_id) == source_chan_id:
                if int(c.local_balance) < amount_sat:
                    raise ValidationFailed(
                        f"source channel {source_chan_id} has only {c.local_balance} sat local balance",
                        field="body.sourceChanId",
                    )
                return c
        raise ValidationFailed(f"no other active LSP channel {source_chan_id}", field="body.sourceChanId")
    rich = [c for c in candidates if int(c.local_balance) >= amount_sat]
    if not rich:
        raise ValidationFailed(f"no other active LSP channel has {amount_sat} sat to move", field="body.amount")
    return max(rich, key=lambda c: int(c.local_balance))


async def rebalance(
    lnd: LndClient,
    sessions: sessionmaker[Session],
    client_id: str,
    channel: Channel,
    *,
    amount_sat: int,
    max_fee_sat: int,
    source_chan_id: int | None,
    timeout_s: int,
    mcf: McfExecutor | None = None,
) -> RebalanceResult:
    """``mcf`` given: strategy ``mcf`` (the LSP's router plans and sends the circle); else LND's."""
    if channel.status != "open" or channel.chan_id is None:
        raise Conflict(f"channel {channel.id} is {channel.status}; only open channels can be rebalanced")
    chans = await lnd.list_channels()
    target = next((c for c in chans if int(c.chan_id) == channel.chan_id), None)
    if target is None or not target.active:
        raise Conflict(f"channel {channel.id} is not active in LND right now")
    if int(target.remote_balance) < amount_sat:
        raise ValidationFailed(
            f"the channel can take at most {target.remote_balance} sat more on the LSP's side", field="body.amount"
        )
    source = pick_source(chans, int(target.chan_id), amount_sat, source_chan_id)
    with session_scope(sessions) as s:
        ledger.lock_client(s, client_id)
        available = ledger.balance(s, client_id)
    if available < max_fee_sat:
        raise InsufficientFunds(
            f"balance {available} sat cannot cover the max fee {max_fee_sat} sat", field="body.maxFee"
        )
    if mcf is not None:
        # The executor makes its own invoice and never raises for a failed circle: it reports it.
        res = await mcf.rebalance(
            str(source.chan_id), str(target.chan_id), amount_sat, fee_limit_msat=max_fee_sat * 1000, timeout_s=timeout_s
        )
        phash = res.payment_hash
        outcome = res.to_outcome()
    else:
        inv = await lnd.add_invoice(amount_sat, f"rebalance to {channel.id}", expiry_s=max(timeout_s * 2, 600))
        phash = inv.r_hash.hex()
        try:
            outcome = await lnd.send_payment_v2(
                inv.payment_request,
                fee_limit_sat=max_fee_sat,
                timeout_s=timeout_s,
                outgoing_chan_ids=[int(source.chan_id)],
                last_hop_pubkey=channel.remote_pubkey,
                allow_self_payment=True,
            )
        except LndUnavailable:
            raise
        except LndError as exc:  # refused outright: a failed circle like any other
            outcome = PaymentOutcome(phash, "FAILED", 0, 0, amount_sat, None, exc.message)
    status = "succeeded" if outcome.status == "SUCCEEDED" else "failed"
    fee, reason = outcome.fee_sat, outcome.failure_reason
    if status == "succeeded" and fee > 0:
        with session_scope(sessions) as s:
            ledger.record(s, client_id, -fee, "rebalance_fee", f"rebalance:{phash}")
    if status == "failed":
        try:  # nobody can pay our own rebalance invoice later
            await lnd.cancel_invoice(phash)
        except LndError as exc:
            log.warning("could not cancel rebalance invoice %s: %s", phash, exc)
    log.info(
        "rebalance (%s) %s sat %s -> %s: %s (fee %s)",
        "mcf" if mcf is not None else "lnd",
        amount_sat,
        source.chan_id,
        target.chan_id,
        status,
        fee,
    )
    return RebalanceResult(
        status=status,
        amount_sat=amount_sat,
        fee_sat=fee if status == "succeeded" else 0,
        max_fee_sat=max_fee_sat,
        payment_hash=phash,
        source_chan_id=int(source.chan_id),
        target_chan_id=int(target.chan_id),
        failure_reason=reason if status == "failed" else None,
    )
