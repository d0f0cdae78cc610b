"""The LSPS JSON-RPC methods over HTTPS (``POST /api/lsps/``), for clients without a peer connection.

Same dispatcher and methods as LSPS0 over Lightning messages, behind the core
API's HMAC auth. Over HTTPS the transport cannot prove which Lightning node is
asking, so the node the fee promise is bound to (and the JIT channel opened
to) is named in the ``node_id`` query parameter, which the request signature
covers (it signs the path with its query). JSON-RPC errors keep their JSON-RPC body and get a 4xx status so
HTTP tooling sees the failure: 400 for malformed/invalid requests and the
protocols' own errors, 404 for an unknown method.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lsp.api.deps import Ctx, CurrentClient
from lsp.compliance import kyc
from lsp.errors import ValidationFailed
from lsp.lsps.jsonrpc import INTERNAL_ERROR, METHOD_NOT_FOUND, Caller, Dispatcher
from lsp.lsps.server import dispatcher, lsps2_config

router = APIRouter(prefix="/api/lsps", tags=["lsps"])
NODE_ID = re.compile(r"^(02|03)[0-9a-f]{64}$")
BUYING = frozenset({"lsps1.create_order", "lsps2.buy"})


class JsonRpcError(BaseModel):
    code: int
    message: str
    data: Any = Field(default=None, description="present only when the error carries details")


class JsonRpcResponse(BaseModel):
    """A JSON-RPC 2.0 response: ``result`` on success (HTTP 200), or ``error`` (HTTP 400, 404 or 503)."""

    jsonrpc: Literal["2.0"]
    id: str | int | None = Field(description="the request's id")
    result: dict[str, Any] | None = Field(default=None, description="the method's result (absent on an error)")
    error: JsonRpcError | None = Field(default=None, description="absent on success")


def _method_of(body: bytes) -> str | None:
    """The JSON-RPC method a request names, if it is well formed enough to name one (the
    dispatcher answers malformed requests with the JSON-RPC errors)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    method = doc.get("method") if isinstance(doc, dict) else None
    return method if isinstance(method, str) else None


def lsps_dispatcher(request: Request, ctx: Ctx) -> Dispatcher:
    """The app's LSPS dispatcher (built once): the HTTPS mirror and the REST faces share it."""
    existing: Dispatcher | None = getattr(request.app.state, "lsps_dispatcher", None)
    if existing is not None:
        return existing
    # LSPS1 orders are created and read here; the LSPS daemon (`lsp lsps`) follows their
    # payments and opens the channels (it picks up new orders from the shared database).
    d, _ = dispatcher(ctx.lnd, ctx.sessions, lsps2_config(ctx.settings), ctx.settings.lsps1, follow=False)
    request.app.state.lsps_dispatcher = d
    return d


@router.post("/", summary="Call an LSPS method (JSON-RPC 2.0 request body)", responses={200: {"model": JsonRpcResponse}})
async def call(
    request: Request,
    ctx: Ctx,
    _client: CurrentClient,
    node_id: Annotated[str | None, Query(description="the client's Lightning node id (hex)")] = None,
) -> Response:
    if node_id is not None and not NODE_ID.match(node_id):
        raise ValidationFailed("node_id must be a 33-byte compressed public key in lowercase hex", field="node_id")
    body = await request.body()
    if _method_of(body) in BUYING:
        # Buying a channel (LSPS1) or a JIT channel (LSPS2) is money movement: approved clients only
        # (403 in the API's error shape; reading the menu and orders stays open).
        await run_in_threadpool(kyc.check, ctx.sessions, kyc.enforce_approved, ctx.settings, _client.id)
    out = await lsps_dispatcher(request, ctx).handle(body, Caller(node_id=node_id, transport="https"))
    if out is None:
        return Response(status_code=204)
    status = 200
    doc: dict[str, Any] = json.loads(out)
    if "error" in doc:
        code = doc["error"]["code"]
        status = 404 if code == METHOD_NOT_FOUND else 503 if code == INTERNAL_ERROR else 400
    return Response(content=out, media_type="application/json", status_code=status)
