"""The per-client ledger: every sat in (+) or out (-), append-only, and the running balance.

Kinds: invoice_settled (+), payment_reserve (- amount + max fee, when a payment
starts), payment_refund (+ what was reserved but not spent), channel_opening_fee (-, when the
open is requested), channel_opening_refund (+, the open failed), liquidity_fee (-). Reserving
the maximum up front means concurrent payments can never spend more than the balance.

The balance is the sum of the client's entries. It is also kept as ``clients.balance_sat``,
updated by ``record`` in the same transaction as each entry, so reading it costs one row, not
the client's whole history (every payment reads it). ``lsp reconcile`` checks that the two agree
(``mismatched_balances``).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from lsp.db.base import utcnow
from lsp.db.models import Client, LedgerEntry

KINDS = (
    "invoice_settled",
    "payment_reserve",
    "payment_refund",
    "channel_opening_fee",
    "channel_opening_refund",  # + the fee back when LND refused the open or never made it
    "liquidity_fee",
    "adjustment",
    "rebalance_fee",
    "hosting_fee",  # - a hosted node: its first period and initial channels at creation, then each period
    "hosting_refund",  # + what creating a node charged, when it failed before running
    "hosting_tx_fee",  # - per payment a hosted node sent or received
)

_clients = cast(Table, Client.__table__)
_entries = cast(Table, LedgerEntry.__table__)
# Core statements built once: they run on every payment, and the ORM's unit of work cost several
# times what the statements themselves do there (`lab bench lsp`, docs/BENCHMARKS.md).
_INSERT_ENTRY = insert(_entries)
_ADD_TO_BALANCE = (
    update(_clients)
    .where(_clients.c.id == bindparam("client_id"))
    .values(balance_sat=_clients.c.balance_sat + bindparam("amount_sat"))
)
_LOCK_CLIENT = (
    update(_clients)
    .where(_clients.c.id == bindparam("client_id"))
    .values(balance_sat=_clients.c.balance_sat)
    .returning(_clients.c.balance_sat)
)
_BALANCE = select(_clients.c.balance_sat).where(_clients.c.id == bindparam("client_id"))


def record(session: Session, client_id: str, amount_sat: int, kind: str, reference: str) -> None:
    """Append one entry and move the running balance by it, in the caller's transaction."""
    assert kind in KINDS, kind
    params = {"client_id": client_id, "amount_sat": amount_sat}
    session.execute(_INSERT_ENTRY, {**params, "kind": kind, "reference": reference, "created_at": utcnow()})
    session.execute(_ADD_TO_BALANCE, params)


def lock_client(session: Session, client_id: str) -> int:
    """Serialize balance-changing work per client and return the balance: a no-op UPDATE takes
    the row lock on PostgreSQL and SQLite's write lock, so the balance cannot go stale before the
    transaction ends. 0 for an unknown client."""
    found = session.execute(_LOCK_CLIENT, {"client_id": client_id}).scalar()
    return int(found or 0)


def balance(session: Session, client_id: str) -> int:
    return int(session.execute(_BALANCE, {"client_id": client_id}).scalar() or 0)


def breakdown(session: Session, client_id: str) -> dict[str, int]:
    rows = session.execute(
        select(LedgerEntry.kind, func.sum(LedgerEntry.amount_sat))
        .where(LedgerEntry.client_id == client_id)
        .group_by(LedgerEntry.kind)
    ).all()
    return {str(kind): int(total or 0) for kind, total in rows}


def mismatched_balances(session: Session) -> list[tuple[str, int, int]]:
    """(client id, running balance, sum of its entries) for every client where they differ."""
    sums = (
        select(LedgerEntry.client_id, func.sum(LedgerEntry.amount_sat).label("total"))
        .group_by(LedgerEntry.client_id)
        .subquery()
    )
    rows = session.execute(
        select(Client.id, Client.balance_sat, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.client_id == Client.id)
        .where(Client.balance_sat != func.coalesce(sums.c.total, 0))
    ).all()
    return [(str(cid), int(bal), int(total)) for cid, bal, total in rows]
