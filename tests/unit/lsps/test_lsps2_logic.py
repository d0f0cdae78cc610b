"""LSPS2 pure logic: the fee formula (rounding, overflow), promises, menus, SCIDs, params parsing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lsp.lsps.interceptor import ChannelSizing, split_fee
from lsp.lsps.jsonrpc import Caller, Dispatcher, RpcError
from lsp.lsps.lsps2 import (
    U64_MAX,
    Buy,
    FeeOverflow,
    Lsps2Config,
    Lsps2Methods,
    MenuEntry,
    OpeningFeeParams,
    build_menu,
    check_menu,
    check_payment_size,
    format_datetime,
    gross_for_net,
    is_jit_scid,
    opening_fee_msat,
    parse_datetime,
    random_jit_scid,
    scid_from_str,
    scid_to_str,
)

pytestmark = pytest.mark.unit

SECRET = b"unit-secret"
NODE = "02" + "11" * 32
OTHER = "03" + "22" * 32
NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


def test_fee_rounds_up_like_the_blip_reference_code() -> None:
    # 1_000_001 msat at 1 ppm is 1.000001 msat: the bLIP's (x + 999_999) // 1_000_000 gives 2.
    assert opening_fee_msat(1_000_001, 0, 1) == 2
    assert opening_fee_msat(1_000_000, 0, 1) == 1
    assert opening_fee_msat(0, 0, 1) == 0
    assert opening_fee_msat(50_000_000, 2_000_000, 5_000) == 2_000_000  # the minimum wins
    assert opening_fee_msat(500_000_000, 2_000_000, 5_000) == 2_500_000  # the proportional part wins


def test_fee_overflow_is_detected_not_wrapped() -> None:
    with pytest.raises(FeeOverflow):
        opening_fee_msat(U64_MAX, 0, 2)
    # The product fits but adding 999_999 for the rounding does not.
    with pytest.raises(FeeOverflow):
        opening_fee_msat(U64_MAX - 10, 0, 1)
    assert opening_fee_msat(U64_MAX // 2_000_000, 0, 1_000_000) == U64_MAX // 2_000_000


@pytest.mark.parametrize("net", [1, 999, 50_000_123, 1_999_999_999])
@pytest.mark.parametrize(("min_fee", "ppm"), [(0, 1), (2_000_000, 5_000), (1, 100_000), (3_000_000, 8_000)])
def test_gross_for_net_gives_exactly_the_net_after_the_fee(net: int, min_fee: int, ppm: int) -> None:
    gross = gross_for_net(net, min_fee, ppm)
    assert gross - opening_fee_msat(gross, min_fee, ppm) == net
    assert (gross - 1) - opening_fee_msat(gross - 1, min_fee, ppm) < net  # the smallest such payment


def test_payment_size_checks_map_to_the_spec_errors() -> None:
    p = OpeningFeeParams(2_000_000, 5_000, format_datetime(NOW), 1008, 2016, 1_000, 4_000_000_000)
    assert check_payment_size(p, 10_000_000) == 2_000_000
    for size, code in [(2_000_000, 202), (500, 202), (4_000_000_001, 203), (U64_MAX, 203)]:
        with pytest.raises(RpcError) as exc:
            check_payment_size(p, size)
        assert exc.value.code == code, size


def test_promise_binds_params_and_node() -> None:
    menu = build_menu([MenuEntry(2_000_000, 5_000, timedelta(hours=1))], SECRET, NODE, NOW)
    p = menu[0]
    assert len(p.promise) == 64 and p.promise_ok(SECRET, NODE)
    assert not p.promise_ok(SECRET, OTHER)
    assert not p.promise_ok(b"other-secret", NODE)
    tampered = OpeningFeeParams(**{**p.__dict__, "min_fee_msat": 1})
    assert not tampered.promise_ok(SECRET, NODE)
    roundtrip = OpeningFeeParams.from_json(p.to_json())
    assert roundtrip == p and roundtrip.promise_ok(SECRET, NODE)


def test_params_json_has_exactly_the_blip_fields_with_string_amounts() -> None:
    p = build_menu([MenuEntry(2_000_000, 5_000, timedelta(hours=1))], SECRET, NODE, NOW)[0]
    doc = p.to_json()
    assert list(doc) == [
        "min_fee_msat",
        "proportional",
        "valid_until",
        "min_lifetime",
        "max_client_to_self_delay",
        "min_payment_size_msat",
        "max_payment_size_msat",
        "promise",
    ]
    assert doc["min_fee_msat"] == "2000000" and doc["valid_until"] == "2026-11-21T13:00:00.000Z"
    for bad in (
        {**doc, "min_fee_msat": 2_000_000},
        {**doc, "extra": 1},
        {k: v for k, v in doc.items() if k != "promise"},
    ):
        with pytest.raises(RpcError) as exc:
            OpeningFeeParams.from_json(bad)
        assert exc.value.code == 201


def test_menu_must_be_ordered_by_increasing_cost() -> None:
    check_menu([MenuEntry(1, 1, timedelta(1)), MenuEntry(1, 2, timedelta(1)), MenuEntry(5, 2, timedelta(1))])
    with pytest.raises(ValueError, match="ordered"):
        check_menu([MenuEntry(5, 1, timedelta(1)), MenuEntry(1, 2, timedelta(1))])
    with pytest.raises(ValueError, match="ordered"):
        check_menu([MenuEntry(1, 9, timedelta(1)), MenuEntry(2, 1, timedelta(1))])


def test_scid_format_and_alias_range() -> None:
    scid = (16_000_123 << 40) | (42 << 16) | 7
    assert scid_to_str(scid) == "16000123x42x7"
    assert scid_from_str("16000123x42x7") == scid
    assert is_jit_scid(scid) and not is_jit_scid((800_000 << 40) | 1)
    assert not is_jit_scid(16_250_000 << 40)
    for _ in range(100):
        assert is_jit_scid(random_jit_scid())
    for bad in ("1x2", "axbxc", "16777216x0x0", "1x0x65536"):
        with pytest.raises(ValueError):
            scid_from_str(bad)


def test_datetime_format_is_lsps0s() -> None:
    dt = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    assert format_datetime(dt) == "2026-01-02T03:04:05.678Z"
    assert parse_datetime("2026-01-02T03:04:05.678Z") == dt.replace(microsecond=678_000)


def test_fee_split_over_parts_keeps_each_part_positive() -> None:
    assert split_fee([25_000_000, 25_000_000, 10_000_000], 2_000_000) == [2_000_000, 0, 0]
    assert split_fee([1_000, 1_000, 5_000], 2_500) == [999, 999, 502]
    with pytest.raises(ValueError):
        split_fee([1_000, 1_000], 1_999)


def test_channel_is_big_enough_for_the_payment() -> None:
    sizing = ChannelSizing(min_capacity_sat=100_000, headroom_factor=2)
    assert sizing.capacity_sat(10_000) == 100_000
    assert sizing.capacity_sat(400_000_000) >= 400_000 * 2


class _Store:
    """A fake store (pure logic test): records buys in memory."""

    def __init__(self) -> None:
        self.buys: list[Buy] = []

    def create_buy(self, client_node_id: str, params: OpeningFeeParams, payment_size_msat: int | None) -> Buy:
        buy = Buy(str(len(self.buys)), client_node_id, random_jit_scid(), params, payment_size_msat, "PENDING")
        self.buys.append(buy)
        return buy


def _methods(clock: datetime = NOW, tokens: frozenset[str] | None = None) -> tuple[Dispatcher, _Store]:
    store = _Store()
    cfg = Lsps2Config(
        menu=[MenuEntry(2_000_000, 5_000, timedelta(hours=1), min_payment_size_msat=1_000)],
        secret=SECRET,
        tokens=tokens,
    )
    d = Dispatcher()
    Lsps2Methods(cfg, store, clock=lambda: clock).register(d)
    return d, store


def _call(d: Dispatcher, method: str, params: dict[str, Any], node: str = NODE) -> dict[str, Any]:
    from lsp.lsps.jsonrpc import Request

    return asyncio.run(d.call(Request("1", method, params, False), Caller(node, "lightning")))


def test_buy_flow_and_errors_through_the_dispatcher() -> None:
    d, store = _methods()
    menu = _call(d, "lsps2.get_info", {})["result"]["opening_fee_params_menu"]
    ok = _call(d, "lsps2.buy", {"opening_fee_params": menu[0], "payment_size_msat": "50000000"})["result"]
    assert is_jit_scid(scid_from_str(ok["jit_channel_scid"]))
    assert ok["lsp_cltv_expiry_delta"] == 144 and ok["client_trusts_lsp"] is False
    assert store.buys[0].payment_size_msat == 50_000_000
    # Params issued to NODE, presented by OTHER: the promise does not verify.
    assert _call(d, "lsps2.buy", {"opening_fee_params": menu[0]}, node=OTHER)["error"]["code"] == 201
    assert _call(d, "lsps2.buy", {"opening_fee_params": menu[0], "payment_size_msat": "100"})["error"]["code"] == 202
    bad_size = _call(d, "lsps2.buy", {"opening_fee_params": menu[0], "payment_size_msat": 5})["error"]
    assert bad_size["code"] == -32602 and bad_size["data"]["field"] == "payment_size_msat"
    later, _ = _methods(clock=NOW + timedelta(hours=2))
    assert _call(later, "lsps2.buy", {"opening_fee_params": menu[0]})["error"]["code"] == 201
    assert len(store.buys) == 1


def test_get_info_token_is_checked_when_configured() -> None:
    d, _ = _methods(tokens=frozenset({"good"}))
    assert _call(d, "lsps2.get_info", {"token": "bad"})["error"]["code"] == 200
    assert "result" in _call(d, "lsps2.get_info", {"token": "good"})


def test_a_blinded_forward_by_node_id_is_not_taken_for_a_jit_scid() -> None:
    # Since LND v0.21.2 an HTLC forwarded to a blinded path's next node by its node id (no
    # channel named) reaches the interceptor with outgoing_requested_chan_id = 2**64 - 1.
    assert not is_jit_scid(0xFFFF_FFFF_FFFF_FFFF)
    assert not is_jit_scid(0)
