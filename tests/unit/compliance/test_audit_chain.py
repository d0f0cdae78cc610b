"""The audit chain detects an edited, deleted, reordered or truncated entry (pure rows); appends
through the database, one at a time or batched, verify."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lsp.compliance import audit
from lsp.compliance.audit import GENESIS, Row, entry_hash, verify_rows
from lsp.db import migrate
from lsp.db.base import make_engine, make_sessionmaker, session_scope

pytestmark = pytest.mark.unit


def chain(n: int) -> list[Row]:
    rows, prev = [], GENESIS
    for i in range(1, n + 1):
        fields = dict(
            seq=i,
            at=f"2026-11-21T10:00:0{i}+00:00",
            actor="admin:api",
            action="kyc.change",
            target=f"client:c{i}",
            before='{"state":"pending"}',
            after='{"state":"approved"}',
            request_id=f"r{i}",
        )
        h = entry_hash(prev, **fields)
        rows.append(Row(prev_hash=prev, hash=h, **fields))
        prev = h
    return rows


def head(rows: list[Row]) -> tuple[int, str]:
    return rows[-1].seq, rows[-1].hash


def kinds(problems) -> list[tuple[int | None, str]]:
    return [(p.seq, p.kind) for p in problems]


def test_intact_chain_verifies() -> None:
    rows = chain(5)
    assert verify_rows(rows, head(rows)) == []
    assert verify_rows([], (0, GENESIS)) == []


def test_edited_entry_is_named() -> None:
    rows = chain(5)
    h = head(rows)
    rows[2] = dataclasses.replace(rows[2], after='{"state":"rejected"}')
    assert kinds(verify_rows(rows, h)) == [(3, "edited")]


def test_deleted_entry_is_detected() -> None:
    rows = chain(5)
    h = head(rows)
    del rows[1]
    assert kinds(verify_rows(rows, h)) == [(3, "missing")]


def test_deleted_tail_is_detected_by_the_head() -> None:
    rows = chain(5)
    h = head(rows)
    assert kinds(verify_rows(rows[:-1], h)) == [(None, "truncated")]


def test_reordered_entries_are_detected() -> None:
    rows = chain(5)
    h = head(rows)
    # Swap the contents of seq 2 and 3 (as an UPDATE of seq numbers would): the links no longer hold.
    a, b = rows[1], rows[2]
    rows[1] = dataclasses.replace(b, seq=2)
    rows[2] = dataclasses.replace(a, seq=3)
    found = kinds(verify_rows(rows, h))
    assert (2, "reordered") in found and all(seq in (2, 3, 4) for seq, _ in found)


def test_recomputed_hash_after_edit_still_breaks_the_next_link() -> None:
    """An attacker who edits an entry and fixes its own hash breaks the next entry's prev_hash."""
    rows = chain(4)
    h = head(rows)
    r = rows[1]
    forged = dataclasses.replace(r, actor="someone-else")
    forged = dataclasses.replace(
        forged,
        hash=entry_hash(
            forged.prev_hash,
            seq=forged.seq,
            at=forged.at,
            actor=forged.actor,
            action=forged.action,
            target=forged.target,
            before=forged.before,
            after=forged.after,
            request_id=forged.request_id,
        ),
    )
    rows[1] = forged
    assert kinds(verify_rows(rows, h)) == [(3, "reordered")]


def test_entries_appended_in_one_batch_chain_like_single_appends(tmp_path: Path) -> None:
    """The monitoring worker appends a batch under one head lock; the chain must verify as if
    each entry had been appended alone, and the next single append must link onto the batch."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    migrate.upgrade(url)
    sessions = make_sessionmaker(make_engine(url))
    with session_scope(sessions) as s:
        audit.record(s, actor="a", action="one", target="t:1")
        batch = audit.record_many(
            s, [{"actor": "system", "action": f"batch{i}", "target": f"t:{i}", "after": {"i": i}} for i in range(3)]
        )
        last = audit.record(s, actor="a", action="after", target="t:9")
    assert [e.seq for e in batch] == [2, 3, 4]
    assert [e.prev_hash for e in batch[1:]] == [e.hash for e in batch[:-1]]
    assert last.prev_hash == batch[-1].hash
    with session_scope(sessions) as s:
        assert audit.verify(s) == (5, [])
