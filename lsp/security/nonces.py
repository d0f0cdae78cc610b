"""The persisted nonce store: a nonce is accepted once per client, and remembered
(in the database, so a restart does not reopen the replay window) until the
timestamp it was signed with is too old to be accepted anyway."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lsp.db.base import utcnow
from lsp.db.models import UsedNonce

PURGE_EVERY = 500

_nonces = cast(Table, UsedNonce.__table__)
# "Insert unless already used" in one statement (no savepoint): every signed request runs it.
_INSERT_NEW: dict[str, Any] = {
    "sqlite": sqlite.insert(_nonces).on_conflict_do_nothing(index_elements=["client_id", "nonce"]).returning(_nonces.c.id),
    "postgresql": postgresql.insert(_nonces)
    .on_conflict_do_nothing(index_elements=["client_id", "nonce"])
    .returning(_nonces.c.id),
}


class NonceStore:
    def __init__(self) -> None:
        self._since_purge = 0

    def use(self, session: Session, client_id: str, nonce: str, expires_at: datetime) -> bool:
        """Record the nonce in the caller's transaction; False if this client already used it."""
        stmt = _INSERT_NEW[session.get_bind().dialect.name]  # the LSP runs on SQLite or PostgreSQL
        params = {"client_id": client_id, "nonce": nonce, "expires_at": expires_at}
        if session.execute(stmt, params).first() is None:  # (rowcount is not reliable across drivers)
            return False
        self._since_purge += 1
        if self._since_purge >= PURGE_EVERY:
            self._since_purge = 0
            self.purge(session)
        return True

    @staticmethod
    def purge(session: Session, now: datetime | None = None) -> int:
        result = session.execute(delete(UsedNonce).where(UsedNonce.expires_at < (now or utcnow())))
        return int(getattr(result, "rowcount", 0) or 0)


def nonce_expiry(timestamp_ms: int, max_skew_s: int) -> datetime:
    from datetime import UTC

    return datetime.fromtimestamp(timestamp_ms / 1000, UTC) + timedelta(seconds=max_skew_s + 1)
