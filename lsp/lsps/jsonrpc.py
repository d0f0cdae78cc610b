"""JSON-RPC 2.0 as LSPS0 (bLIP-50) restricts it: one request per message, params by name only.

``Dispatcher.handle(raw)`` turns the bytes of one request into the bytes of
one response (or None for a notification). Methods declare the param names
they accept; anything else is answered with -32602 and
``data.unrecognized`` naming the keys, so a client learns exactly which
field it got wrong. Handlers raise ``RpcError`` for protocol errors (LSPS2's
200..299 and so on); any other exception becomes -32603 without internals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("lsp.lsps.jsonrpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
CLIENT_REJECTED = 1  # LSPS0: the LSP refuses to serve this client

MAX_MESSAGE_BYTES = 65_531  # a Lightning message body cannot exceed 65535 - 2 (type) - 2 (len)


class RpcError(Exception):
    """An error the client is meant to see: JSON-RPC ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def invalid_params(message: str, *, field_name: str | None = None, unrecognized: list[str] | None = None) -> RpcError:
    data: dict[str, Any] = {}
    if field_name is not None:
        data["field"] = field_name
    if unrecognized:
        data["unrecognized"] = unrecognized
    return RpcError(INVALID_PARAMS, message, data or None)


@dataclass(frozen=True)
class Request:
    id: str | int | None  # None: a notification (no response)
    method: str
    params: dict[str, Any]
    is_notification: bool


@dataclass(frozen=True)
class Caller:
    """Who is asking: the peer's node id (LSPS0 over Lightning) or the API client's (HTTPS mirror)."""

    node_id: str | None
    transport: str  # "lightning" | "https"


Handler = Callable[[dict[str, Any], Caller], Awaitable[dict[str, Any]]]


@dataclass
class Method:
    handler: Handler
    params: frozenset[str] = field(default_factory=frozenset)
    required: frozenset[str] = field(default_factory=frozenset)


def parse_request(raw: bytes | str) -> Request:
    """Parse one request; raises RpcError (with the id when one could be read) otherwise.

    The id is carried on the exception as ``request_id`` so the error response can echo it."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        doc = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise RpcError(PARSE_ERROR, "parse error: the message is not UTF-8 JSON") from None
    if isinstance(doc, list):
        raise RpcError(INVALID_REQUEST, "batch requests are not supported (LSPS0)")
    if not isinstance(doc, dict):
        raise RpcError(INVALID_REQUEST, "a request must be a JSON object")
    rid = doc.get("id")
    err: RpcError | None = None
    if doc.get("jsonrpc") != "2.0":
        err = RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0"')
    elif not isinstance(doc.get("method"), str) or not doc["method"]:
        err = RpcError(INVALID_REQUEST, "method must be a non-empty string")
    elif rid is not None and (isinstance(rid, bool) or not isinstance(rid, str | int)):
        err = RpcError(INVALID_REQUEST, "id must be a string or an integer")
    elif "params" in doc and not isinstance(doc["params"], dict):
        # LSPS0: params by name only; a positional array is not a valid call of any method.
        err = invalid_params("params must be an object (by-name parameters only)", field_name="params")
    if err is not None:
        err.request_id = rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None  # type: ignore[attr-defined]
        raise err
    return Request(id=rid, method=doc["method"], params=doc.get("params") or {}, is_notification="id" not in doc)


def as_response(raw: bytes | str) -> dict[str, Any] | None:
    """The message as a JSON-RPC *response* (an object with ``result`` or ``error`` and no
    ``method``), or None. A node that is both an LSP and an LSPS client (``GET
    /api/liquidity/providers`` asks other LSPs) receives answers on the same message type as
    requests: a server must leave them alone, or two LSPs would answer each other's error
    responses with errors forever."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(doc, dict) and "method" not in doc and ("result" in doc or "error" in doc):
        return doc
    return None


def response(rid: str | int | None, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def error_response(rid: str | int | None, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": err.to_json()}


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


class Dispatcher:
    """Method table + the request/response cycle shared by the peer-message and HTTPS transports."""

    def __init__(self) -> None:
        self.methods: dict[str, Method] = {}

    def register(
        self, name: str, handler: Handler, *, params: set[str] | None = None, required: set[str] | None = None
    ) -> None:
        self.methods[name] = Method(handler, frozenset(params or ()), frozenset(required or ()))

    async def call(self, req: Request, caller: Caller) -> dict[str, Any]:
        """Run one parsed request; returns the response document (result or error)."""
        method = self.methods.get(req.method)
        if method is None:
            return error_response(req.id, RpcError(METHOD_NOT_FOUND, f"method not found: {req.method}"))
        unknown = sorted(set(req.params) - method.params)
        if unknown:
            return error_response(
                req.id, invalid_params(f"unrecognized params: {', '.join(unknown)}", unrecognized=unknown)
            )
        missing = sorted(method.required - set(req.params))
        if missing:
            return error_response(req.id, invalid_params(f"missing param: {missing[0]}", field_name=missing[0]))
        try:
            return response(req.id, await method.handler(req.params, caller))
        except RpcError as exc:
            return error_response(req.id, exc)
        except Exception:  # never leak internals to a peer; the log has the traceback
            log.exception("LSPS method %s failed", req.method)
            return error_response(req.id, RpcError(INTERNAL_ERROR, "internal error"))

    async def invoke(self, method: str, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """Call a method in-process (the LSP's own REST faces): its result, or its RpcError raised."""
        doc = await self.call(Request(id="local", method=method, params=params, is_notification=False), caller)
        if "error" in doc:
            err = doc["error"]
            raise RpcError(err["code"], err["message"], err.get("data"))
        result: dict[str, Any] = doc["result"]
        return result

    async def handle(self, raw: bytes | str, caller: Caller) -> bytes | None:
        """Bytes in, bytes out; None when the request was a notification."""
        try:
            req = parse_request(raw)
        except RpcError as exc:
            return encode(error_response(getattr(exc, "request_id", None), exc))
        doc = await self.call(req, caller)
        return None if req.is_notification else encode(doc)
