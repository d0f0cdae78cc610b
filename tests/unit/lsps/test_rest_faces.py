"""The LSP as an LSPS client and its REST faces: answers are never taken for requests, and the JIT
face buys the cheapest fee line that accepts the payment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from lsp.errors import ValidationFailed
from lsp.lsps import lsps0, lsps2
from lsp.lsps.jsonrpc import Dispatcher, as_response
from lsp.services import jit

pytestmark = pytest.mark.unit
PEER = "02" + "11" * 32


@pytest.mark.parametrize(
    ("raw", "is_answer"),
    [
        (b'{"jsonrpc":"2.0","id":"a","result":{}}', True),
        (b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x"}}', True),
        (b'{"jsonrpc":"2.0","id":"a","method":"lsps0.list_protocols","params":{}}', False),
        (b"not json", False),
        (b"[]", False),
    ],
)
def test_answers_are_told_from_requests(raw: bytes, is_answer: bool) -> None:
    assert (as_response(raw) is not None) is is_answer


@dataclass
class _Msg:
    peer: bytes
    type: int
    data: bytes


class FakeLndCustomMessages:
    """Named fake of the two LND calls the peer transport makes: one subscription that delivers
    ``incoming`` and then blocks, and SendCustomMessage, recorded."""

    def __init__(self, incoming: list[bytes]):
        self.incoming = incoming
        self.sent: list[tuple[str, bytes]] = []
        self.answered = asyncio.Event()

    async def custom_messages(self) -> AsyncIterator[_Msg]:
        for data in self.incoming:
            yield _Msg(bytes.fromhex(PEER), lsps0.LSPS0_MESSAGE_TYPE, data)
        await asyncio.Event().wait()

    async def send_custom_message(self, peer: str, data: bytes, msg_type: int) -> None:
        self.sent.append((peer, data))
        self.answered.set()


def test_the_peer_transport_answers_requests_and_leaves_answers_alone() -> None:
    """Two LSPs that each answered the other's error responses with an error would talk forever."""
    d = Dispatcher()
    lsps0.register(d, [1, 2])
    lnd = FakeLndCustomMessages([
        b'{"jsonrpc":"2.0","id":"mine","result":{"protocols":[2]}}',  # an answer to our own client side
        b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"method must be a non-empty string"}}',
        b'{"jsonrpc":"2.0","id":"theirs","method":"lsps0.list_protocols","params":{}}',
    ])

    async def run() -> None:
        transport = lsps0.PeerTransport(lnd, d)  # type: ignore[arg-type]
        task = asyncio.create_task(transport.run())
        # The messages come in order and the request is last: once it is answered, the two answers
        # before it were either answered too (the bug) or left alone.
        await asyncio.wait_for(lnd.answered.wait(), 10)
        task.cancel()

    asyncio.run(run())
    assert [(p, json.loads(b)) for p, b in lnd.sent] == [
        (PEER, {"jsonrpc": "2.0", "id": "theirs", "result": {"protocols": [1, 2]}})
    ]


def _line(min_fee: int, ppm: int, min_size: int, max_size: int = 4_000_000_000) -> lsps2.OpeningFeeParams:
    return lsps2.OpeningFeeParams(
        min_fee_msat=min_fee, proportional=ppm, valid_until="2030-01-01T00:00:00.000Z", min_lifetime=1008,
        max_client_to_self_delay=2016, min_payment_size_msat=min_size, max_payment_size_msat=max_size,
    )


def test_the_jit_face_buys_the_cheapest_line_that_accepts_the_size() -> None:
    cheap_but_large_only = _line(1_000, 100, min_size=10_000_000)
    dearer_any_size = _line(2_000, 500, min_size=1_000)
    menu = [cheap_but_large_only, dearer_any_size]
    assert jit.cheapest(menu, 20_000_000) is cheap_but_large_only
    assert jit.cheapest(menu, 5_000_000) is dearer_any_size  # below the cheap line's minimum
    assert jit.cheapest(menu, None) is cheap_but_large_only
    with pytest.raises(ValidationFailed) as exc:
        jit.cheapest(menu, 1_500)  # fits no line: the fee (2,000 msat at least) would eat it
    assert exc.value.field == "body.paymentSizeMsat" and "1000..4000000000" in exc.value.message


def test_peer_lsps_setting_is_checked_at_start_up() -> None:
    from lsp.config import Settings

    assert Settings(peer_lsps=f" {PEER}@10.0.0.1:9735 ,").peer_lsp_list == [(PEER, "10.0.0.1:9735")]
    with pytest.raises(ValueError, match="is not NODE_ID@HOST:PORT"):
        Settings(peer_lsps=f"{PEER}@nohostport")


