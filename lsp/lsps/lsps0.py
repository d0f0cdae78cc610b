"""LSPS0 (bLIP-50): JSON-RPC over Lightning peer messages of type 37913, and ``lsps0.list_protocols``.

Requests arrive through LND's ``SubscribeCustomMessages`` and answers leave
through ``SendCustomMessage`` to the same peer; the peer's node id is the
caller identity (LSPS2 binds its promise to it). Each request is handled in
its own task so one slow method cannot stall the peer's next request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lncore.lnd.client import LndClient
from lsp.errors import LndError
from lsp.lsps.jsonrpc import MAX_MESSAGE_BYTES, Caller, Dispatcher, as_response

# bLIP-50 (LSPS0): the BOLT 8 message type LSPS JSON-RPC rides on (odd: "it's ok to be odd").
LSPS0_MESSAGE_TYPE = 37913

log = logging.getLogger("lsp.lsps.lsps0")


def register(d: Dispatcher, protocols: list[int]) -> None:
    async def list_protocols(_params: dict[str, Any], _caller: Caller) -> dict[str, Any]:
        return {"protocols": sorted(protocols)}

    d.register("lsps0.list_protocols", list_protocols)


class PeerTransport:
    def __init__(self, lnd: LndClient, dispatcher: Dispatcher):
        self.lnd = lnd
        self.dispatcher = dispatcher
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Serve requests until cancelled; resubscribe if LND drops the stream."""
        while True:
            try:
                log.debug("subscribing to LND's custom messages")
                async for msg in self.lnd.custom_messages():
                    if msg.type != LSPS0_MESSAGE_TYPE:
                        continue
                    if as_response(msg.data) is not None:  # an answer to this node's own client side
                        continue
                    log.debug("LSPS0 message from %s (%d bytes)", msg.peer.hex(), len(msg.data))
                    task = asyncio.create_task(self._answer(msg.peer.hex(), msg.data))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except LndError as exc:
                log.warning("SubscribeCustomMessages ended: %s; resubscribing", exc.message)
            await asyncio.sleep(1.0)

    async def _answer(self, peer: str, data: bytes) -> None:
        out = await self.dispatcher.handle(data, Caller(node_id=peer, transport="lightning"))
        if out is None:
            return
        if len(out) > MAX_MESSAGE_BYTES:
            log.warning("LSPS0 response to %s is %d bytes, too large for one message; dropped", peer, len(out))
            return
        try:
            await self.lnd.send_custom_message(peer, out, LSPS0_MESSAGE_TYPE)
            log.debug("LSPS0 answer to %s sent (%d bytes)", peer, len(out))
        except LndError as exc:
            log.warning("could not answer LSPS0 request from %s: %s", peer, exc.message)
