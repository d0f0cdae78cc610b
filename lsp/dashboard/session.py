"""The admin session cookie: ``<expiry>.<hmac>`` signed with a key derived from LSP_SECRET_KEY.

Stateless (no session table); HttpOnly and SameSite=Strict so another site can neither read
it nor ride it on a cross-site form post (the POST handlers also check Origin when sent).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from lsp.config import Settings

COOKIE = "lsp_admin"
TTL_S = 8 * 3600


def _key(settings: Settings) -> bytes:
    # Bound to the admin password too: changing it logs every session out.
    material = settings.secret_key.get_secret_value() + "\0" + settings.admin_password.get_secret_value()
    return hashlib.sha256(b"lsp-dashboard-session\0" + material.encode()).digest()


def issue(settings: Settings, now: float | None = None) -> str:
    exp = str(int((now or time.time()) + TTL_S))
    sig = hmac.new(_key(settings), exp.encode(), hashlib.sha256).hexdigest()
    return f"{exp}.{sig}"


def valid(settings: Settings, token: str | None, now: float | None = None) -> bool:
    if not token or "." not in token:
        return False
    exp, sig = token.split(".", 1)
    good = hmac.new(_key(settings), exp.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sig.encode("utf-8", "replace"), good.encode()):
        return False
    try:
        return int(exp) > (now or time.time())
    except ValueError:
        return False


def password_ok(settings: Settings, given: str) -> bool:
    return hmac.compare_digest(given.encode(), settings.admin_password.get_secret_value().encode())
