"""WebSocket /ws/lightning: a client's live events (payment_received, payment_sent, channel_opened, ...).

Browsers cannot set headers on a WebSocket, so the signature travels in the
query string: ``?apiKey=..&timestamp=..&nonce=..&signature=..`` where the
signature is the usual one over GET, the path ``/ws/lightning`` and an empty
body. Refused connections are closed with code 4401 and the reason.
"""

from __future__ import annotations

import logging

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from lsp.client import WS_PATH  # one spelling, shared with the client
from lsp.context import AppContext
from lsp.db.base import session_scope
from lsp.db.models import Client
from lsp.errors import LSPError
from lsp.security.auth import SignedRequest

router = APIRouter()
log = logging.getLogger("lsp.ws")


@router.websocket(WS_PATH)
async def lightning_events(websocket: WebSocket) -> None:
    ctx: AppContext = websocket.app.state.ctx
    q = websocket.query_params
    try:
        signed = SignedRequest.from_headers(
            {
                "X-API-Key": q.get("apiKey", ""),
                "X-Timestamp": q.get("timestamp", ""),
                "X-Nonce": q.get("nonce", ""),
                "X-Signature": q.get("signature", ""),
            },
            method="GET",
            path=WS_PATH,
            body=b"",
        )

        def check() -> Client:
            with session_scope(ctx.sessions) as s:
                return ctx.auth.authenticate(s, signed)

        client = await run_in_threadpool(check)
    except LSPError as exc:
        await websocket.close(code=4401, reason=f"{exc.code}: {exc.message}"[:120])
        return
    await websocket.accept()
    with ctx.bus.subscribe(client.id) as events:
        await websocket.send_json({"type": "hello", "data": {"clientId": client.id}})

        # Two tasks: one sends the events, one reads the socket. The client sends nothing, but
        # reading is how a close (the client's, or the server's at shutdown) is seen at once and
        # not at the next event. Whichever ends first ends both.
        async with anyio.create_task_group() as tg:

            async def pump() -> None:
                try:
                    while True:
                        event = await events.get()
                        await websocket.send_text(event.to_json())
                except (WebSocketDisconnect, RuntimeError):
                    pass
                tg.cancel_scope.cancel()

            async def listen() -> None:
                try:
                    while (await websocket.receive())["type"] != "websocket.disconnect":
                        pass
                except (WebSocketDisconnect, RuntimeError):
                    pass
                tg.cancel_scope.cancel()

            tg.start_soon(pump)
            tg.start_soon(listen)
