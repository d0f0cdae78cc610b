"""JSON-RPC over HTTP(S) with basic auth: what btcd and Bitcoin Core both speak.

btcd serves it over TLS with its own self-signed certificate (mandatory for
LND); Bitcoin Core over plain HTTP on 127.0.0.1 (or inside the lab's Docker
network). One small httpx client covers both; a JSON-RPC error becomes an
``RpcError`` carrying the node's code, so callers can tell "not yet"
(Core's -28 while it warms up) from a real refusal.
"""

from __future__ import annotations

import itertools
import ssl
import threading
from pathlib import Path
from typing import Any

import httpx

from harness.errors import NodeError

# Bitcoin Core's RPC_IN_WARMUP: the server answers but is still loading.
RPC_IN_WARMUP = -28


class RpcError(NodeError):
    def __init__(self, node: str, method: str, code: int, message: str):
        self.node = node
        self.method = method
        self.code = code
        self.message = message
        super().__init__(f"{node} {method}: {message} (code {code})")


class JsonRpc:
    """One node's JSON-RPC endpoint. Thread-safe: httpx's client is, and the
    request id counter is locked."""

    def __init__(
        self,
        node: str,
        url: str,
        *,
        user: str,
        password: str,
        cert: Path | None = None,
        timeout_s: float = 60.0,
    ):
        self.node = node
        self.url = url
        self.cert = cert
        self._auth = (user, password)
        self._timeout = timeout_s
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                verify: ssl.SSLContext | bool = True
                if self.cert is not None:
                    # btcd's self-signed cert names its host and 127.0.0.1; hostname checks stay on.
                    verify = ssl.create_default_context(cafile=str(self.cert))
                self._client = httpx.Client(verify=verify, auth=self._auth, timeout=self._timeout)
            return self._client

    def call(self, method: str, *params: Any, timeout_s: float | None = None) -> Any:
        """Call ``method``; ``timeout_s`` overrides the client's timeout (short while polling readiness)."""
        with self._lock:
            request_id = next(self._ids)
        body = {"jsonrpc": "1.0", "id": request_id, "method": method, "params": list(params)}
        resp = self._http().post(self.url, json=body, timeout=timeout_s if timeout_s is not None else self._timeout)
        if resp.status_code in (401, 403):
            raise RpcError(self.node, method, resp.status_code, "unauthorized (RPC user/password or rpcallowip)")
        try:
            data = resp.json()
        except ValueError:
            # Core answers some overload conditions ("Work queue depth exceeded") in plain text.
            raise RpcError(self.node, method, resp.status_code, resp.text.strip()[:200] or "empty answer") from None
        if data.get("error"):
            err = data["error"]
            raise RpcError(self.node, method, int(err.get("code", -1)), str(err.get("message")))
        return data["result"]

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
