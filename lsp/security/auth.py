"""Verify a signed client request (see ``lsp.security.signing`` for the scheme).

Checks, in order, each failing with 401 and a code naming the reason:
missing header, unknown/inactive key, malformed or stale timestamp (more than
``auth_max_clock_skew`` seconds off), wrong signature, nonce already used.
The nonce is checked last so nobody can burn a client's nonces without its secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from lsp.db.models import Client
from lsp.errors import AuthError
from lsp.security import signing
from lsp.security.crypto import SecretBox
from lsp.security.nonces import NonceStore, nonce_expiry

_clients = cast(Table, Client.__table__)
_BY_API_KEY = select(*_clients.c).where(_clients.c.api_key == bindparam("api_key"))


@dataclass(frozen=True)
class SignedRequest:
    api_key: str
    timestamp: str
    nonce: str
    signature: str
    method: str
    path: str  # raw path + "?query" if any
    body: bytes

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, method: str, path: str, body: bytes) -> SignedRequest:
        values = {}
        for name in (signing.HEADER_KEY, signing.HEADER_TIMESTAMP, signing.HEADER_NONCE, signing.HEADER_SIGNATURE):
            value = headers.get(name)
            if not value:
                raise AuthError(f"missing {name} header", code="missing_auth_header", field=name)
            values[name] = value
        return cls(
            api_key=values[signing.HEADER_KEY],
            timestamp=values[signing.HEADER_TIMESTAMP],
            nonce=values[signing.HEADER_NONCE],
            signature=values[signing.HEADER_SIGNATURE],
            method=method,
            path=path,
            body=body,
        )


class Authenticator:
    def __init__(self, box: SecretBox, *, max_skew_s: int, nonces: NonceStore | None = None):
        self.box = box
        self.max_skew_s = max_skew_s
        self.nonces = nonces or NonceStore()

    def authenticate(self, session: Session, req: SignedRequest, *, now_ms: int | None = None) -> Client:
        """``verify``, then spend the nonce in ``session``'s transaction."""
        client = self.verify(session, req, now_ms=now_ms)
        self.use_nonce(session, client.id, req)
        return client

    def verify(self, session: Session, req: SignedRequest, *, now_ms: int | None = None) -> Client:
        """Every check but the nonce's (it writes nothing): the key, the timestamp, the signature."""
        row = session.execute(_BY_API_KEY, {"api_key": req.api_key}).first()
        # Unattached (read by a Core statement): a request reads its client, it never changes it.
        client = None if row is None else Client(**row._mapping)
        if client is None or not client.active:
            raise AuthError("unknown API key", code="unknown_api_key", field=signing.HEADER_KEY)
        try:
            ts = int(req.timestamp)
        except ValueError:
            raise AuthError(
                "X-Timestamp must be Unix time in milliseconds",
                code="invalid_timestamp",
                field=signing.HEADER_TIMESTAMP,
            ) from None
        now = signing.now_ms() if now_ms is None else now_ms
        if abs(now - ts) > self.max_skew_s * 1000:
            raise AuthError(
                f"timestamp is {abs(now - ts) // 1000} s off the server clock (limit {self.max_skew_s} s)",
                code="stale_timestamp",
                field=signing.HEADER_TIMESTAMP,
            )
        if not req.nonce or len(req.nonce) > signing.MAX_NONCE_LEN:
            raise AuthError(
                f"X-Nonce must be 1..{signing.MAX_NONCE_LEN} characters",
                code="invalid_nonce",
                field=signing.HEADER_NONCE,
            )
        secret = self.box.decrypt(client.secret_encrypted)
        ok = signing.verify(
            secret,
            req.signature,
            timestamp_ms=req.timestamp,
            nonce=req.nonce,
            method=req.method,
            path=req.path,
            body=req.body,
        )
        if not ok:
            raise AuthError(
                "signature does not match the request", code="invalid_signature", field=signing.HEADER_SIGNATURE
            )
        return client

    def use_nonce(self, session: Session, client_id: str, req: SignedRequest) -> None:
        """Spend the request's nonce (once per client); a nonce already used is a 401."""
        expires = nonce_expiry(int(req.timestamp), self.max_skew_s)
        if not self.nonces.use(session, client_id, req.nonce, expires):
            raise AuthError("nonce already used (replayed request)", code="nonce_reused", field=signing.HEADER_NONCE)
