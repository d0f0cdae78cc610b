"""LSPS1 channel orders against live nodes: paid by Lightning -> channel opened, then the hold
invoice is settled; an open that fails -> the invoice is cancelled (refund)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    payer.router.reset_mission_control()
    if lab.chain.mempool():
        lab.mine(1)


@pytest.fixture
def lsp(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspsRunner]:
    with LspsRunner(lab.node("lsp"), tmp_path / "lsps1.db", probe=lab.node("payer")) as runner:
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


def order_settled(c: LspsClient, order_id: str, *, what: str) -> dict[str, Any]:
    """The order once it left CREATED (completed or failed), read through lsps1.get_order."""
    return dict(
        wait_for(
            lambda: (o := c.request("lsps1.get_order", {"order_id": order_id}))["order_state"] != "CREATED" and o,
            what=what,
            timeout_s=60,
        )
    )


def _refund_tx(lab: LightningTestHarness, order_id: str) -> tuple[str, int]:
    """(txid, miner fee) of the LSP wallet's refund for the order (the sweep is labelled with it)."""
    tx = next(t for t in lab.node("lsp").ln.transactions() if t.label == f"lsps1 refund {order_id}")
    return tx.tx_hash, int(tx.total_fees)


def test_order_paid_on_chain_opens_the_channel(lab: LightningTestHarness, lsp: LspsRunner) -> None:
    client = lab.node("client")
    client.connect(lab.node("lsp"))
    refund = client.new_address()
    with LspsClient(client, lab.node("lsp").pubkey) as c:
        order = c.request("lsps1.create_order", {**ORDER, "refund_onchain_address": refund})
        onchain = order["payment"]["onchain"]
        assert (onchain["state"], onchain["refund_onchain_address"]) == ("EXPECT_PAYMENT", refund)
        assert onchain["min_onchain_payment_confirmations"] == 1 and onchain["min_fee_for_0conf"] >= 253
        assert onchain["order_total_sat"] == order["payment"]["bolt11"]["order_total_sat"]

        lab.send_onchain(onchain["address"], int(onchain["order_total_sat"]))  # and mines the block

        done = order_settled(c, order["order_id"], what="the order paid on chain to complete")
        assert done["order_state"] == "COMPLETED", done
        assert done["payment"]["onchain"]["state"] == "PAID"
        assert done["payment"]["bolt11"]["state"] == "REFUNDED"  # the Lightning option was withdrawn
        outpoint = done["channel"]["funding_outpoint"]
    lab.mine(1)
    wait_for(
        lambda: any(ch.channel_point == outpoint and ch.capacity_sat == 500_000 for ch in client.list_channels()),
        what="the ordered channel to be open at the client",
        timeout_s=60,
    )


def test_onchain_order_whose_open_fails_is_refunded_to_the_refund_address(
    lab: LightningTestHarness, lsp: LspsRunner
) -> None:
    node = lab.node("client2")
    node.connect(lab.node("lsp"))
    refund = node.new_address()
    before = node.balances().onchain_confirmed_sat
    with LspsClient(node, lab.node("lsp").pubkey, accept_channels=False) as c:
        order = c.request("lsps1.create_order", {**ORDER, "lsp_balance_sat": "1000000", "refund_onchain_address": refund})
        total = int(order["payment"]["onchain"]["order_total_sat"])
        lab.send_onchain(order["payment"]["onchain"]["address"], total)
        done = order_settled(c, order["order_id"], what="the order whose open fails to end")
        assert done["order_state"] == "FAILED" and done["payment"]["onchain"]["state"] == "REFUNDED", done
        assert done["channel"] is None
    txid, fee = _refund_tx(lab, order["order_id"])
    assert 0 < fee < total // 2
    lab.mine(1)
    # Exactly what was paid comes back, minus the refund's own miner fee (bLIP-51 3.3).
    wait_for(
        lambda: node.balances().onchain_confirmed_sat == before + total - fee,
        what=f"the refund {txid} to reach the client's address",
        timeout_s=60,
    )
    assert not node.list_channels()
    # The client refusing the channel is logged by LND; the plugin's invariant check ignores only that.
    lab.expect_log_errors("does not accept channels", "unable to cancel reservation")


def test_order_created_over_https_is_followed_by_the_daemon(lab: LightningTestHarness, tmp_path: Path) -> None:
    """The deployment an operator runs: ``lsp serve`` (the API) and ``lsp lsps`` (the LSPS daemon)
    as two processes on one LND node and one database. The API creates the order over HTTPS; the
    daemon picks it up, opens the channel when the hold invoice is paid and settles it."""
    import subprocess
    import sys

    from harness.lsp_process import LspServer, free_port, lsp_env
    from lsp.client import LSPClient

    client = lab.node("client")
    client.connect(lab.node("lsp"))
    env = lsp_env(lab.node("lsp"), f"sqlite:///{tmp_path / 'lsp.db'}", admin_key="lsps1-https-admin")
    server = LspServer(env, free_port(), tmp_path / "api.log")
    server.start()  # migrates the database first
    daemon_log = tmp_path / "lsps.log"
    with daemon_log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "lsp.cli", "lsps"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    try:
        made = server.onboard("wallet-vendor")
        with LSPClient(server.base_url, made.api_key, made.api_secret) as api:

            def call(method: str, params: dict[str, object]) -> dict[str, object]:
                body = {"jsonrpc": "2.0", "id": method, "method": method, "params": params}
                doc = api.request("POST", "/api/lsps/", params={"node_id": client.pubkey}, json=body)
                return dict(doc["result"])

            assert call("lsps0.list_protocols", {}) == {"protocols": [1, 2]}
            order = call("lsps1.create_order", ORDER)
            bolt11 = order["payment"]["bolt11"]  # type: ignore[index]
            paid = lab.node("payer").pay_invoice(bolt11["invoice"], fee_limit_sat=0, timeout_s=60)
            assert paid.status == "SUCCEEDED", paid.failure_reason
            done = call("lsps1.get_order", {"order_id": order["order_id"]})
        assert done["order_state"] == "COMPLETED"
        assert done["payment"]["bolt11"]["state"] == "PAID"  # type: ignore[index]
        assert "onchain" not in done["payment"]  # type: ignore[operator]  # no refund address: no on-chain option
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        server.stop()
    for text in (server.log_text(), daemon_log.read_text()):
        assert "Traceback" not in text, text[-6000:]


def test_underpaid_onchain_order_is_refunded_when_it_expires(lab: LightningTestHarness, lsp: LspsRunner) -> None:
    lsp.restart(LSP_LSPS1_ORDER_EXPIRY_S="8")
    node = lab.node("client2")
    node.connect(lab.node("lsp"))
    refund = node.new_address()
    before = node.balances().onchain_confirmed_sat
    with LspsClient(node, lab.node("lsp").pubkey) as c:
        order = c.request("lsps1.create_order", {**ORDER, "refund_onchain_address": refund})
        short = int(order["payment"]["onchain"]["order_total_sat"]) - 1_000
        lab.send_onchain(order["payment"]["onchain"]["address"], short)
        done = order_settled(c, order["order_id"], what="the underpaid order to expire")
    assert done["order_state"] == "FAILED" and done["payment"]["onchain"]["state"] == "REFUNDED", done
    assert done["payment"]["bolt11"]["state"] == "REFUNDED"  # the invoice expired unpaid
    _txid, fee = _refund_tx(lab, order["order_id"])
    lab.mine(1)
    wait_for(
        lambda: node.balances().onchain_confirmed_sat == before + short - fee,
        what="the underpayment to come back",
        timeout_s=60,
    )
    assert not node.list_channels()
