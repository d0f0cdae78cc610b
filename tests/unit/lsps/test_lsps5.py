"""LSPS5 (bLIP-55), service side, against an HTTPS receiver that checks signatures with its own code.

LND's two calls here (SignMessage, ListPeers/ListChannels) are a named fake that signs like LND
(LSPS0 ln_signature, zbase32) with a key of its own; the live test uses LND itself."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve
import pytest

from lsp.db.base import make_engine, make_sessionmaker
from lsp.db.migrate import upgrade
from lsp.lsps import lsps5
from lsp.lsps.config import Lsps5Settings
from lsp.lsps.jsonrpc import CLIENT_REJECTED, Caller, Dispatcher, RpcError
from tests.lsps5_receiver import ZBASE32, WebhookReceiver, signer_of

pytestmark = pytest.mark.unit
CLIENT = "02" + "ab" * 32
OTHER = "03" + "cd" * 32


def test_the_signed_message_is_the_blips_example_byte_for_byte() -> None:
    """bLIP-55's worked example (its hex dump), for timestamp 2023-05-04T10:52:58.395Z."""
    body = b'{"jsonrpc":"2.0","method":"lsps5.goodbye","params":{}}'
    dump = (
        "4c53 5053 353a 2044 4f20 4e4f 5420 5349 474e 2054 4849 5320 4d45 5353 4147 4520"
        "4d41 4e55 414c 4c59 3a20 4c53 503a 2041 7420 3230 3233 2d30 352d 3034 5431 303a"
        "3532 3a35 382e 3339 355a 2049 206e 6f74 6966 7920 7b22 6a73 6f6e 7270 6322 3a22"
        "322e 3022 2c22 6d65 7468 6f64 223a 226c 7370 7335 2e67 6f6f 6462 7965 222c 2270"
        "6172 616d 7322 3a7b 7d7d"
    )
    assert lsps5.message_to_sign("2023-05-04T10:52:58.395Z", body) == bytes.fromhex(dump.replace(" ", ""))
    assert lsps5.notification("lsps5.payment_incoming") == b'{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}'


def _zbase32(data: bytes) -> str:
    bits = "".join(f"{b:08b}" for b in data)
    bits += "0" * (-len(bits) % 5)
    return "".join(ZBASE32[int(bits[i : i + 5], 2)] for i in range(0, len(bits), 5))


@dataclass
class _Peer:
    pub_key: str


@dataclass
class _Htlc:
    incoming: bool
    expiration_height: int


@dataclass
class _Channel:
    remote_pubkey: str
    pending_htlcs: list[_Htlc] = field(default_factory=list)
    chan_id: int = 1
    alias_scids: tuple[int, ...] = ()
    zero_conf_confirmed_scid: int = 0
    peer_scid_alias: int = 0


class FakeLndSigner:
    """Named fake of the LND calls LSPS5 makes: SignMessage (as LND signs), ListPeers, ListChannels."""

    def __init__(self) -> None:
        self.key = coincurve.PrivateKey(hashlib.sha256(b"fake lsp node").digest())
        self.node_id = self.key.public_key.format(compressed=True).hex()
        self.peers: list[str] = []
        self.channels: list[_Channel] = []

    async def sign_message(self, message: bytes) -> str:
        digest = hashlib.sha256(hashlib.sha256(b"Lightning Signed Message:" + message).digest()).digest()
        sig = self.key.sign_recoverable(digest, hasher=None)  # r || s || recid
        return _zbase32(bytes([31 + sig[64]]) + sig[:64])

    async def list_peers(self) -> list[_Peer]:
        return [_Peer(p) for p in self.peers]

    async def list_channels(self) -> list[_Channel]:
        return self.channels


@pytest.fixture
def service(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'lsps5.db'}"
    upgrade(url)
    engine = make_engine(url)
    lnd = FakeLndSigner()
    receiver = WebhookReceiver(tmp_path).__enter__()
    settings = Lsps5Settings(ca_bundle=receiver.ca_path, max_webhooks=2, cooldown_s=600)
    svc = lsps5.Lsps5Service(lnd, make_sessionmaker(engine), settings)  # type: ignore[arg-type]
    d = Dispatcher()
    svc.register(d)
    yield svc, d, lnd, receiver
    asyncio.run(svc.close())
    receiver.__exit__()
    engine.dispose()


def call(d: Dispatcher, method: str, params: dict[str, Any], node: str = CLIENT, transport: str = "lightning") -> Any:
    return asyncio.run(d.invoke(method, params, Caller(node_id=node, transport=transport)))


def code_of(d: Dispatcher, method: str, params: dict[str, Any], **kw: Any) -> tuple[int, Any]:
    with pytest.raises(RpcError) as exc:
        call(d, method, params, **kw)
    return exc.value.code, exc.value.data


def test_set_webhook_notifies_only_the_new_webhook_signed_by_the_lsp(service: Any) -> None:
    _svc, d, lnd, receiver = service
    got = call(d, "lsps5.set_webhook", {"app_name": "Wallet", "webhook": receiver.url("/push?c=1")})
    assert got == {"num_webhooks": 1, "max_webhooks": 2, "no_change": False}
    [hit] = receiver.wait_for(1)
    assert hit.path == "/push?c=1" and hit.body == b'{"jsonrpc":"2.0","method":"lsps5.webhook_registered","params":{}}'
    ts = hit.headers["x-lsps5-timestamp"]
    assert len(ts) == 24 and ts[10] == "T" and ts.endswith("Z") and ts[19] == "."
    message = b"LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At " + ts.encode() + b" I notify " + hit.body
    assert signer_of(message, hit.headers["x-lsps5-signature"]) == lnd.node_id
    # The same registration again changes nothing and calls nobody.
    assert call(d, "lsps5.set_webhook", {"app_name": "Wallet", "webhook": receiver.url("/push?c=1")})["no_change"]
    assert call(d, "lsps5.list_webhooks", {}) == {"app_names": ["Wallet"], "max_webhooks": 2}
    assert call(d, "lsps5.list_webhooks", {}, node=OTHER) == {"app_names": [], "max_webhooks": 2}
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"app_name": "x" * 65, "webhook": "https://example.org/"}, lsps5.TOO_LONG),
        ({"app_name": "\\n" * 16 + "\n" * 17, "webhook": "https://example.org/"}, lsps5.TOO_LONG),  # 32 + 34 bytes
        ({"app_name": "ok", "webhook": "https://example.org/" + "a" * 1010}, lsps5.TOO_LONG),
        ({"app_name": "ok", "webhook": "not a url"}, lsps5.URL_PARSE_ERROR),
        ({"app_name": "ok", "webhook": "https://exämple.org/"}, lsps5.URL_PARSE_ERROR),
        ({"app_name": "ok", "webhook": "https://example.org:99999/"}, lsps5.URL_PARSE_ERROR),
        ({"app_name": "ok", "webhook": "http://example.org/push"}, lsps5.UNSUPPORTED_PROTOCOL),
        ({"app_name": "ok", "webhook": "ftp://example.org/push"}, lsps5.UNSUPPORTED_PROTOCOL),
    ],
)
def test_set_webhook_errors_are_the_blips(service: Any, params: dict[str, Any], code: int) -> None:
    _, d, _, receiver = service
    assert code_of(d, "lsps5.set_webhook", params)[0] == code
    assert receiver.received == []


def test_limits_removal_and_transport(service: Any) -> None:
    _, d, _, receiver = service
    for name in ("a", "b"):
        call(d, "lsps5.set_webhook", {"app_name": name, "webhook": receiver.url(f"/{name}")})
    assert code_of(d, "lsps5.set_webhook", {"app_name": "c", "webhook": receiver.url("/c")}) == (
        lsps5.TOO_MANY_WEBHOOKS, {"max_webhooks": 2}
    )
    # Replacing one of the two is not a new one: allowed at the limit, and the new URL is told.
    assert call(d, "lsps5.set_webhook", {"app_name": "b", "webhook": receiver.url("/b2")})["num_webhooks"] == 2
    assert [r.path for r in receiver.wait_for(3)] == ["/a", "/b", "/b2"]
    assert call(d, "lsps5.remove_webhook", {"app_name": "a"}) == {}
    assert code_of(d, "lsps5.remove_webhook", {"app_name": "a"})[0] == lsps5.APP_NAME_NOT_FOUND
    # Over the HTTPS mirror the node cannot be proven: someone else's node could be named.
    assert code_of(d, "lsps5.list_webhooks", {}, transport="https")[0] == CLIENT_REJECTED


def test_notifications_skip_connected_clients_and_cool_down_until_they_come_online(service: Any) -> None:
    svc, d, _lnd, receiver = service
    call(d, "lsps5.set_webhook", {"app_name": "w", "webhook": receiver.url("/w")})
    receiver.wait_for(1)

    async def run() -> list[int]:
        counts = []
        svc.online = {CLIENT}
        counts.append(len(await svc.notify(CLIENT, lsps5.PAYMENT_INCOMING)))  # connected: nothing
        svc.online = set()
        counts.append(len(await svc.notify(CLIENT, lsps5.PAYMENT_INCOMING)))  # sent
        counts.append(len(await svc.notify(CLIENT, lsps5.PAYMENT_INCOMING)))  # cooling down
        counts.append(len(await svc.notify(CLIENT, lsps5.LIQUIDITY_MANAGEMENT_REQUEST)))  # another method: sent
        await svc._peer_event(CLIENT, True)  # it came online ...
        await svc._peer_event(CLIENT, False)  # ... and went away: its cooldowns start over
        counts.append(len(await svc.notify(CLIENT, lsps5.PAYMENT_INCOMING)))
        counts.append(len(await svc.notify(OTHER, lsps5.PAYMENT_INCOMING)))  # no webhooks
        return counts

    assert asyncio.run(run()) == [0, 1, 0, 1, 1, 0]
    methods = [json.loads(r.body)["method"] for r in receiver.wait_for(4)]
    assert methods == ["lsps5.webhook_registered", "lsps5.payment_incoming", "lsps5.liquidity_management_request",
                       "lsps5.payment_incoming"]
    with pytest.raises(ValueError):
        asyncio.run(svc.notify(CLIENT, lsps5.WEBHOOK_REGISTERED))


def test_expiry_soon_names_the_height_where_the_lsp_must_go_to_chain(service: Any) -> None:
    svc, d, lnd, receiver = service
    call(d, "lsps5.set_webhook", {"app_name": "w", "webhook": receiver.url("/w")})
    receiver.wait_for(1)
    lnd.channels = [
        _Channel(CLIENT, [_Htlc(incoming=False, expiration_height=1_130), _Htlc(incoming=True, expiration_height=1_135)]),
        _Channel(OTHER, [_Htlc(incoming=False, expiration_height=1_101)]),  # no webhooks: never told
    ]
    # At 1,100: the offered HTLC forces a close at 1,130 (30 blocks away), the received one at
    # 1,125 (its expiry minus LND's 10-block incoming delta): 25 blocks, not yet within 24.
    assert asyncio.run(svc.check_expiries(1_100)) == []
    assert asyncio.run(svc.check_expiries(1_101)) == [(CLIENT, 1_125)]
    [_, hit] = receiver.wait_for(2)
    assert json.loads(hit.body) == {"jsonrpc": "2.0", "method": "lsps5.expiry_soon", "params": {"timeout": 1_125}}
    assert asyncio.run(svc.check_expiries(1_102)) == []  # cooling down
