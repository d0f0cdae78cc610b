"""The HTTPS mirror of the LSPS methods: HMAC auth, JSON-RPC bodies, statuses, field-named 4xx."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from lsp.client import HMACAuth
from tests.unit.lsp.conftest import Creds

pytestmark = pytest.mark.unit

NODE = "02" + "11" * 32


def rpc(
    api: TestClient, creds: Creds, method: str, params: dict[str, object], *, node: str | None = NODE
) -> tuple[int, dict]:
    body = {"jsonrpc": "2.0", "id": "1", "method": method, "params": params}
    resp = api.post(
        "/api/lsps/",
        params={"node_id": node} if node else None,
        json=body,
        auth=HMACAuth(creds.api_key, creds.api_secret),
    )
    return resp.status_code, resp.json()


def test_unsigned_requests_are_refused(api: TestClient) -> None:
    resp = api.post("/api/lsps/", json={"jsonrpc": "2.0", "id": "1", "method": "lsps0.list_protocols"})
    assert resp.status_code == 401


def test_list_protocols_get_info_and_buy_over_https(api: TestClient, creds: Creds) -> None:
    status, doc = rpc(api, creds, "lsps0.list_protocols", {})
    assert status == 200 and doc["result"] == {"protocols": [1, 2]}
    status, doc = rpc(api, creds, "lsps2.get_info", {})
    menu = doc["result"]["opening_fee_params_menu"]
    assert status == 200 and len(menu) == 2
    status, doc = rpc(api, creds, "lsps2.buy", {"opening_fee_params": menu[0], "payment_size_msat": "50000000"})
    assert status == 200 and "x" in doc["result"]["jit_channel_scid"]
    # The promise is bound to NODE: presenting it for another node is error 201.
    other = "03" + "22" * 32
    status, doc = rpc(api, creds, "lsps2.buy", {"opening_fee_params": menu[0]}, node=other)
    assert status == 400 and doc["error"]["code"] == 201


def test_errors_are_4xx_with_the_jsonrpc_body(api: TestClient, creds: Creds) -> None:
    status, doc = rpc(api, creds, "lsps9.nope", {})
    assert status == 404 and doc["error"]["code"] == -32601
    status, doc = rpc(api, creds, "lsps2.get_info", {"bogus": 1})
    assert status == 400 and doc["error"]["data"]["unrecognized"] == ["bogus"]
    resp = api.post("/api/lsps/", params={"node_id": "zz"}, json={}, auth=HMACAuth(creds.api_key, creds.api_secret))
    assert resp.status_code in (400, 422) and "node_id" in resp.text


def test_lsps1_over_https_validates_and_needs_the_node_to_create(api: TestClient, creds: Creds) -> None:
    status, doc = rpc(api, creds, "lsps1.get_info", {})
    assert status == 200 and doc["result"]["max_initial_client_balance_sat"] == "0"
    order = {
        "lsp_balance_sat": "500000",
        "client_balance_sat": "0",
        "required_channel_confirmations": 0,
        "funding_confirms_within_blocks": 6,
        "channel_expiry_blocks": 4032,
        "announce_channel": False,
    }
    status, doc = rpc(api, creds, "lsps1.create_order", {**order, "lsp_balance_sat": "1"})
    assert status == 400 and (doc["error"]["code"], doc["error"]["data"]["property"]) == (100, "lsp_balance_sat")
    # Valid, but this app has no LND behind it: the JSON-RPC internal error, answered 503.
    status, doc = rpc(api, creds, "lsps1.create_order", order)
    assert status == 503 and doc["error"]["code"] == -32603
    status, doc = rpc(api, creds, "lsps1.get_order", {"order_id": "nope"})
    assert status == 400 and doc["error"]["code"] == 101
