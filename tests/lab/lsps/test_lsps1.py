"""LSPS1 channel orders against live nodes: paid by Lightning -> channel opened, then the hold
invoice is settled; an open that fails -> the invoice is cancelled (refund)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.harness import LightningTestHarness
from harness.lsps_client import LspsClient, LspsRpcError
from harness.lsps_lsp import LspsRunner
from harness.wait import wait_for

pytestmark = pytest.mark.topology("jit", shared=True)

ORDER = {
    "lsp_balance_sat": "500000",
    "client_balance_sat": "0",
    "required_channel_confirmations": 0,
    "funding_confirms_within_blocks": 6,
    "channel_expiry_blocks": 4032,
    "announce_channel": False,
}


@pytest.fixture(autouse=True)
def _fresh_start(lab: LightningTestHarness) -> None:
    """Each test starts unbiased: earlier failure tests teach the payer to avoid lsp->client, and
    earlier opens leave the LSP's change unconfirmed (a new open needs a confirmed coin)."""
    payer = lab.node("payer")
    payer.router.stub.ResetMissionControl(payer.router.s.router.ResetMissionControlRequest(), timeout=30)
    if lab.chain.mempool():
        lab.mine(1)


@pytest.fixture
def lsp(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspsRunner]:
    with LspsRunner(lab.node("lsp"), tmp_path / "lsps1.db") as runner:
        yield runner
    if lab.chain.mempool():
        lab.mine(1)


def test_order_paid_by_lightning_opens_the_channel_then_settles(lab: LightningTestHarness, lsp: LspsRunner) -> None:
    client = lab.node("client")
    client.connect(lab.node("lsp"))
    with LspsClient(client, lab.node("lsp").pubkey) as c:
        info = c.request("lsps1.get_info")
        assert info["max_initial_client_balance_sat"] == "0"
        order = c.request("lsps1.create_order", ORDER)
        assert order["order_state"] == "CREATED"
        bolt11 = order["payment"]["bolt11"]
        assert bolt11["state"] == "EXPECT_PAYMENT"
        lsp_node_before = {ch.channel_point for ch in lab.node("lsp").list_channels()}

        paid = lab.node("payer").pay_invoice(bolt11["invoice"], fee_limit_sat=0, timeout_s=60)

        assert paid.status == "SUCCEEDED"
        assert paid.value_sat == int(bolt11["order_total_sat"])
        done = c.request("lsps1.get_order", {"order_id": order["order_id"]})
        assert done["order_state"] == "COMPLETED"
        assert done["payment"]["bolt11"]["state"] == "PAID"
        outpoint = done["channel"]["funding_outpoint"]
    # The funding transaction was out before the LSP took the money; confirm it and see the channel.
    assert outpoint.split(":")[0] in lab.chain.mempool()
    lab.mine(1)
    wait_for(
        lambda: any(
            ch.channel_point == outpoint and ch.capacity_sat == 500_000 for ch in lab.node("client").list_channels()
        ),
        what="the ordered channel to be open at the client",
        timeout_s=60,
    )
    assert outpoint not in lsp_node_before


def test_order_whose_open_fails_is_refunded(lab: LightningTestHarness, lsp: LspsRunner) -> None:
    node = lab.node("client2")
    node.connect(lab.node("lsp"))
    with LspsClient(node, lab.node("lsp").pubkey, accept_channels=False) as c:
        order = c.request("lsps1.create_order", ORDER)
        payer_before = lab.node("payer").channel_with(lab.node("lsp")).local_balance_sat

        paid = lab.node("payer").pay_invoice(order["payment"]["bolt11"]["invoice"], fee_limit_sat=0, timeout_s=60)

        assert paid.status == "FAILED"
        done = c.request("lsps1.get_order", {"order_id": order["order_id"]})
        assert done["order_state"] == "FAILED"
        assert done["payment"]["bolt11"]["state"] == "REFUNDED"
        assert done["channel"] is None
    assert lab.node("payer").channel_with(lab.node("lsp")).local_balance_sat == payer_before
    assert not [ch for ch in lab.node("client2").list_channels()]
    other = [
        line
        for line in lab.new_error_lines()
        if "does not accept channels" not in line and "unable to cancel reservation" not in line
    ]
    assert not other, other
    lab.mark_logs()


def test_order_options_are_validated_with_the_spec_errors(lab: LightningTestHarness, lsp: LspsRunner) -> None:
    lab.node("client").connect(lab.node("lsp"))
    with LspsClient(lab.node("client"), lab.node("lsp").pubkey) as c:
        with pytest.raises(LspsRpcError) as big:
            c.request("lsps1.create_order", {**ORDER, "lsp_balance_sat": "999999999"})
        assert big.value.code == 100 and big.value.data == {"property": "lsp_balance_sat"}
        with pytest.raises(LspsRpcError) as push:
            c.request("lsps1.create_order", {**ORDER, "client_balance_sat": "1000"})
        assert push.value.code == 100
        with pytest.raises(LspsRpcError) as missing:
            c.request("lsps1.get_order", {"order_id": "nope"})
        assert missing.value.code == 101
        with pytest.raises(LspsRpcError) as typed:
            c.request("lsps1.create_order", {**ORDER, "lsp_balance_sat": 500000})
        assert typed.value.code == -32602 and typed.value.data["field"] == "lsp_balance_sat"
