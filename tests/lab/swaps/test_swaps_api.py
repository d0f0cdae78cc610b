"""The swap API on a live hub: quotes and status before committing, bad input named, 0-conf swap-in,
swap events on the WebSocket and as webhook deliveries, the scenario helpers."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.sync.client import connect

from harness.harness import LightningTestHarness
from harness.swaps import SwapClient, submit_lockup, swap_in, swap_out, wait_claim_broadcast, wait_state
from harness.wait import wait_for
from harness.webhooks import WebhookReceiver
from lsp.client import LSPAPIError, websocket_url

from .conftest import SWAPS_TOPOLOGY, LspHandle

pytestmark = pytest.mark.topology(SWAPS_TOPOLOGY, shared=True)



def test_status_and_quote_show_fees_before_commitment(lab: LightningTestHarness, lsp_app: LspHandle) -> None:
    api = lsp_app.start()
    status = httpx.get(lsp_app.base_url + "/api/swaps/status", timeout=30).json()  # public, as in the seed's curl
    assert status["enabled"] and status["lnd"] and status["loopRunning"]
    assert status["fees"]["baseFee"] == 100 and status["fees"]["feePpm"] == 500

    q = api.request("GET", "/api/swaps/quote", params={"kind": "reverse", "amount": 100_000})
    assert q["serviceFee"] == 150
    assert q["onchainAmount"] == 100_000 - q["serviceFee"] - q["minerFee"]
    assert q["minerFee"] >= 153  # the lockup's vsize at >= 1 sat/vB


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/swaps/submarine",
            {"invoice": "lnbcrt1notaninvoice", "refundPublicKey": "02" + "11" * 32},
            "body.invoice",
        ),
        ("/api/swaps/submarine", {"invoice": "x" * 20, "refundPublicKey": "04abc"}, "body.refundPublicKey"),
        (
            "/api/swaps/reverse",
            {"amount": 50_000, "paymentHash": "zz", "claimPublicKey": "02" + "11" * 32},
            "body.paymentHash",
        ),
        (
            "/api/swaps/reverse",
            {"amount": 5, "paymentHash": "00" * 32, "claimPublicKey": "02" + "11" * 32},
            "body.amount",
        ),
        ("/api/swaps/reverse", {"amount": 50_000, "paymentHash": "00" * 32}, "body.claimPublicKey"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    lab: LightningTestHarness, lsp_app: LspHandle, path: str, body: dict[str, object], field: str
) -> None:
    api = lsp_app.start()
    with pytest.raises(LSPAPIError) as err:
        api.request("POST", path, json=body)
    assert err.value.field == field, err.value


def test_zero_conf_swap_in_pays_before_any_block(lab: LightningTestHarness, lsp_app: LspHandle) -> None:
    api = lsp_app.start(zero_conf_max_amount=100_000)
    client = SwapClient()
    inv = lab.node("c1").add_invoice(20_000)
    swap = api.request(
        "POST", "/api/swaps/submarine", json={"invoice": inv.payment_request, "refundPublicKey": client.pubkey}
    )
    height = lab.chain.height()
    lockup = client.fund(lab, swap)
    accepted = submit_lockup(lab, api, swap, lockup)
    assert accepted["state"] == "lockup_mempool" and accepted["confirmations"] == 0
    paid = wait_state(api, swap["swapId"], "claim_pending", timeout_s=60)
    assert lab.chain.height() == height  # paid and claim broadcast with the lockup still unconfirmed
    assert paid["preimage"] is not None
    wait_claim_broadcast(lab, paid)
    lab.mine(1)
    wait_state(api, swap["swapId"], "claimed", timeout_s=60)


def test_every_state_change_reaches_the_websocket_and_the_webhooks(
    lab: LightningTestHarness, lsp_app: LspHandle
) -> None:
    api = lsp_app.start()
    with WebhookReceiver() as hook:
        api.request("POST", "/api/enterprise/webhook", json={"url": hook.url, "events": ["swap_updated"]})
        creds = lsp_app.creds
        assert creds is not None
        with connect(websocket_url(lsp_app.base_url, creds.api_key, creds.api_secret), open_timeout=20) as ws:
            done = swap_in(lab, api, "c1", 15_000)
            seen: list[str] = []
            while len(seen) < 6:
                msg = json.loads(ws.recv(timeout=120))
                if msg["type"] == "swap_updated" and msg["data"]["swapId"] == done["swapId"]:
                    seen.append(msg["data"]["state"])
        expected = ["created", "lockup_confirmed", "invoice_pending", "invoice_paid", "claim_pending", "claimed"]
        assert seen == expected

        def delivered() -> list[str] | None:
            states = [p["data"]["state"] for p in hook.bodies() if p["data"].get("swapId") == done["swapId"]]
            return states if len(states) >= len(expected) else None

        assert wait_for(delivered, what="the webhook deliveries", timeout_s=60) == expected


def test_scenario_helpers_run_whole_swaps(lab: LightningTestHarness, lsp_app: LspHandle) -> None:
    api = lsp_app.start()
    assert swap_in(lab, api, "c1", 12_000)["state"] == "claimed"
    out = swap_out(lab, api, "c2", 30_000, lab.node("c2").new_address())
    assert out["state"] == "invoice_settled"
