"""The crash matrix, LSPS daemon side: ``lsp lsps`` (a real process, as an operator runs it next to
``lsp serve``) SIGKILLs itself at one named step of a JIT buy or an LSPS1 order
(``LSP_CRASH_AT``, lsp/faults.py), is started again unarmed, and then:

- the payment the client was waiting for completes (or, for a refused order, fails back) once;
- exactly one channel is opened for the buy or order, never a second one;
- the client is charged the bLIP-52 fee computed here from the menu (harness/blip52.py), and the
  LSP's LND holds no HTLC any more;
- ``lsp reconcile`` finds no difference.

LND runs with ``--requireinterceptor``: the HTLCs the daemon held when it died stay held and are
replayed to the restarted daemon. The last test restarts the LSP's LND instead and checks that
the JIT SCID still routes (LND forgets ``XAddLocalChanAliases`` aliases; the daemon re-adds them).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.blip52 import opening_fee_msat, scid_from_str
from harness.harness import LightningTestHarness
from harness.lsp_process import LspsDaemon, free_port, lsp_env, migrate, reconcile
from harness.lsps_client import LspsClient
from harness.rpc.lightning import ChannelInfo
from harness.rpc.router import PaymentResult
from harness.wait import wait_for

from .test_lsps1 import ORDER

pytestmark = pytest.mark.topology("jit")
SIGKILL = -9
# What LND logs while the daemon's interceptor reconnects after the kill, or while LND restarts.
# A kill during a JIT open cuts its OpenChannel stream: "context canceled" or "transport is closing".
RECONNECT = ("interceptor already exists", "context canceled", "transport is closing")
LND_RESTART = (
    "dead epoch stream in BestBlockTracker",
    "Unable to retrieve advertised address for peer",
    "funding manager shutting down",
    "in the process of starting up",
    "unable to validate channel update announcement",
)


@pytest.fixture
def daemon(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspsDaemon]:
    env = lsp_env(lab.node("lsp"), f"sqlite:///{tmp_path / 'lsp.db'}", admin_key="crash-matrix-admin")
    migrate(env)
    d = LspsDaemon(env, free_port(), tmp_path / "lsps.log")
    try:
        yield d
    finally:
        d.stop()
    assert "Traceback" not in d.log_text(), d.log_text()[-6000:]


def channels_with(lab: LightningTestHarness, a: str, b: str) -> list[ChannelInfo]:
    peer = lab.node(b).pubkey
    return [c for c in lab.node(a).list_channels() if c.remote_pubkey == peer]


def pay_through_the_crash(lab: LightningTestHarness, daemon: LspsDaemon, invoice: str) -> PaymentResult:
    """The payer pays ``invoice`` while the daemon dies at its point and is restarted unarmed; the
    payer's final result."""
    out: list[PaymentResult] = []
    t = threading.Thread(
        target=lambda: out.append(lab.node("payer").pay_invoice(invoice, fee_limit_sat=0, timeout_s=120)), daemon=True
    )
    t.start()
    killed_then_restarted(lab, daemon)
    t.join(timeout=150)
    assert out, "the payment did not end"
    return out[0]


def armed(lab: LightningTestHarness, daemon: LspsDaemon, point: str, node: str = "client") -> None:
    """Start the daemon armed at ``point``; ``node`` connected to the LSP (to buy or order)."""
    daemon.env["LSP_CRASH_AT"] = point
    daemon.start()
    lab.node(node).connect(lab.node("lsp"))


def killed_then_restarted(lab: LightningTestHarness, daemon: LspsDaemon) -> None:
    assert daemon.wait_killed() == SIGKILL, daemon.log_tail()
    lab.expect_log_errors(*RECONNECT)
    daemon.env.pop("LSP_CRASH_AT")
    daemon.start()


def assert_reconciled(lab: LightningTestHarness, daemon: LspsDaemon) -> None:
    lab.node("lsp").wait_no_pending_htlcs()
    report = reconcile(daemon.env)
    assert report["ok"], report
    assert report["pendingHtlcs"] == 0


@pytest.mark.parametrize(
    "point", ["jit.htlc_held", "jit.funding_published", "jit.channel_opening", "jit.htlc_resumed"]
)
def test_jit_buy_killed_mid_flight_opens_one_channel_and_charges_the_fee_once(
    lab: LightningTestHarness, daemon: LspsDaemon, point: str
) -> None:
    armed(lab, daemon, point)
    with LspsClient(lab.node("client"), lab.node("lsp").pubkey) as client:
        params = client.get_info()["opening_fee_params_menu"][0]
        amount = 40_000_000
        inv = client.jit_invoice(params, amount_msat=amount, mpp=True)
        result = pay_through_the_crash(lab, daemon, inv.payment_request)

        assert result.status == "SUCCEEDED", result
        fee = opening_fee_msat(amount, int(params["min_fee_msat"]), int(params["proportional"]))
        assert inv.rejected is None
        assert inv.received_msat == amount - fee
        assert sum(inv.fees_msat) == fee
    assert len(channels_with(lab, "lsp", "client")) == 1
    assert_reconciled(lab, daemon)


@pytest.mark.parametrize("point", ["lsps1.paid", "lsps1.channel_opening", "lsps1.before_settle"])
def test_lsps1_order_killed_mid_flight_opens_one_channel_then_takes_the_payment(
    lab: LightningTestHarness, daemon: LspsDaemon, point: str
) -> None:
    armed(lab, daemon, point)
    with LspsClient(lab.node("client"), lab.node("lsp").pubkey) as client:
        order = client.request("lsps1.create_order", ORDER)
        bolt11 = order["payment"]["bolt11"]
        result = pay_through_the_crash(lab, daemon, bolt11["invoice"])

        assert result.status == "SUCCEEDED", result
        assert result.value_sat == int(bolt11["order_total_sat"])
        done = client.request("lsps1.get_order", {"order_id": order["order_id"]})
    assert done["order_state"] == "COMPLETED" and done["payment"]["bolt11"]["state"] == "PAID"
    lab.mine(1)
    chans = wait_for(
        lambda: channels_with(lab, "lsp", "client"), what="the ordered channel to open", timeout_s="CHANNEL_OPEN"
    )
    assert [c.capacity_sat for c in chans] == [500_000], chans  # one channel, the one ordered
    assert chans[0].channel_point == done["channel"]["funding_outpoint"]
    assert_reconciled(lab, daemon)


def test_lsps1_order_killed_before_its_refund_refunds_after_restart(
    lab: LightningTestHarness, daemon: LspsDaemon
) -> None:
    armed(lab, daemon, "lsps1.refund", node="client2")
    node = lab.node("client2")
    payer_before = lab.node("payer").channel_with(lab.node("lsp")).local_balance_sat
    # The open is refused by the client (before the kill, and again after the restart).
    lab.expect_log_errors("this client does not accept channels", "unable to cancel reservation")
    with LspsClient(node, lab.node("lsp").pubkey, accept_channels=False) as client:  # refuses every channel
        order = client.request("lsps1.create_order", ORDER)
        result = pay_through_the_crash(lab, daemon, order["payment"]["bolt11"]["invoice"])
        assert result.status == "FAILED", result
        done = client.request("lsps1.get_order", {"order_id": order["order_id"]})
    assert done["order_state"] == "FAILED" and done["payment"]["bolt11"]["state"] == "REFUNDED"
    assert channels_with(lab, "lsp", "client2") == []
    lab.node("payer").wait_no_pending_htlcs()
    assert lab.node("payer").channel_with(lab.node("lsp")).local_balance_sat == payer_before  # nothing taken
    assert_reconciled(lab, daemon)


def test_jit_scid_still_routes_after_the_lsps_lnd_restarts(lab: LightningTestHarness, daemon: LspsDaemon) -> None:
    """A payment through a bought JIT SCID after the LSP's LND restarted (its channel past 6
    confirmations) still reaches the client; and when LND lacks the alias (deleted under the
    daemon), the daemon adds it back at its next (re)connection (``restore_aliases``), so the JIT
    SCID routes again."""
    daemon.start()
    lab.node("client").connect(lab.node("lsp"))
    with LspsClient(lab.node("client"), lab.node("lsp").pubkey) as client:
        params = client.get_info()["opening_fee_params_menu"][0]
        first = client.jit_invoice(params, amount_msat=30_000_000, mpp=True)
        assert lab.node("payer").pay_invoice(first.payment_request, fee_limit_sat=0, timeout_s=60).succeeded
        assert client.last_buy is not None
        jit_scid = scid_from_str(client.last_buy["jit_channel_scid"])
        lab.mine(6)  # the zero-conf channel confirmed and buried
        opened = channels_with(lab, "lsp", "client")
        assert len(opened) == 1

        lab.expect_log_errors(*LND_RESTART, *RECONNECT)
        checks = daemon.log_text().count("JIT SCID aliases:")
        lab.restart_node("lsp")
        wait_for(
            lambda: daemon.log_text().count("JIT SCID aliases:") > checks,
            what="the daemon to check the JIT SCID aliases after LND's restart",
            timeout_s=60,
            describe=daemon.log_tail,
        )
        # Measured on LND v0.21.3: it kept the alias across the restart (in its alias bucket).
        base = next(b for b, aliases in lab.node("lsp").ln.list_aliases().items() if jit_scid in aliases)
        lab.node("lsp").wait_can_send_over(opened[0].channel_point)
        second = client.jit_invoice(params, amount_msat=7_000_000, bought=client.last_buy)
        paid = lab.node("payer").pay_invoice(second.payment_request, fee_limit_sat=0, timeout_s=60)
        assert paid.status == "SUCCEEDED", paid.failure_reason
        assert second.received_msat == 7_000_000  # a plain forward over the open channel: no fee again

        # An LND that lost it (the alias deleted under the daemon): the daemon's next (re)connection
        # adds it back, and the JIT SCID routes again.
        lab.node("lsp").router.delete_alias(base, jit_scid)
        assert not any(jit_scid in a for a in lab.node("lsp").ln.list_aliases().values())
        daemon.stop()
        daemon.start()
        wait_for(
            lambda: "JIT SCID aliases: 1 of 1 were missing in LND and re-added" in daemon.log_text(),
            what="the daemon to re-add the missing alias", timeout_s=60, describe=daemon.log_tail,
        )
        assert jit_scid in lab.node("lsp").ln.list_aliases()[base]
        third = client.jit_invoice(params, amount_msat=5_000_000, bought=client.last_buy)
        paid = lab.node("payer").pay_invoice(third.payment_request, fee_limit_sat=0, timeout_s=60)
        assert paid.status == "SUCCEEDED", paid.failure_reason
        assert third.received_msat == 5_000_000
    assert [c.channel_point for c in channels_with(lab, "lsp", "client")] == [opened[0].channel_point]
    assert_reconciled(lab, daemon)
