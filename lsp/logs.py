"""Logging: every line carries the request id; secrets never reach a handler.

The request id comes from the client's ``X-Request-ID`` header (or is made
up) and lives in a context variable for the duration of the request, so
service code logs it without passing it around.
"""

from __future__ import annotations

import contextvars
import logging
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Header names and JSON/query keys whose values must never be logged.
_SECRET_KEYS = (
    "x-signature",
    "x-admin-key",
    "x-api-secret",
    "api_secret",
    "secret",
    "macaroon",
    "signature",
    "password",
)
_SECRET_RE = re.compile(
    # No leading word boundary: "apiSecret" and "x-api-secret" must match too.
    r"(?i)(?P<key>(?:" + "|".join(re.escape(k) for k in _SECRET_KEYS) + r")[\"']?\s*[:=]\s*[\"']?)(?P<val>[^\s\"',&}]+)"
)


def redact(text: str) -> str:
    """Replace the value after any secret-looking key with ``***``."""
    return _SECRET_RE.sub(lambda m: m.group("key") + "***", text)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(level: str = "INFO") -> None:
    """Install one handler on the ``lsp`` and ``uvicorn`` loggers (idempotent)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    for name in ("lsp", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
