"""The swap state machines: which states exist, which moves are legal, which states are final.

Pure (no I/O): ``check_transition`` is called by the service before every
persisted move, so an out-of-order event (a late notification after a
restart, a double claim) is refused instead of silently rewriting history.

Swap-in (client pays on chain, LSP pays the client's invoice):

    created -> lockup_mempool -> lockup_confirmed -> invoice_pending -> invoice_paid -> claim_pending -> claimed
    created/lockup_mempool/lockup_confirmed -> lockup_failed   (wrong amount: refused; the client refunds)
    created/lockup_mempool/lockup_confirmed -> expired         (too close to the timeout to pay safely)
    invoice_pending -> invoice_failed                          (payment failed; the client refunds)

Reverse (client pays the LSP's hold invoice, LSP locks on chain):

    created -> invoice_accepted -> lockup_mempool -> lockup_confirmed -> claimed -> invoice_settled
    created -> invoice_expired                                 (never paid)
    invoice_accepted -> lockup_failed                          (could not lock; invoice canceled)
    lockup_mempool/lockup_confirmed -> refund_pending -> refunded   (client never claimed; invoice canceled)
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    SUBMARINE = "submarine"
    REVERSE = "reverse"


class S(StrEnum):
    CREATED = "created"
    LOCKUP_MEMPOOL = "lockup_mempool"
    LOCKUP_CONFIRMED = "lockup_confirmed"
    INVOICE_PENDING = "invoice_pending"
    INVOICE_PAID = "invoice_paid"
    CLAIM_PENDING = "claim_pending"
    CLAIMED = "claimed"
    LOCKUP_FAILED = "lockup_failed"
    EXPIRED = "expired"
    INVOICE_FAILED = "invoice_failed"
    # reverse only
    INVOICE_ACCEPTED = "invoice_accepted"
    INVOICE_SETTLED = "invoice_settled"
    INVOICE_EXPIRED = "invoice_expired"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


SUBMARINE: dict[S, set[S]] = {
    S.CREATED: {S.LOCKUP_MEMPOOL, S.LOCKUP_CONFIRMED, S.LOCKUP_FAILED, S.EXPIRED},
    S.LOCKUP_MEMPOOL: {S.LOCKUP_CONFIRMED, S.INVOICE_PENDING, S.LOCKUP_FAILED, S.EXPIRED},
    S.LOCKUP_CONFIRMED: {S.INVOICE_PENDING, S.LOCKUP_FAILED, S.EXPIRED},
    S.INVOICE_PENDING: {S.INVOICE_PAID, S.INVOICE_FAILED},
    S.INVOICE_PAID: {S.CLAIM_PENDING},
    S.CLAIM_PENDING: {S.CLAIMED},
    # A lockup the LSP missed can still be found by a rescan after it gave up waiting.
    S.EXPIRED: {S.LOCKUP_FAILED},
}

REVERSE: dict[S, set[S]] = {
    S.CREATED: {S.INVOICE_ACCEPTED, S.INVOICE_EXPIRED},
    S.INVOICE_ACCEPTED: {S.LOCKUP_MEMPOOL, S.LOCKUP_FAILED},
    S.LOCKUP_MEMPOOL: {S.LOCKUP_CONFIRMED, S.CLAIMED, S.REFUND_PENDING},
    S.LOCKUP_CONFIRMED: {S.CLAIMED, S.REFUND_PENDING},
    S.CLAIMED: {S.INVOICE_SETTLED},
    # The client may still claim while the refund waits to confirm: whichever spend confirms wins.
    S.REFUND_PENDING: {S.REFUNDED, S.CLAIMED},
}

FINAL = {
    Kind.SUBMARINE: {S.CLAIMED, S.LOCKUP_FAILED, S.INVOICE_FAILED},
    Kind.REVERSE: {S.INVOICE_SETTLED, S.INVOICE_EXPIRED, S.LOCKUP_FAILED, S.REFUNDED},
}
# A submarine swap in EXPIRED is final for the loop but a rescan may still record its lockup.
DORMANT = {Kind.SUBMARINE: {S.EXPIRED}, Kind.REVERSE: set()}


class IllegalTransition(ValueError):
    def __init__(self, kind: Kind, old: S, new: S):
        super().__init__(f"{kind} swap cannot go from {old} to {new}")
        self.kind, self.old, self.new = kind, old, new


def table(kind: Kind) -> dict[S, set[S]]:
    return SUBMARINE if kind == Kind.SUBMARINE else REVERSE


def can_move(kind: Kind, old: S | str, new: S | str) -> bool:
    return S(new) in table(kind).get(S(old), set())


def check_transition(kind: Kind | str, old: S | str, new: S | str) -> None:
    k = Kind(kind)
    if not can_move(k, old, new):
        raise IllegalTransition(k, S(old), S(new))


def is_final(kind: Kind | str, state: S | str) -> bool:
    k = Kind(kind)
    return S(state) in FINAL[k] or S(state) in DORMANT[k]


def states(kind: Kind | str) -> set[S]:
    t = table(Kind(kind))
    return set(t) | {s for targets in t.values() for s in targets}
