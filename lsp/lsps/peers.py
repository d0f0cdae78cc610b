"""The LSP as an LSPS *client*: other LSPs' offers, asked over LSPS0 peer messages from the LSP's
own LND (``GET /api/liquidity/providers``).

One conversation per request: the LSP's LND subscribes to custom messages, connects to each peer
LSP if it is not connected yet, and asks ``lsps0.list_protocols``, then ``lsps1.get_info`` and
``lsps2.get_info`` for the protocols the peer lists. Answers are matched to requests by peer and
JSON-RPC id. Every method asked is read-only, so a request is sent again every ``RESEND_S``
until answered (the first may leave before LND has registered the subscription). A peer that
does not answer in time, or cannot be reached, gets its error in its entry; the others still
answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lncore.lnd.client import LndClient
from lsp.errors import LndError
from lsp.lsps.jsonrpc import Caller, Dispatcher, RpcError, as_response
from lsp.lsps.lsps0 import LSPS0_MESSAGE_TYPE

log = logging.getLogger("lsp.lsps.peers")
RESEND_S = 2.0


@dataclass
class PeerOffer:
    node_id: str
    address: str | None
    protocols: list[int] = field(default_factory=list)
    lsps1: dict[str, Any] | None = None
    lsps2: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float | None = None


class PeerError(Exception):
    pass


class _Conversation:
    """Requests out as peer messages, answers in from one custom-message subscription."""

    def __init__(self, lnd: LndClient):
        self.lnd = lnd
        self.waiting: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}

    async def listen(self) -> None:
        async for msg in self.lnd.custom_messages():
            if msg.type != LSPS0_MESSAGE_TYPE:
                continue
            doc = as_response(msg.data)
            if doc is None or not isinstance(doc.get("id"), str):
                continue
            fut = self.waiting.get((msg.peer.hex(), doc["id"]))
            if fut is not None and not fut.done():
                fut.set_result(doc)

    async def call(self, peer: str, method: str, deadline: float) -> dict[str, Any]:
        rid = uuid.uuid4().hex
        body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": {}}).encode()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[(peer, rid)] = fut
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PeerError(f"no answer to {method} in time")
                await self.lnd.send_custom_message(peer, body, LSPS0_MESSAGE_TYPE)
                try:
                    doc = await asyncio.wait_for(asyncio.shield(fut), min(RESEND_S, left))
                    break
                except TimeoutError:
                    continue
        finally:
            self.waiting.pop((peer, rid), None)
        if "error" in doc:
            err = doc["error"] if isinstance(doc["error"], dict) else {}
            raise PeerError(f"{method}: error {err.get('code')}: {err.get('message')}")
        result = doc.get("result")
        if not isinstance(result, dict):
            raise PeerError(f"{method}: the answer has no result object")
        return result


def without_promises(lsps2_info: dict[str, Any]) -> dict[str, Any]:
    """An LSPS2 menu as terms to show: promises are bound to the node that asked (here, the LSP),
    so they are of no use to anyone reading the list."""
    menu = lsps2_info.get("opening_fee_params_menu")
    if not isinstance(menu, list):
        return lsps2_info
    return {
        **lsps2_info,
        "opening_fee_params_menu": [
            {k: v for k, v in line.items() if k != "promise"} if isinstance(line, dict) else line for line in menu
        ],
    }


async def _ask(
    conv: _Conversation, lnd: LndClient, node_id: str, address: str, deadline: float, *, connected: bool
) -> PeerOffer:
    offer = PeerOffer(node_id=node_id, address=address)
    start = time.monotonic()
    try:
        if not connected:  # (asking LND to connect to a connected peer makes it log an error)
            try:
                await lnd.connect_peer(node_id, address, timeout_s=max(1, int(deadline - time.monotonic())))
            except LndError as exc:
                raise PeerError(f"cannot connect to {address}: {exc.message}") from None
        listed = await conv.call(node_id, "lsps0.list_protocols", deadline)
        protocols = listed.get("protocols")
        if not isinstance(protocols, list) or not all(isinstance(p, int) for p in protocols):
            raise PeerError("lsps0.list_protocols: protocols is not a list of integers")
        offer.protocols = sorted(protocols)
        if 1 in protocols:
            offer.lsps1 = await conv.call(node_id, "lsps1.get_info", deadline)
        if 2 in protocols:
            offer.lsps2 = without_promises(await conv.call(node_id, "lsps2.get_info", deadline))
        offer.latency_ms = round((time.monotonic() - start) * 1000, 1)
    except PeerError as exc:
        offer.error = str(exc)
    return offer


async def own_offer(d: Dispatcher, node_id: str, address: str | None) -> PeerOffer:
    """This LSP's offer, from the same methods its peers are asked over the wire (in-process)."""
    offer = PeerOffer(node_id=node_id, address=address)
    caller = Caller(node_id=node_id, transport="https")
    try:
        offer.protocols = sorted((await d.invoke("lsps0.list_protocols", {}, caller))["protocols"])
        if 1 in offer.protocols:
            offer.lsps1 = await d.invoke("lsps1.get_info", {}, caller)
        if 2 in offer.protocols:
            offer.lsps2 = without_promises(await d.invoke("lsps2.get_info", {}, caller))
    except RpcError as exc:
        offer.error = f"error {exc.code}: {exc.message}"
    return offer


async def ask_peers(lnd: LndClient, peers: Iterable[tuple[str, str]], *, timeout_s: float) -> list[PeerOffer]:
    """Each peer LSP's protocols and current terms, asked concurrently, within ``timeout_s``."""
    peers = list(peers)
    if not peers:
        return []
    connected = {p.pub_key for p in await lnd.list_peers()}
    conv = _Conversation(lnd)
    listener = asyncio.create_task(conv.listen())
    deadline = time.monotonic() + timeout_s
    try:
        return list(
            await asyncio.gather(
                *(_ask(conv, lnd, node, addr, deadline, connected=node in connected) for node, addr in peers)
            )
        )
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError, LndError):
            await listener
