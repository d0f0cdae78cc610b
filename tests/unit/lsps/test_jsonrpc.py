"""LSPS0's JSON-RPC rules: error codes, by-name params only, no batches, notifications."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from lsp.lsps.jsonrpc import Caller, Dispatcher, RpcError

pytestmark = pytest.mark.unit

CALLER = Caller("02" + "ab" * 32, "lightning")


def _dispatcher() -> Dispatcher:
    d = Dispatcher()

    async def echo(params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        return {"got": params, "node": caller.node_id}

    async def boom(_p: dict[str, Any], _c: Caller) -> dict[str, Any]:
        raise KeyError("secret internals")

    async def refuse(_p: dict[str, Any], _c: Caller) -> dict[str, Any]:
        raise RpcError(201, "invalid_opening_fee_params", {"field": "promise"})

    d.register("t.echo", echo, params={"a", "b"}, required={"a"})
    d.register("t.boom", boom)
    d.register("t.refuse", refuse)
    return d


def handle(raw: bytes | str) -> dict[str, Any] | None:
    out = asyncio.run(_dispatcher().handle(raw, CALLER))
    return None if out is None else json.loads(out)


def req(method: str, params: Any = None, rid: Any = "1") -> str:
    doc: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        doc["params"] = params
    return json.dumps(doc)


def test_success_echoes_id_and_result() -> None:
    assert handle(req("t.echo", {"a": 1})) == {
        "jsonrpc": "2.0",
        "id": "1",
        "result": {"got": {"a": 1}, "node": CALLER.node_id},
    }


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", -32700),
        (b"\xff\xfe", -32700),
        ("[" + req("t.echo", {"a": 1}) + "]", -32600),  # batches are not allowed
        ('"just a string"', -32600),
        (json.dumps({"jsonrpc": "1.0", "id": "1", "method": "t.echo"}), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": "1", "method": 5}), -32600),
        (json.dumps({"jsonrpc": "2.0", "id": {"x": 1}, "method": "t.echo"}), -32600),
        (req("t.echo", [1, 2]), -32602),  # by-position params
        (req("nope.method", {}), -32601),
        (req("t.echo", {}), -32602),  # missing a required param
        (req("t.boom", {}), -32603),
        (req("t.refuse", {}), 201),
    ],
)
def test_errors_have_the_standard_codes(raw: bytes | str, code: int) -> None:
    out = handle(raw)
    assert out is not None and out["error"]["code"] == code


def test_unrecognized_params_are_named_in_data() -> None:
    out = handle(req("t.echo", {"a": 1, "zz": 2, "c": 3}))
    assert out is not None
    assert out["error"]["code"] == -32602
    assert out["error"]["data"]["unrecognized"] == ["c", "zz"]


def test_internal_errors_do_not_leak_details() -> None:
    out = handle(req("t.boom", {}))
    assert out is not None and "secret" not in json.dumps(out)


def test_id_is_echoed_on_request_errors_and_notifications_get_no_answer() -> None:
    out = handle(req("t.echo", [1], rid=7))
    assert out is not None and out["id"] == 7
    assert handle(json.dumps({"jsonrpc": "2.0", "method": "t.echo", "params": {"a": 1}})) is None
