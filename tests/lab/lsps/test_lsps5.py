"""LSPS5 (bLIP-55) against live LND: a client registers a webhook over peer messages, and the LSP
wakes it with a signed notification when a payment for it arrives while it is offline.

The notification delivery service is ``tests.lsps5_receiver``: an HTTPS server that checks the
signature with its own code (zbase32 + libsecp256k1 recovery) against the hub's node id."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.harness import LightningTestHarness
from harness.lsp_process import lsp_cli
from harness.lsps_client import LspsClient, LspsRpcError
from harness.lsps_lsp import LspsRunner
from harness.wait import wait_for
from tests.lsps5_receiver import Received, WebhookReceiver, signer_of

pytestmark = pytest.mark.topology("star5")


def checked(hit: Received, lsp_node_id: str) -> str:
    """The notification's method, once its signature is the LSP's and its body a notification."""
    ts = hit.headers["x-lsps5-timestamp"]
    message = b"LSPS5: DO NOT SIGN THIS MESSAGE MANUALLY: LSP: At " + ts.encode() + b" I notify " + hit.body
    assert signer_of(message, hit.headers["x-lsps5-signature"]) == lsp_node_id
    doc = json.loads(hit.body)
    assert doc["jsonrpc"] == "2.0" and "id" not in doc and isinstance(doc["params"], dict)
    return str(doc["method"])


def test_a_webhook_wakes_an_offline_client_and_its_payment_goes_through(
    lab: LightningTestHarness, tmp_path: Path
) -> None:
    hub, c1, c4 = lab.node("hub"), lab.node("c1"), lab.node("c4")
    with (
        WebhookReceiver(tmp_path) as receiver,
        LspsRunner(
            hub, tmp_path / "lsps.db", probe=c4, LSP_LSPS5_CA_BUNDLE=str(receiver.ca_path), LSP_LSPS5_HOLD_S="90"
        ) as lsps,
    ):
        with LspsClient(c4, hub.pubkey, accept_channels=False, intercept=False) as wallet:
            assert wallet.list_protocols() == [1, 2, 5]
            hook = receiver.url(f"/push?lsp={hub.pubkey}&device=c4")
            assert wallet.request("lsps5.set_webhook", {"app_name": "lab wallet", "webhook": hook}) == {
                "num_webhooks": 1, "max_webhooks": 4, "no_change": False
            }
            [registered] = receiver.wait_for(1)
            assert checked(registered, hub.pubkey) == "lsps5.webhook_registered"
            assert registered.path == f"/push?lsp={hub.pubkey}&device=c4"
            with pytest.raises(LspsRpcError) as exc:
                wallet.request("lsps5.set_webhook", {"app_name": "plain", "webhook": "http://127.0.0.1/x"})
            assert exc.value.code == 502
            with pytest.raises(LspsRpcError) as exc:
                wallet.request("lsps5.remove_webhook", {"app_name": "nope"})
            assert exc.value.code == 1010
            assert wallet.request("lsps5.list_webhooks") == {"app_names": ["lab wallet"], "max_webhooks": 4}

        invoice = c4.add_invoice(20_000, memo="while asleep")
        lab.stop_node("c4")
        wait_for(lambda: not hub.channel_with(c4).active, what="the hub to see c4 gone", timeout_s=30)
        with ThreadPoolExecutor(1) as pool:
            paying = pool.submit(c1.pay_invoice, invoice.payment_request, fee_limit_sat=100, timeout_s=150)
            # The hub holds the HTLC and wakes c4 through its webhook.
            hits = receiver.wait_for(2, timeout_s=60)
            assert checked(hits[1], hub.pubkey) == "lsps5.payment_incoming"
            assert hits[1].body == b'{"jsonrpc":"2.0","method":"lsps5.payment_incoming","params":{}}'
            lab.start_node("c4")  # the app woke up: c4 is back and reconnects to the hub
            paid = paying.result(timeout=180)
        assert paid.succeeded, paid.failure_reason
        assert len(receiver.received) == 2  # nothing more: one wake-up per payment

        # The operator asks the offline client to come back for its liquidity (the LSP never does
        # on its own): once, then the method cools down for it.
        c4_id = c4.pubkey
        busy = lsp_cli(lsps.env, "lsps5", "notify", c4_id, "liquidity_management_request")
        assert busy.returncode == 0 and "nothing sent" in busy.stdout, busy.stdout + busy.stderr
        assert len(receiver.received) == 2  # c4 is connected: nothing is sent
        lab.stop_node("c4")
        wait_for(lambda: not hub.channel_with(c4).active, what="the hub to see c4 gone", timeout_s=30)
        sent = lsp_cli(lsps.env, "lsps5", "notify", c4_id, "liquidity_management_request")
        assert sent.returncode == 0 and "HTTP 200" in sent.stdout, sent.stdout + sent.stderr
        notice = receiver.wait_for(3)[2]
        assert checked(notice, hub.pubkey) == "lsps5.liquidity_management_request"
        again = lsp_cli(lsps.env, "lsps5", "notify", c4_id, "liquidity_management_request")
        assert again.returncode == 0 and "nothing sent" in again.stdout
        assert len(receiver.received) == 3
        lab.start_node("c4")
