"""Channel opens are written ahead: the row and the fee are committed before LND is asked, and
LND stores the row's id as the channel's memo, so an open interrupted between the two is
resolved from LND, never lost. Real database; LND is a fake (pure logic: what LND answers)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lncore.lnd.types import ChannelPointRef
from lsp.db.base import session_scope, utcnow
from lsp.db.models import Channel
from lsp.errors import LndError, LndUnavailable, ValidationFailed
from lsp.services import channels, ledger
from tests.unit.lsp.conftest import Creds

pytestmark = pytest.mark.unit

PUBKEY = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


class FakeLnd:
    """A fake of the calls the channel manager makes; ``open_result`` is what OpenChannelSync does."""

    def __init__(self, open_result: ChannelPointRef | Exception):
        self.open_result = open_result
        self.memos: list[str] = []
        self.by_memo: dict[str, str] = {}  # what LND lists: memo -> channel point

    async def list_peers(self) -> list[Any]:
        return [SimpleNamespace(pub_key=PUBKEY)]

    async def open_channel(self, pubkey: str, capacity: int, **kw: Any) -> ChannelPointRef:
        self.memos.append(kw["memo"])
        if isinstance(self.open_result, Exception):
            raise self.open_result
        return self.open_result

    async def channel_points_by_memo(self) -> dict[str, str]:
        return self.by_memo


def open_for(api: TestClient, creds: Creds, lnd: FakeLnd) -> Channel:
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    return asyncio.run(
        channels.open_channel(lnd, ctx.sessions, ctx.settings, creds.client_id, pubkey=PUBKEY, capacity_sat=2_000_000)  # type: ignore[arg-type]
    )


def balance(api: TestClient, creds: Creds) -> int:
    with session_scope(api.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        return ledger.balance(s, creds.client_id)


def status_of(api: TestClient, channel_id: str) -> tuple[str, str | None]:
    with session_scope(api.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        ch = s.get(Channel, channel_id)
        assert ch is not None
        return ch.status, ch.channel_point


def test_open_records_intent_then_outpoint_and_charges_once(api: TestClient, creds: Creds) -> None:
    lnd = FakeLnd(ChannelPointRef("aa" * 32, 1))
    ch = open_for(api, creds, lnd)
    assert lnd.memos == [channels.memo_for(ch.id)]
    assert status_of(api, ch.id) == ("pending", f"{'aa' * 32}:1")
    assert balance(api, creds) == -ch.opening_fee_sat


def test_refused_open_fails_the_row_and_refunds_the_fee(api: TestClient, creds: Creds) -> None:
    lnd = FakeLnd(LndError("not enough witness outputs", grpc_code="UNKNOWN", rpc="OpenChannelSync"))
    with pytest.raises(ValidationFailed, match="LND refused"):
        open_for(api, creds, lnd)
    with session_scope(api.app.state.ctx.sessions) as s:  # type: ignore[attr-defined]
        [row] = s.query(Channel).all()
        assert row.status == "failed"
    assert balance(api, creds) == 0


def test_interrupted_open_is_resolved_from_lnd_by_its_memo(api: TestClient, creds: Creds) -> None:
    ctx = api.app.state.ctx  # type: ignore[attr-defined]
    lost = FakeLnd(LndUnavailable("connection reset", grpc_code="UNAVAILABLE", rpc="OpenChannelSync"))
    with pytest.raises(LndUnavailable):
        open_for(api, creds, lost)
    with pytest.raises(LndUnavailable):
        open_for(api, creds, lost)
    with session_scope(ctx.sessions) as s:
        first, second = (c.id for c in s.query(Channel).order_by(Channel.created_at, Channel.id))
        assert {c.status for c in s.query(Channel)} == {"opening"}
    fee = 2 * channels.validate_open(ctx.settings, pubkey=PUBKEY, capacity_sat=2_000_000, push_sat=0)
    assert balance(api, creds) == -fee
    # LND did open the first (it is pending there, with the row's memo); the second never reached it.
    lnd = FakeLnd(ChannelPointRef("00", 0))
    lnd.by_memo = {channels.memo_for(first): f"{'bb' * 32}:0"}
    assert asyncio.run(channels.resolve_opening(lnd, ctx.sessions)) == []  # within the grace period: hands off
    later = utcnow() + timedelta(seconds=channels.OPENING_GRACE_S + 1)
    done = asyncio.run(channels.resolve_opening(lnd, ctx.sessions, now=later))  # type: ignore[arg-type]
    assert sorted(done) == sorted([(first, "pending"), (second, "failed")])
    assert status_of(api, first) == ("pending", f"{'bb' * 32}:0")
    assert status_of(api, second)[0] == "failed"
    assert balance(api, creds) == -fee // 2  # the failed one's fee came back
