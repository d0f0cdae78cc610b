"""The append-only, hash-chained audit trail.

Each entry's hash is sha256 over the previous entry's hash and the entry's own
canonical JSON (seq, at, actor, action, target, before, after, request_id), so:

* editing any hashed column breaks that entry's hash;
* deleting an entry leaves a gap in ``seq`` and breaks the next entry's ``prev_hash``;
* reordering (swapping seq numbers or contents) breaks the ``prev_hash`` links;
* truncating the tail is caught by the ``audit_head`` row, which every append updates.

Appends lock the head row first (a no-op UPDATE: PostgreSQL's row lock, SQLite's write lock) so
two concurrent writers can never fork the chain. Recording happens in the same
transaction as the state change it describes: no change without its entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from lsp.db.base import session_scope, utcnow
from lsp.db.models_compliance import AuditEntry, AuditHead
from lsp.logs import request_id_var

GENESIS = "0" * 64


def _canon(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    at: str,
    actor: str,
    action: str,
    target: str,
    before: str | None,
    after: str | None,
    request_id: str | None,
) -> str:
    body = json.dumps([seq, at, actor, action, target, before, after, request_id], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


_head = cast(Table, AuditHead.__table__)
_log = cast(Table, AuditEntry.__table__)
# Built once, on the table (Core): they run on every audited change (each payment), and the ORM's
# bulk-update path costs several times the statement itself.
_TAKE_HEAD = update(_head).where(_head.c.id == 1).values(seq=_head.c.seq).returning(_head.c.seq, _head.c.hash)
_SET_HEAD = update(_head).where(_head.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    before: Any = None,
    after: Any = None,
    request_id: str | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (it commits or rolls back with the change)."""
    item = {"actor": actor, "action": action, "target": target, "before": before, "after": after}
    return record_many(session, [{**item, "request_id": request_id}])[0]


def record_many(session: Session, items: Sequence[dict[str, Any]]) -> list[AuditEntry]:
    """Append several entries, in order, taking the head's lock once (``record``'s keywords per item)."""
    # Take the write lock *before* reading the head: a no-op UPDATE locks the row on PostgreSQL and
    # takes SQLite's write lock (a plain SELECT there runs outside any transaction, so two writers
    # could read the same head -- the unique seq then refuses the second, but it must wait instead).
    # RETURNING reads the head in the same statement (SQLite >= 3.35, PostgreSQL).
    row = session.execute(_TAKE_HEAD).first()
    if row is None:  # the migration creates the row; this covers a database built without it
        session.add(AuditHead(id=1, seq=0, hash=GENESIS))
        session.flush()
        seq, prev = 0, GENESIS
    else:
        seq, prev = int(row[0]), str(row[1])
    entries, rows = [], []
    for item in items:
        seq += 1
        request_id = item.get("request_id")
        rid = request_id if request_id is not None else (request_id_var.get() or None)
        fields = {
            "seq": seq,
            "at": utcnow().isoformat(),
            "actor": item["actor"][:128],
            "action": item["action"][:64],
            "target": item["target"][:128],
            "before": _canon(item.get("before")),
            "after": _canon(item.get("after")),
            "request_id": rid[:64] if rid else None,
        }
        h = entry_hash(prev, **fields)
        entries.append(AuditEntry(prev_hash=prev, hash=h, **fields))
        rows.append({**fields, "prev_hash": prev, "hash": h})
        prev = h
    # A Core insert (the entries are returned unattached): the ORM's unit of work for objects
    # that are never read back cost as much again as the rest of the append.
    session.execute(insert(_log), rows)
    session.execute(_SET_HEAD, {"new_seq": seq, "new_hash": prev})
    return entries


def record_system(session: Session, action: str, client_id: str | None, ref: str, after: Any) -> AuditEntry:
    """A change the LSP made on its own (LND told it: a payment finished, an invoice settled, a
    channel opened), in the transaction that makes the change."""
    return record(session, actor="system", action=action, target=f"client:{client_id}/{ref}", after=after)


def record_in(sessions: sessionmaker[Session], **kw: Any) -> None:
    """Append in a transaction of its own (for changes committed by code that owns its sessions)."""
    with session_scope(sessions) as s:
        record(s, **kw)


@dataclass(frozen=True)
class Problem:
    seq: int | None
    kind: str  # edited | missing | reordered | truncated
    detail: str


@dataclass(frozen=True)
class Row:
    """What verify needs of an entry (pure: tests build these without a database)."""

    seq: int
    at: str
    actor: str
    action: str
    target: str
    before: str | None
    after: str | None
    request_id: str | None
    prev_hash: str
    hash: str


def verify_rows(rows: Sequence[Row], head: tuple[int, str] | None) -> list[Problem]:
    """Walk the chain in seq order; every break is listed (an empty list means intact)."""
    problems: list[Problem] = []
    prev_hash = GENESIS
    expected_seq = 1
    for r in sorted(rows, key=lambda r: r.seq):
        if r.seq != expected_seq:
            problems.append(Problem(r.seq, "missing", f"entries {expected_seq}..{r.seq - 1} are missing"))
        elif r.prev_hash != prev_hash:
            problems.append(Problem(r.seq, "reordered", "prev_hash does not link to the entry before it"))
        recomputed = entry_hash(
            r.prev_hash,
            seq=r.seq,
            at=r.at,
            actor=r.actor,
            action=r.action,
            target=r.target,
            before=r.before,
            after=r.after,
            request_id=r.request_id,
        )
        if recomputed != r.hash:
            problems.append(Problem(r.seq, "edited", "content does not match its hash"))
        prev_hash = r.hash
        expected_seq = r.seq + 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq != expected_seq - 1 or (head_seq > 0 and head_hash != prev_hash):
            problems.append(
                Problem(None, "truncated", f"the head says seq {head_seq} but the chain ends at seq {expected_seq - 1}")
            )
    return problems


def _rows(entries: Iterable[AuditEntry]) -> list[Row]:
    return [
        Row(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            action=e.action,
            target=e.target,
            before=e.before,
            after=e.after,
            request_id=e.request_id,
            prev_hash=e.prev_hash,
            hash=e.hash,
        )
        for e in entries
    ]


def verify(session: Session) -> tuple[int, list[Problem]]:
    """(number of entries, problems) for the whole table."""
    entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    head = session.get(AuditHead, 1)
    # A missing head row with entries present is itself tampering: compare against an empty chain.
    problems = verify_rows(_rows(entries), (head.seq, head.hash) if head else (0, GENESIS))
    return len(entries), problems


def recent(session: Session, *, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)))
