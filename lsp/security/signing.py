"""The request signature, shared by the server (verify) and ``lsp.client`` (sign).

    message   = timestamp_ms "\n" nonce "\n" METHOD "\n" path_with_query "\n" sha256_hex(body)
    signature = hex(HMAC-SHA256(api_secret, message))

Headers: X-API-Key, X-Timestamp (Unix milliseconds), X-Nonce, X-Signature.
The path is the raw (percent-encoded) path as sent, plus ``?query`` if any.
This module has no dependencies beyond the standard library on purpose.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER_KEY = "X-API-Key"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_NONCE = "X-Nonce"
HEADER_SIGNATURE = "X-Signature"
MAX_NONCE_LEN = 128


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def canonical_message(timestamp_ms: int | str, nonce: str, method: str, path_with_query: str, body: bytes) -> bytes:
    return "\n".join([str(timestamp_ms), nonce, method.upper(), path_with_query, body_hash(body)]).encode()


def sign(secret: str, timestamp_ms: int | str, nonce: str, method: str, path_with_query: str, body: bytes) -> str:
    msg = canonical_message(timestamp_ms, nonce, method, path_with_query, body)
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def verify(
    secret: str, signature: str, *, timestamp_ms: int | str, nonce: str, method: str, path: str, body: bytes
) -> bool:
    expected = sign(secret, timestamp_ms, nonce, method, path, body)
    # Bytes: compare_digest raises TypeError on non-ASCII str, and the header is the client's.
    return hmac.compare_digest(expected.encode(), signature.lower().encode("utf-8", "replace"))


def new_nonce() -> str:
    return secrets.token_hex(16)


def now_ms() -> int:
    return int(time.time() * 1000)


def signed_headers(api_key: str, secret: str, method: str, path_with_query: str, body: bytes = b"") -> dict[str, str]:
    """Everything a request needs to authenticate, for a fresh timestamp and nonce."""
    ts = now_ms()
    nonce = new_nonce()
    return {
        HEADER_KEY: api_key,
        HEADER_TIMESTAMP: str(ts),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(secret, ts, nonce, method, path_with_query, body),
    }
