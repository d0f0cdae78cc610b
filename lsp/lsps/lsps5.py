"""LSPS5 (bLIP-55): webhooks the LSP calls to wake a client's app, service side.

Methods (over LSPS0 peer messages only: the caller's node id must be proven, or anyone could
have a node's notifications sent to their own URL): ``lsps5.set_webhook`` (insert or replace by
``app_name``, up to ``max_webhooks`` per node), ``lsps5.list_webhooks``, ``lsps5.remove_webhook``.
Errors: too_long (500), url_parse_error (501), unsupported_protocol (502, HTTPS only),
too_many_webhooks (503, ``data.max_webhooks``), app_name_not_found (1010).

Notifications are JSON-RPC notification objects POSTed as the exact body, with
``x-lsps5-timestamp`` (LSPS0 datetime) and ``x-lsps5-signature``: the LSP node's LSPS0
ln_signature (LND's SignMessage: zbase32) of
``LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At ${timestamp} I notify ${body}``.
Only a 200 counts as delivered; redirects are not followed; nothing else of the answer is read.

When the LSP sends them:

* ``lsps5.webhook_registered``: to the one webhook just added or changed, before the
  ``set_webhook`` answer (so before anything else reaches it).
* ``lsps5.payment_incoming``: an HTLC arrives for a client node that is offline and has webhooks
  (a forward onto its channel, or the first part for its JIT SCID); the HTLC is held up to
  ``LSP_LSPS5_HOLD_S`` for the client to connect, then forwarded (or failed, as before).
* ``lsps5.expiry_soon`` ``{timeout}``: at each block, an HTLC on a channel with an offline client
  is within ``LSP_LSPS5_EXPIRY_SOON_BLOCKS`` (24) of the height where the LSP's LND must go to chain
  for it: its expiry for an HTLC the LSP offered, 10 blocks earlier for one it received
  (LND's outgoing and incoming broadcast deltas).
* ``lsps5.liquidity_management_request`` and ``lsps5.onion_message_incoming``: by the operator
  (``lsp lsps5 notify NODE_ID METHOD``): the LSP never takes liquidity back on its own, and LND
  does not hand it onion messages for an offline peer.

Rate limit (bLIP-55's guideline): a method other than ``webhook_registered`` is not sent to a node
again within ``LSP_LSPS5_COOLDOWN_S`` unless the node came online since; nothing but
``webhook_registered`` is sent while the node is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lncore.lnd.client import LndClient
from lsp.db.base import session_scope, utcnow
from lsp.db.models_lsps import Lsps5Sent, Lsps5Webhook
from lsp.errors import LndError
from lsp.lsps.jsonrpc import CLIENT_REJECTED, Caller, Dispatcher, RpcError, invalid_params
from lsp.lsps.lsps2 import format_datetime

if TYPE_CHECKING:
    from lsp.lsps.config import Lsps5Settings

log = logging.getLogger("lsp.lsps.lsps5")

TOO_LONG = 500
URL_PARSE_ERROR = 501
UNSUPPORTED_PROTOCOL = 502
TOO_MANY_WEBHOOKS = 503
APP_NAME_NOT_FOUND = 1010
MAX_APP_NAME_BYTES = 64
MAX_WEBHOOK_CHARS = 1024

WEBHOOK_REGISTERED = "lsps5.webhook_registered"
PAYMENT_INCOMING = "lsps5.payment_incoming"
EXPIRY_SOON = "lsps5.expiry_soon"
LIQUIDITY_MANAGEMENT_REQUEST = "lsps5.liquidity_management_request"
ONION_MESSAGE_INCOMING = "lsps5.onion_message_incoming"
METHODS = (WEBHOOK_REGISTERED, PAYMENT_INCOMING, EXPIRY_SOON, LIQUIDITY_MANAGEMENT_REQUEST, ONION_MESSAGE_INCOMING)
LINK_UP_S = 15.0  # after the client connects, how long its channel may take to become active
# LND goes to chain for an HTLC it received (and can claim) this many blocks before its expiry.
INCOMING_BROADCAST_DELTA = 10


def app_name_bytes(app_name: str) -> int:
    """bLIP-55 counts ``app_name`` as UTF-8 with JSON's backslash escapes as written (``\\n`` is two bytes)."""
    return len(json.dumps(app_name, ensure_ascii=False)[1:-1].encode("utf-8"))


def check_webhook(url: Any) -> str:
    """The ``webhook`` parameter: at most 1024 ASCII characters, a URL, HTTPS."""
    if not isinstance(url, str):
        raise invalid_params("webhook must be a string", field_name="webhook")
    if len(url) > MAX_WEBHOOK_CHARS:
        raise RpcError(TOO_LONG, f"webhook is longer than {MAX_WEBHOOK_CHARS} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError as exc:
        raise RpcError(URL_PARSE_ERROR, f"webhook is not a URL: {exc}") from None
    if not url.isascii() or not parts.scheme or not parts.netloc or not parts.hostname or any(c.isspace() for c in url):
        raise RpcError(URL_PARSE_ERROR, "webhook is not a URL (RFC 1738): scheme://host/path expected, ASCII only")
    if parts.scheme.lower() != "https":
        raise RpcError(UNSUPPORTED_PROTOCOL, f"webhook protocol {parts.scheme!r} is not supported: use https")
    return url


def notification(method: str, params: dict[str, Any] | None = None) -> bytes:
    """The JSON-RPC notification object, serialised once: these exact bytes are signed and sent."""
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params or {}}, separators=(",", ":")).encode()


def message_to_sign(timestamp: str, body: bytes) -> bytes:
    return b"LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At " + timestamp.encode() + b" I notify " + body


@dataclass(frozen=True)
class Delivery:
    url: str
    status: int | None  # None: no answer (refused, timed out, TLS)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


class Lsps5Store:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def set_webhook(self, node: str, app_name: str, url: str, max_webhooks: int) -> tuple[int, bool]:
        """Insert or replace; returns (webhooks the node has now, changed)."""
        with session_scope(self.sessions) as s:
            row = s.scalar(select(Lsps5Webhook).where(Lsps5Webhook.client_node_id == node, Lsps5Webhook.app_name == app_name))
            count = int(s.scalar(select(func.count()).where(Lsps5Webhook.client_node_id == node)) or 0)
            if row is not None:
                if row.url == url:
                    return count, False
                row.url, row.updated_at = url, utcnow()
                return count, True
            if count >= max_webhooks:
                raise RpcError(
                    TOO_MANY_WEBHOOKS,
                    f"this node already has {count} webhooks, the maximum",
                    {"max_webhooks": max_webhooks},
                )
            s.add(Lsps5Webhook(client_node_id=node, app_name=app_name, url=url))
            return count + 1, True

    def app_names(self, node: str) -> list[str]:
        with session_scope(self.sessions) as s:
            return list(
                s.scalars(select(Lsps5Webhook.app_name).where(Lsps5Webhook.client_node_id == node).order_by(Lsps5Webhook.id))
            )

    def remove(self, node: str, app_name: str) -> bool:
        with session_scope(self.sessions) as s:
            gone = s.execute(
                delete(Lsps5Webhook).where(Lsps5Webhook.client_node_id == node, Lsps5Webhook.app_name == app_name)
            )
            return bool(getattr(gone, "rowcount", 0))

    def urls(self, node: str) -> list[str]:
        with session_scope(self.sessions) as s:
            return list(s.scalars(select(Lsps5Webhook.url).where(Lsps5Webhook.client_node_id == node).order_by(Lsps5Webhook.id)))

    def nodes(self) -> set[str]:
        with session_scope(self.sessions) as s:
            return set(s.scalars(select(Lsps5Webhook.client_node_id).distinct()))

    def claim(self, node: str, method: str, cooldown: timedelta) -> bool:
        """Take the method's slot for this node unless it was sent within ``cooldown``."""
        now = utcnow()
        try:
            with session_scope(self.sessions) as s:
                row = s.get(Lsps5Sent, (node, method), with_for_update=True)
                if row is not None and now - row.sent_at < cooldown:
                    return False
                if row is None:
                    s.add(Lsps5Sent(client_node_id=node, method=method, sent_at=now))
                else:
                    row.sent_at = now
                return True
        except IntegrityError:  # another process took it at the same moment
            return False

    def came_online(self, node: str) -> None:
        with session_scope(self.sessions) as s:
            s.execute(delete(Lsps5Sent).where(Lsps5Sent.client_node_id == node))


class Lsps5Service:
    """Registration methods, the notifier, and what it knows of peers (online, channels)."""

    def __init__(
        self,
        lnd: LndClient,
        sessions: sessionmaker[Session],
        settings: Lsps5Settings,
        *,
        clock: Callable[[], datetime] | None = None,
    ):
        self.lnd = lnd
        self.store = Lsps5Store(sessions)
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.with_webhooks: set[str] = set()
        self.online: set[str] = set()
        self._came_online: dict[str, asyncio.Event] = {}
        self._chan_peer: dict[int, str] = {}
        self._http: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Block epochs are only needed once some client has a webhook (an LSP without LSPS5 clients
        # keeps no stream open, and leaves nothing in LND's log while LND restarts).
        self._have_webhooks = asyncio.Event()

    # -- registration (LSPS0 methods) ----------------------------------------------------------
    def register(self, d: Dispatcher) -> None:
        d.register("lsps5.set_webhook", self.set_webhook, params={"app_name", "webhook"}, required={"app_name", "webhook"})
        d.register("lsps5.list_webhooks", self.list_webhooks)
        d.register("lsps5.remove_webhook", self.remove_webhook, params={"app_name"}, required={"app_name"})

    @staticmethod
    def _node(caller: Caller) -> str:
        if caller.transport != "lightning" or not caller.node_id:
            raise RpcError(CLIENT_REJECTED, "LSPS5 is served over Lightning peer messages only: the node must be proven")
        return caller.node_id

    async def set_webhook(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        node = self._node(caller)
        app_name = params["app_name"]
        if not isinstance(app_name, str):
            raise invalid_params("app_name must be a string", field_name="app_name")
        if app_name_bytes(app_name) > MAX_APP_NAME_BYTES:
            raise RpcError(TOO_LONG, f"app_name is longer than {MAX_APP_NAME_BYTES} bytes")
        url = check_webhook(params["webhook"])
        count, changed = await asyncio.to_thread(self.store.set_webhook, node, app_name, url, self.settings.max_webhooks)
        self.with_webhooks.add(node)
        self._have_webhooks.set()
        if changed:
            # Before the answer, so it reaches this webhook before any other notification does.
            await self.deliver([url], notification(WEBHOOK_REGISTERED))
        return {"num_webhooks": count, "max_webhooks": self.settings.max_webhooks, "no_change": not changed}

    async def list_webhooks(self, _params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        names = await asyncio.to_thread(self.store.app_names, self._node(caller))
        return {"app_names": names, "max_webhooks": self.settings.max_webhooks}

    async def remove_webhook(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        node = self._node(caller)
        app_name = params["app_name"]
        if not isinstance(app_name, str) or not await asyncio.to_thread(self.store.remove, node, app_name):
            raise RpcError(APP_NAME_NOT_FOUND, f"no webhook named {app_name!r}")
        if not await asyncio.to_thread(self.store.urls, node):
            self.with_webhooks.discard(node)
        return {}

    # -- sending -----------------------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            verify: ssl.SSLContext | bool = True
            if self.settings.ca_bundle is not None:
                verify = ssl.create_default_context()
                verify.load_verify_locations(cafile=str(self.settings.ca_bundle))
            self._http = httpx.AsyncClient(verify=verify, follow_redirects=False, timeout=self.settings.timeout_s)
        return self._http

    async def deliver(self, urls: list[str], body: bytes) -> list[Delivery]:
        """Sign once, POST to each URL; what each answered."""
        timestamp = format_datetime(self.clock())
        signature = await self.lnd.sign_message(message_to_sign(timestamp, body))
        headers = {"content-type": "application/json", "x-lsps5-timestamp": timestamp, "x-lsps5-signature": signature}

        async def post(url: str) -> Delivery:
            try:
                resp = await self._client().post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                return Delivery(url, None, f"{type(exc).__name__}: {exc}")
            return Delivery(url, resp.status_code)

        out = list(await asyncio.gather(*(post(u) for u in urls)))
        method = json.loads(body)["method"]
        for d in out:
            if d.ok:
                log.info("LSPS5 %s delivered to %s", method, d.url)
            else:  # bLIP-55: unusual, but otherwise ignored
                log.warning("LSPS5 %s to %s: %s", method, d.url, d.error or f"HTTP {d.status}")
        return out

    async def notify(self, node: str, method: str, params: dict[str, Any] | None = None) -> list[Delivery]:
        """Every webhook of ``node``, unless it is connected or the method is cooling down for it."""
        if method not in METHODS or method == WEBHOOK_REGISTERED:
            raise ValueError(f"not a notification the LSP sends on its own: {method}")
        if node not in self.with_webhooks or node in self.online:
            return []
        urls = await asyncio.to_thread(self.store.urls, node)
        if not urls:
            return []
        cooldown = timedelta(seconds=self.settings.cooldown_s)
        if not await asyncio.to_thread(self.store.claim, node, method, cooldown):
            log.info("LSPS5 %s to %s: sent within the last %.0f s; not again yet", method, node[:16], self.settings.cooldown_s)
            return []
        return await self.deliver(urls, notification(method, params))

    # -- what the service watches ---------------------------------------------------------------
    async def start(self) -> None:
        self.with_webhooks = await asyncio.to_thread(self.store.nodes)
        if self.with_webhooks:
            self._have_webhooks.set()
        self.online = {p.pub_key for p in await self.lnd.list_peers()}
        self._tasks.append(asyncio.create_task(self._watch_peers()))
        self._tasks.append(asyncio.create_task(self._watch_blocks()))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._http is not None:
            await self._http.aclose()

    async def _watch_peers(self) -> None:
        online_type = self.lnd.pb.ln.PeerEvent.PEER_ONLINE
        while True:
            try:
                async for ev in self.lnd.peer_events():
                    await self._peer_event(ev.pub_key, ev.type == online_type)
            except LndError as exc:
                log.warning("LSPS5: peer events ended (%s); resubscribing", exc.message)
            await asyncio.sleep(1.0)
            with contextlib.suppress(LndError):  # what changed while the stream was down
                self.online = {p.pub_key for p in await self.lnd.list_peers()}

    async def _peer_event(self, node: str, online: bool) -> None:
        if not online:
            self.online.discard(node)
            return
        self.online.add(node)
        if node in self.with_webhooks:
            await asyncio.to_thread(self.store.came_online, node)  # its cooldowns start over
        ev = self._came_online.pop(node, None)
        if ev is not None:
            ev.set()

    async def wait_online(self, node: str, timeout_s: float) -> bool:
        if node in self.online:
            return True
        ev = self._came_online.setdefault(node, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout_s)
        return node in self.online

    async def peer_of_channel(self, scid: int) -> str | None:
        """The peer at the other end of our channel ``scid`` (its id, or an alias), if we have it."""
        if scid not in self._chan_peer:
            for c in await self.lnd.list_channels():
                for s in (c.chan_id, *c.alias_scids, c.zero_conf_confirmed_scid, c.peer_scid_alias):
                    if s:
                        self._chan_peer[int(s)] = c.remote_pubkey
        return self._chan_peer.get(scid)

    async def wake(self, node: str) -> bool:
        """An HTLC waits for ``node``: if it is offline and has webhooks, notify it and wait for it
        to connect (up to hold_s). True when the node is connected (now)."""
        if node in self.online:
            return True
        if node not in self.with_webhooks:
            return False
        await self.notify(node, PAYMENT_INCOMING)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.hold_s
        if not await self.wait_online(node, self.settings.hold_s):
            return False
        # Connected is not yet forwarding: the channel is active once both sides reestablished it.
        while loop.time() < deadline + LINK_UP_S:
            with contextlib.suppress(LndError):
                if any(c.active for c in await self.lnd.list_channels(peer=node)):
                    return True
            await asyncio.sleep(0.25)
        return True

    async def _watch_blocks(self) -> None:
        from lncore.lnd.chainnotifier import ChainNotifier

        chain = ChainNotifier(self.lnd)
        await self._have_webhooks.wait()
        while True:
            try:
                async for height in chain.block_epochs():
                    await self.check_expiries(height)
            except LndError as exc:
                log.warning("LSPS5: block notifications ended (%s); resubscribing", exc.message)
            await asyncio.sleep(5.0)  # (LND restarting: each early try is an error line in its log)

    async def check_expiries(self, height: int) -> list[tuple[str, int]]:
        """``expiry_soon`` to each offline client with webhooks that has an HTLC close to forcing a
        close (the earliest such height per client); returns what was notified."""
        soon: dict[str, int] = {}
        if not self.with_webhooks:
            return []
        for c in await self.lnd.list_channels():
            node = c.remote_pubkey
            if node not in self.with_webhooks or node in self.online:
                continue
            for h in c.pending_htlcs:
                go_to_chain = int(h.expiration_height) - (INCOMING_BROADCAST_DELTA if h.incoming else 0)
                if go_to_chain - height <= self.settings.expiry_soon_blocks:
                    soon[node] = min(soon.get(node, go_to_chain), go_to_chain)
        sent = []
        for node, timeout in soon.items():
            if await self.notify(node, EXPIRY_SOON, {"timeout": timeout}):
                sent.append((node, timeout))
        return sent


async def notify_once(
    lnd: LndClient, sessions: sessionmaker[Session], settings: Lsps5Settings, node: str, method: str
) -> list[Delivery]:
    """The operator's ``lsp lsps5 notify``: one notification to a node's webhooks (same rules)."""
    svc = Lsps5Service(lnd, sessions, settings)
    svc.with_webhooks = await asyncio.to_thread(svc.store.nodes)
    svc.online = {p.pub_key for p in await lnd.list_peers()}
    try:
        return await svc.notify(node, method)
    finally:
        await svc.close()

