"""``POST /api/liquidity/jit``: a JIT channel bought over the LSP's HTTP API, opened by the LSPS
daemon when the first payment arrives, with the fee bLIP-52's formula gives (harness.blip52)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.blip52 import opening_fee_msat
from harness.harness import LightningTestHarness
from harness.lsp_process import LspServer, free_port
from harness.lsps_client import LspsClient
from harness.lsps_lsp import LAB_MENU, LspsRunner
from lsp.client import LSPAPIError, LSPClient

pytestmark = pytest.mark.topology("jit")


def refused(call: Any) -> tuple[int, str, str | None]:
    with pytest.raises(LSPAPIError) as exc:
        call()
    return exc.value.status, exc.value.code, exc.value.field


def test_jit_channel_bought_over_http_opens_on_the_first_payment(lab: LightningTestHarness, tmp_path: Path) -> None:
    lsp_node, client_node, payer = lab.node("lsp"), lab.node("client"), lab.node("payer")
    # The API on the daemon's database and secret, as an operator runs the two.
    with (
        LspsRunner(lsp_node, tmp_path / "lsps.db", probe=payer) as runner,
        LspServer(runner.env, free_port(), tmp_path / "lsp-api.log") as server,
    ):
        creds = server.onboard("mobile wallet")
        with LSPClient(server.base_url, creds.api_key, creds.api_secret) as api:
            pubkey = client_node.pubkey
            assert refused(lambda: api.buy_jit("02" + "zz" * 32)) == (422, "validation_error", "body.clientPubkey")
            # Not connected, and no address to reach it: the LSP could not open the channel.
            assert refused(lambda: api.buy_jit(pubkey)) == (422, "validation_error", "body.host")
            host = client_node.p2p_address
            # Smaller than the cheapest line's minimum fee: no line can carry it.
            assert refused(lambda: api.buy_jit(pubkey, host=host, payment_size_msat=1_500_000)) == (
                422, "validation_error", "body.paymentSizeMsat"
            )
            amount = 50_000_000
            got = api.buy_jit(pubkey, host=host, payment_size_msat=amount)

        cheapest = LAB_MENU[0]  # lower on both components (bLIP-52 menus are ordered so)
        fee = opening_fee_msat(amount, cheapest["min_fee_msat"], cheapest["proportional"])
        assert got["openingFeeMsat"] == fee
        assert got["lspNodeId"] == lsp_node.pubkey == got["routeHint"]["nodeId"]
        assert got["routeHint"]["shortChannelId"] == got["jitChannelScid"]
        assert (got["routeHint"]["feeBaseMsat"], got["routeHint"]["feeProportionalMillionths"]) == (0, 0)
        assert got["openingFeeParams"]["min_fee_msat"] == str(cheapest["min_fee_msat"])

        with LspsClient(client_node, lsp_node.pubkey) as wallet:
            inv = wallet.jit_invoice(
                got["openingFeeParams"],
                amount_msat=amount,
                bought={"jit_channel_scid": got["jitChannelScid"], "lsp_cltv_expiry_delta": got["lspCltvExpiryDelta"]},
            )
            paid = payer.pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=60)
            assert paid.status == "SUCCEEDED", paid.failure_reason
            assert inv.rejected is None
            assert inv.received_msat == amount - fee
        assert any(c.remote_pubkey == lsp_node.pubkey for c in client_node.list_channels())
