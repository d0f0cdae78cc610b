"""A client's webhook endpoint for tests and drills: an HTTP server on 127.0.0.1 that records each
delivery the LSP makes to it (its ``X-LSP-Delivery`` id and JSON body), in order.

    with WebhookReceiver() as hook:
        client.set_webhook(hook.url, ["payment_received"])
        ...
        wait_for(lambda: hook.bodies(), what="a delivery")
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DELIVERY_HEADER = "X-LSP-Delivery"


class WebhookReceiver:
    def __init__(self) -> None:
        got: list[tuple[str, dict[str, Any]]] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    got.append((self.headers.get(DELIVERY_HEADER, ""), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._got, self._lock = got, lock
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def deliveries(self) -> list[tuple[str, dict[str, Any]]]:
        """(delivery id, body) of every POST so far, in arrival order (a retry repeats its id)."""
        with self._lock:
            return list(self._got)

    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, body in self.deliveries()]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
