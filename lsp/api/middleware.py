"""Request id, access log and API latency metric as one plain ASGI middleware.

Starlette's ``@app.middleware("http")`` (BaseHTTPMiddleware) runs every request
through an extra task group and memory streams; two of them cost about a tenth of
the LSP's CPU per API payment in ``lab bench lsp`` (py-spy), so this is plain ASGI.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lsp.logs import request_id_var

if TYPE_CHECKING:
    from lsp.metrics import Metrics

log = logging.getLogger("lsp.app")
REQUEST_ID_HEADER = "X-Request-ID"


class RequestContextMiddleware:
    """Per HTTP request: take the caller's ``X-Request-ID`` (or make one), expose it to
    logs via ``request_id_var``, echo it in the response, log one access line (path only,
    never the query string: WebSocket signatures and keys can travel there), and observe
    the latency labelled by route template (bounded cardinality)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = (Headers(scope=scope).get(REQUEST_ID_HEADER) or uuid.uuid4().hex)[:64]
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.api_latency.labels(template, scope["method"], str(status)).observe(elapsed)
            log.info("%s %s -> %d (%.1f ms)", scope["method"], scope["path"], status, elapsed * 1000)
            request_id_var.reset(token)
