"""Named crash points: where a durable step of the LSP can be cut by SIGKILL, on purpose.

Each point sits where a crash is most dangerous: after a side effect (LND asked, a
transaction broadcast, an HTTP request sent) and before its record is committed, or
after a commit and before the side effect it promises. ``LSP_CRASH_AT=<point>[,<point>]``
arms points; the process kills itself with SIGKILL (no cleanup, no flush, as a power
cut or the OOM killer would) the first time execution reaches an armed point. The
crash-matrix tests (tests/lab/lsp/test_crash_matrix.py) arm one point per test, wait
for the process to die there, restart it unarmed and check that nothing was lost,
paid twice or charged without its service (``lsp reconcile``).

Unarmed, a point costs one set lookup. Arming is refused on mainnet (config.py) and
an unknown name is a configuration error naming it, so a typo cannot silently test
nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

log = logging.getLogger("lsp.faults")

# Swap states a crash is injected in front of (the commit of the transition into them).
_SWAP_STATES = (
    "lockup_mempool", "lockup_confirmed", "invoice_pending", "invoice_paid", "claim_pending", "claimed",
    "invoice_accepted", "invoice_settled", "refund_pending", "refunded",
)

POINTS: dict[str, str] = {
    # (a) payments (lsp/services/payments.py)
    "payment.before_lnd": "payment row and fee reserve committed; LND not asked yet",
    "payment.in_flight": "LND reported the HTLC in flight; outcome unknown",
    "payment.settled_before_ledger": "LND says SUCCEEDED; the ledger and status not updated yet",
    # (b) channel opens (lsp/services/channels.py)
    "channel.before_broadcast": "channel row and opening fee committed; LND not asked to open yet",
    "channel.after_broadcast": "LND published the funding transaction; outpoint not recorded yet",
    # (c) JIT buys (lsp/lsps/interceptor.py)
    "jit.htlc_held": "the buy's HTLC parts are recorded and held; no channel asked for yet",
    "jit.funding_published": "LND published the JIT channel's funding; channel not usable, nothing recorded",
    "jit.channel_opening": "LND asked to open the JIT channel (buy OPENING); alias and result not recorded",
    "jit.htlc_resumed": "parts resumed to the client minus the fee; buy recorded OPENED",
    # (d) LSPS1 orders (lsp/lsps/lsps1.py)
    "lsps1.paid": "the order's payment is held (HOLD); no channel asked for yet",
    "lsps1.channel_opening": "LND published the order's channel; outpoint not recorded yet",
    "lsps1.before_settle": "channel recorded; the held payment not settled yet",
    "lsps1.refund": "the channel open failed; the held payment not refunded yet",
    # (e) swaps (lsp/swaps/service.py): the transition into each state, before its commit
    **{f"swap.enter.{s}": f"swap about to commit its move into {s}" for s in _SWAP_STATES},
    # (f) webhooks (lsp/services/webhooks.py)
    "webhook.before_send": "a delivery is due; nothing sent yet",
    "webhook.sent_before_record": "the receiver answered 2xx; the delivery not marked delivered yet",
}

_armed: frozenset[str] = frozenset()


def parse(value: str) -> list[str]:
    """``LSP_CRASH_AT``'s names; ValueError naming any unknown one."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in POINTS]
    if unknown:
        raise ValueError(f"unknown crash point(s) {unknown}; known: {sorted(POINTS)}")
    return names


def arm(names: list[str]) -> None:
    global _armed
    _armed = frozenset(names)
    if names:
        log.warning("crash points armed (the process will SIGKILL itself there): %s", ", ".join(sorted(names)))


def armed(name: str) -> bool:
    return name in _armed


def crash_point(name: str) -> None:
    """SIGKILL this process here if ``name`` is armed."""
    if name in _armed:
        assert name in POINTS, name
        log.critical("crash point %s reached: SIGKILL", name)
        for h in logging.getLogger().handlers:  # the one line a post-mortem needs
            h.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
