"""Monitoring rules, pure: given one transaction and the client's recent history, which rules fire?

No database and no clock here (``monitoring`` feeds it), so every window and threshold is
unit-tested directly. A ``Hit`` carries the evidence an analyst needs: the transactions
(refs), the figures compared and the thresholds they were compared against.

Per-transaction rules (large_amount, deny_list) fire once per transaction. Window rules
(velocity, structuring, rapid_in_out, new_client) describe a pattern: ``monitoring`` folds
later hits of the same pattern into the open alert instead of raising a new one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lsp.compliance.policy import Rules

DIRECTIONS = ("in", "out")
NOUN = {"in": "incoming payments", "out": "outgoing payments", "channel": "channel", "swap": "swap"}


@dataclass(frozen=True)
class Tx:
    ref: str  # "payment:<id>", "invoice:<id>", "channel:<id>", "swap:<id>"
    kind: str  # in (invoice settled) | out (payment) | channel (opened for the client) | swap
    client_id: str
    amount_sat: int
    at: datetime
    counterparty: str | None = None  # destination node pubkey, when known


@dataclass(frozen=True)
class Hit:
    rule: str
    severity: str
    client_id: str
    summary: str
    refs: tuple[str, ...]
    at: datetime  # the newest transaction in the evidence
    window_s: int | None  # None: a per-transaction rule
    evidence: dict[str, Any] = field(default_factory=dict)


def _window(history: Sequence[Tx], current: Tx, window_s: int) -> list[Tx]:
    """``current`` and what came before it within ``window_s``, from a history sorted oldest first:
    found by bisection, not by reading the whole history (a busy client's day is long, and every
    transaction asks four windows of it)."""
    start = current.at - timedelta(seconds=window_s)
    lo = bisect_left(history, start, key=_at)
    hi = bisect_right(history, current.at, lo=lo, key=_at)
    return [*(t for t in history[lo:hi] if t.ref != current.ref), current]


def _at(t: Tx) -> datetime:
    return t.at


def _refs(txs: Sequence[Tx]) -> tuple[str, ...]:
    return tuple(t.ref for t in txs)


def evaluate(rules: Rules, current: Tx, history: Sequence[Tx], client_created_at: datetime | None) -> list[Hit]:
    """Every rule ``current`` triggers, given the same client's other transactions in ``history``
    (oldest first, as ``monitoring.load_txs`` returns them)."""
    hits: list[Hit] = []
    c = current

    r = rules.large_amount
    if r.enabled and c.amount_sat >= r.threshold_sat:
        hits.append(
            Hit(
                "large_amount",
                r.severity,
                c.client_id,
                f"{NOUN[c.kind].removesuffix('s')} of {c.amount_sat:,} sat (threshold {r.threshold_sat:,} sat)",
                (c.ref,),
                c.at,
                None,
                {"amountSat": c.amount_sat, "thresholdSat": r.threshold_sat},
            )
        )

    d = rules.deny_list
    if d.enabled and c.counterparty is not None and c.counterparty in d.pubkeys:
        hits.append(
            Hit(
                "deny_list",
                d.severity,
                c.client_id,
                f"{c.kind} to deny-listed node {c.counterparty[:16]}...",
                (c.ref,),
                c.at,
                None,
                {"counterparty": c.counterparty, "amountSat": c.amount_sat},
            )
        )

    if c.kind in DIRECTIONS:
        v = rules.velocity
        if v.enabled:
            same = [t for t in _window(history, c, v.window_s) if t.kind == c.kind]
            total = sum(t.amount_sat for t in same)
            if len(same) > v.max_count or total > v.max_sum_sat:
                hits.append(
                    Hit(
                        "velocity",
                        v.severity,
                        c.client_id,
                        f"{len(same)} {NOUN[c.kind]} totalling {total:,} sat within {v.window_s} s",
                        _refs(same),
                        c.at,
                        v.window_s,
                        {"count": len(same), "sumSat": total, "maxCount": v.max_count, "maxSumSat": v.max_sum_sat},
                    )
                )

        s = rules.structuring
        low = s.threshold_sat * (1 - s.band)
        if s.enabled and low <= c.amount_sat < s.threshold_sat:
            near = [t for t in _window(history, c, s.window_s) if t.kind == c.kind and low <= t.amount_sat < s.threshold_sat]
            if len(near) >= s.min_count:
                hits.append(
                    Hit(
                        "structuring",
                        s.severity,
                        c.client_id,
                        f"{len(near)} {NOUN[c.kind]} just under {s.threshold_sat:,} sat within {s.window_s} s",
                        _refs(near),
                        c.at,
                        s.window_s,
                        {
                            "count": len(near),
                            "amountsSat": [t.amount_sat for t in near],
                            "thresholdSat": s.threshold_sat,
                            "bandFloorSat": int(low),
                            "minCount": s.min_count,
                        },
                    )
                )

    rio = rules.rapid_in_out
    if rio.enabled and c.kind == "out":
        win = _window(history, c, rio.window_s)
        ins = [t for t in win if t.kind == "in"]
        in_sum = sum(t.amount_sat for t in ins)
        if ins and in_sum >= rio.min_amount_sat:
            first_in = min(t.at for t in ins)
            outs = [t for t in win if t.kind == "out" and t.at >= first_in]
            out_sum = sum(t.amount_sat for t in outs)
            if out_sum >= rio.min_ratio * in_sum:
                hits.append(
                    Hit(
                        "rapid_in_out",
                        rio.severity,
                        c.client_id,
                        f"received {in_sum} sat and sent {out_sum} sat on within {rio.window_s} s",
                        _refs(ins + outs),
                        c.at,
                        rio.window_s,
                        {"inSat": in_sum, "outSat": out_sum, "minRatio": rio.min_ratio},
                    )
                )

    n = rules.new_client
    if n.enabled and client_created_at is not None and (c.at - client_created_at).total_seconds() < n.age_s:
        win = _window(history, c, n.window_s)
        total = sum(t.amount_sat for t in win)
        if total > n.max_sum_sat:
            hits.append(
                Hit(
                    "new_client",
                    n.severity,
                    c.client_id,
                    f"client younger than {n.age_s} s moved {total} sat within {n.window_s} s",
                    _refs(win),
                    c.at,
                    n.window_s,
                    {"sumSat": total, "maxSumSat": n.max_sum_sat, "clientCreatedAt": client_created_at.isoformat()},
                )
            )
    return hits


def max_window_s(rules: Rules) -> int:
    return max(
        rules.velocity.window_s,
        rules.structuring.window_s,
        rules.rapid_in_out.window_s,
        rules.new_client.window_s,
    )
