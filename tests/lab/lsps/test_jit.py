"""JIT channels (LSPS0 transport, LSPS2 and the wrapped-invoice mode) against live LND nodes.

One shared ``jit`` network: tests run in file order and the first wrapped test
relies on ``client`` having no channel yet. LSPS2 opens a new channel per
buy, so those tests count channels before and after instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.blip52 import opening_fee_msat, scid_from_str
from harness.harness import LightningTestHarness
from harness.lsps_client import LspsClient, LspsRpcError, pay_in_parts
from harness.lsps_lsp import LAB_MENU, LspsRunner
from harness.rpc.lightning import ChannelInfo
from harness.rpc.router import PaymentResult
from harness.wait import wait_for
from lsp.db.base import make_engine, make_sessionmaker
from lsp.lsps.store import HeldHtlc, LspsStore

pytestmark = pytest.mark.topology("jit", shared=True)


def channels_with(lab: LightningTestHarness, a: str, b: str) -> list[ChannelInfo]:
    peer = lab.node(b).pubkey
    return [c for c in lab.node(a).list_channels() if c.remote_pubkey == peer]


def restart_lsps(lab: LightningTestHarness, runner: LspsRunner, **settings: str) -> None:
    """Restart the LSPS service on the same database. Its new HtlcInterceptor stream can reach LND
    before LND has dropped the old one: LND refuses it at ERR ("interceptor already exists", seen
    in CI) and the service connects again a second later (``JitInterceptor.run``). Expected here,
    as at any quick restart by an operator."""
    lab.expect_log_errors("[/routerrpc.Router/HtlcInterceptor]: interceptor already exists")
    runner.restart(**settings)


def forwarded_fee_msat(lab: LightningTestHarness) -> int:
    return sum(int(e.fee_msat) for e in lab.node("lsp").ln.forwarding_history())


def expect_errors(lab: LightningTestHarness, *patterns: str) -> None:
    """The error lines a failure-path test provokes on purpose; anything else still fails it."""
    other = [line for line in lab.new_error_lines() if not any(p in line for p in patterns)]
    assert not other, "unexpected errors logged:\n" + "\n".join(other[:20])
    lab.mark_logs()


@pytest.fixture(autouse=True)
def _fresh_start(lab: LightningTestHarness) -> None:
    """Each test starts unbiased: earlier failure tests teach the payer to avoid lsp->client, and
    earlier opens leave the LSP's change unconfirmed (a new open needs a confirmed coin)."""
    payer = lab.node("payer")
    payer.router.reset_mission_control()
    if lab.chain.mempool():
        lab.mine(1)


# What LND logs when a JIT HTLC is failed back on purpose (the payer retries the route once more).
# What peers log while the LSP's LND is down and comes back.
LND_RESTART = (
    "dead epoch stream in BestBlockTracker",
    "Unable to retrieve advertised address for peer",
    "funding manager shutting down",  # zero-conf channels waiting for their 6 confirmations
    "in the process of starting up",  # our streams reconnecting before LND is ready
    "unable to validate channel update announcement",
)
FAILED_BACK = ("UnknownNextPeer", "Unable to retrieve channel by id: edge not found", "unable to cancel reservation")


@pytest.fixture
def lsp(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspsRunner]:
    with LspsRunner(lab.node("lsp"), tmp_path / "lsps.db", probe=lab.node("payer")) as runner:
        yield runner


@pytest.fixture
def client(lab: LightningTestHarness, lsp: LspsRunner) -> Iterator[LspsClient]:
    lab.node("client").connect(lab.node("lsp"))
    with LspsClient(lab.node("client"), lab.node("lsp").pubkey) as c:
        yield c
    # Confirm zero-conf funding (and the LSP's change) so the next test starts on a quiet chain.
    if lab.chain.mempool():
        lab.mine(1)


def test_lsps0_list_protocols_and_jsonrpc_errors(client: LspsClient) -> None:
    assert client.list_protocols() == [1, 2, 5]  # LSPS5 over peer messages only
    assert client.raw_request(b'{"jsonrpc": "2.0", "id": "x", ', "None")["error"]["code"] == -32700
    with pytest.raises(LspsRpcError) as unknown:
        client.request("lsps9.nothing")
    assert unknown.value.code == -32601
    with pytest.raises(LspsRpcError) as extra:
        client.request("lsps2.get_info", {"token": None, "colour": "red"})
    assert extra.value.code == -32602
    assert extra.value.data["unrecognized"] == ["colour"]
    body = json.dumps({"jsonrpc": "2.0", "id": "pos", "method": "lsps2.get_info", "params": []}).encode()
    assert client.raw_request(body, "pos")["error"]["code"] == -32602


def test_wrapped_first_payment_opens_channel_and_fee_matches_formula(
    lab: LightningTestHarness, client: LspsClient
) -> None:
    assert channels_with(lab, "client", "lsp") == []
    params = client.get_info()["opening_fee_params_menu"][0]
    amount_msat = 50_000_123
    wrapped = client.wrapped_invoice(params, amount_msat=amount_msat)

    paid = lab.node("payer").pay_invoice(wrapped["invoice"], fee_limit_sat=0, timeout_s=60)

    assert paid.status == "SUCCEEDED"
    size = int(wrapped["payment_size_msat"])
    fee = opening_fee_msat(size, int(params["min_fee_msat"]), params["proportional"])
    assert size - fee == amount_msat
    assert int(wrapped["opening_fee_msat"]) == fee
    assert int(lab.node("client").ln.lookup_invoice(wrapped["payment_hash"]).amt_paid_msat) == amount_msat
    assert int(lab.node("lsp").ln.lookup_invoice(wrapped["payment_hash"]).amt_paid_msat) == size
    assert paid.fee_msat == 0
    chans = channels_with(lab, "client", "lsp")
    assert len(chans) == 1 and chans[0].private


def test_wrapped_second_payment_uses_existing_channel(lab: LightningTestHarness, client: LspsClient) -> None:
    params = client.get_info()["opening_fee_params_menu"][0]
    if not channels_with(lab, "client", "lsp"):
        # Alone on its xdist worker (its lab is shared only with the tests that landed there):
        # the first wrapped payment opens the channel this test needs.
        first = client.wrapped_invoice(params, amount_msat=50_000_000)
        assert lab.node("payer").pay_invoice(first["invoice"], fee_limit_sat=0, timeout_s=60).status == "SUCCEEDED"
    before = channels_with(lab, "client", "lsp")
    assert before
    wrapped = client.wrapped_invoice(params, amount_msat=10_000_000)

    paid = lab.node("payer").pay_invoice(wrapped["invoice"], fee_limit_sat=0, timeout_s=60)

    assert paid.status == "SUCCEEDED"
    assert len(channels_with(lab, "client", "lsp")) == len(before)
    assert int(lab.node("client").ln.lookup_invoice(wrapped["payment_hash"]).amt_paid_msat) == 10_000_000


def test_lsps2_mpp_payment_opens_exactly_one_channel(lab: LightningTestHarness, client: LspsClient) -> None:
    before = len(channels_with(lab, "client", "lsp"))
    fees_before = forwarded_fee_msat(lab)
    params = client.get_info()["opening_fee_params_menu"][0]
    amount = 60_000_000
    inv = client.jit_invoice(params, amount_msat=amount)

    paid = pay_in_parts(lab.node("payer"), inv.payment_request, shard_msat=25_000_000)

    assert paid.status == "SUCCEEDED", paid.failure_reason
    assert paid.attempts >= 3  # 60k sat in parts of at most 25k sat
    lab.node("payer").wait_no_pending_htlcs()
    lab.node("lsp").wait_no_pending_htlcs()
    fee = opening_fee_msat(amount, int(params["min_fee_msat"]), params["proportional"])
    assert inv.rejected is None
    assert inv.received_msat == amount - fee
    assert sum(inv.fees_msat) == fee
    assert len(channels_with(lab, "client", "lsp")) == before + 1
    wait_for(
        lambda: forwarded_fee_msat(lab) - fees_before == fee,
        what="the LSP's forwarding fees to equal the opening fee",
        timeout_s=30,
    )


def test_lsps2_variable_amount_and_second_payment_through_existing_channel(
    lab: LightningTestHarness, client: LspsClient
) -> None:
    params = client.get_info()["opening_fee_params_menu"][1]
    before = len(channels_with(lab, "client", "lsp"))
    first = client.jit_invoice(params, amount_msat=30_000_000, mpp=False)
    paid = lab.node("payer").router.pay_invoice(first.payment_request, fee_limit_sat=0, timeout_s=60, max_parts=1)
    assert paid.status == "SUCCEEDED", paid.failure_reason
    fee = opening_fee_msat(30_000_000, int(params["min_fee_msat"]), params["proportional"])
    assert first.received_msat == 30_000_000 - fee
    assert len(channels_with(lab, "client", "lsp")) == before + 1

    second = client.jit_invoice(params, amount_msat=7_000_000, bought=client.last_buy)
    again = lab.node("payer").pay_invoice(second.payment_request, fee_limit_sat=0, timeout_s=60)

    assert again.status == "SUCCEEDED", again.failure_reason
    assert second.received_msat == 7_000_000  # no second opening fee
    assert second.fees_msat == [0]
    assert len(channels_with(lab, "client", "lsp")) == before + 1


def test_buy_rejects_tampered_expired_and_too_small(
    lab: LightningTestHarness, lsp: LspsRunner, client: LspsClient
) -> None:
    params = client.get_info()["opening_fee_params_menu"][0]
    tampered = {**params, "min_fee_msat": "1"}
    with pytest.raises(LspsRpcError) as bad:
        client.buy(tampered, 50_000_000)
    assert bad.value.code == 201
    with pytest.raises(LspsRpcError) as small:
        client.buy(params, 1_500_000)  # the 2_000_000 msat minimum fee exceeds it
    assert small.value.code == 202
    with pytest.raises(LspsRpcError) as large:
        client.buy(params, 10**19)
    assert large.value.code == 203

    # An offer whose valid_until has passed (a one-second menu, from a daemon restarted with it).
    restart_lsps(lab, lsp, LSP_LSPS2_MENU=json.dumps([{"min_fee_msat": 1, "proportional": 1, "valid_for_s": 1}]))
    try:
        stale = client.get_info()["opening_fee_params_menu"][0]
        ends = datetime.fromisoformat(stale["valid_until"])
        wait_for(lambda: datetime.now(UTC) > ends, what="the offer's valid_until to pass", timeout_s=10)
        with pytest.raises(LspsRpcError) as expired:
            client.buy(stale, 50_000_000)
        assert expired.value.code == 201
    finally:
        restart_lsps(lab, lsp, LSP_LSPS2_MENU=json.dumps(LAB_MENU))


def held_htlcs(db: Path, jit_scid: str) -> list[HeldHtlc]:
    """What the service recorded for a buy's HTLCs (read from its database)."""
    engine = make_engine(f"sqlite:///{db}")
    try:
        store = LspsStore(make_sessionmaker(engine))
        buy = store.buy_by_scid(scid_from_str(jit_scid))
        assert buy is not None
        return store.htlcs_for(buy.id)
    finally:
        engine.dispose()


def _payer_balance_msat(lab: LightningTestHarness) -> int:
    return int(channels_with(lab, "payer", "lsp")[0].local_balance_sat) * 1000


def test_client_rejecting_the_channel_fails_payment_without_loss(lab: LightningTestHarness, lsp: LspsRunner) -> None:
    lab.node("client2").connect(lab.node("lsp"))
    with LspsClient(lab.node("client2"), lab.node("lsp").pubkey, accept_channels=False) as c:
        params = c.get_info()["opening_fee_params_menu"][0]
        inv = c.jit_invoice(params, amount_msat=20_000_000)
        before = _payer_balance_msat(lab)

        paid = lab.node("payer").pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=30)

        assert paid.status == "FAILED"
        assert c.accepted, "the LSP did try to open a channel"
        # bLIP-52: a failed open releases the held HTLCs with temporary_channel_failure, from the LSP.
        assert paid.failures[0] == ("TEMPORARY_CHANNEL_FAILURE", 1), paid.failures
    assert channels_with(lab, "client2", "lsp") == []
    assert _payer_balance_msat(lab) == before
    expect_errors(lab, "this client does not accept channels", *FAILED_BACK)
    assert lab.chain.mempool() == []  # no funding transaction left behind


def test_lsp_without_onchain_funds_releases_htlcs(
    lab: LightningTestHarness, lsp: LspsRunner, client: LspsClient
) -> None:
    """Every LSP coin is leased away, so the funding transaction cannot be built: the held HTLC
    fails back at once (temporary_channel_failure) and no channel appears."""
    with lab.node("lsp").wallet.leased():
        before = len(channels_with(lab, "client", "lsp"))
        payer_before = _payer_balance_msat(lab)
        inv = client.jit_invoice(client.get_info()["opening_fee_params_menu"][0], amount_msat=20_000_000)
        paid = lab.node("payer").pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=30)
        assert paid.status == "FAILED"
        assert paid.failures[0] == ("TEMPORARY_CHANNEL_FAILURE", 1), paid.failures
        assert len(channels_with(lab, "client", "lsp")) == before
        assert _payer_balance_msat(lab) == payer_before
        expect_errors(
            lab, "unable to open channel", "[/lnrpc.Lightning/OpenChannel]", "not enough witness outputs", *FAILED_BACK
        )


def test_lsp_restart_with_htlcs_held_fails_them_per_spec(lab: LightningTestHarness, tmp_path: Path) -> None:
    """Parts for a buy of 2x the invoice never add up: held across an LSP restart (LND replays
    them), then failed with temporary_channel_failure at the MPP timeout; nothing is lost."""
    lab.node("client").connect(lab.node("lsp"))
    with (
        LspsRunner(lab.node("lsp"), tmp_path / "restart.db", mpp_timeout_s=10) as runner,
        LspsClient(lab.node("client"), lab.node("lsp").pubkey) as c,
    ):
        before_chans = len(channels_with(lab, "client", "lsp"))
        before = _payer_balance_msat(lab)
        inv = c.jit_invoice(
            c.get_info()["opening_fee_params_menu"][0], amount_msat=20_000_000, payment_size_msat=40_000_000
        )
        result: dict[str, object] = {}
        t = threading.Thread(
            target=lambda: result.update(
                paid=lab.node("payer").pay_invoice(
                    inv.payment_request, fee_limit_sat=0, timeout_s=60, wait_settled=False
                )
            )
        )
        t.start()
        wait_for(
            lambda: any(ch.pending_htlcs for ch in channels_with(lab, "lsp", "payer")),
            what="the LSP to hold the HTLC",
            timeout_s=30,
        )
        restart_lsps(lab, runner)
        t.join(timeout=120)
        paid = result["paid"]
        assert paid.status == "FAILED"  # type: ignore[attr-defined]
        # The parts never added up: failed at the MPP timeout with temporary_channel_failure.
        assert ("TEMPORARY_CHANNEL_FAILURE", 1) in paid.failures  # type: ignore[attr-defined]
    assert len(channels_with(lab, "client", "lsp")) == before_chans
    wait_for(lambda: _payer_balance_msat(lab) == before, what="the payer's balance to be whole again", timeout_s=30)
    expect_errors(lab, *FAILED_BACK)


def test_whole_lsp_restart_with_htlc_held_replays_and_fails_it_per_spec(
    lab: LightningTestHarness, tmp_path: Path
) -> None:
    """The whole LSP (its LND and the LSPS service) restarts while a JIT HTLC is held: with
    --requireinterceptor LND keeps the HTLC and replays it to the new service, which holds it
    until the MPP timeout and fails it with temporary_channel_failure. The payer's funds come
    back and no channel is opened.

    The service is fully closed before LND is started again: the harness starts LND with a
    fork, and grpc's asyncio poller must not be running in the forking process."""
    node = lab.node("lsp")
    db = tmp_path / "lsp-restart.db"
    lab.node("client").connect(node)
    with LspsClient(lab.node("client"), node.pubkey) as c:
        runner = LspsRunner(node, db, mpp_timeout_s=15).start()
        before_chans = len(channels_with(lab, "client", "lsp"))
        before = _payer_balance_msat(lab)
        inv = c.jit_invoice(
            c.get_info()["opening_fee_params_menu"][0], amount_msat=20_000_000, payment_size_msat=40_000_000
        )
        result: dict[str, PaymentResult] = {}
        t = threading.Thread(
            target=lambda: result.update(
                paid=lab.node("payer").pay_invoice(
                    inv.payment_request, fee_limit_sat=0, timeout_s=90, wait_settled=False
                )
            )
        )
        t.start()
        wait_for(
            lambda: any(ch.pending_htlcs for ch in channels_with(lab, "lsp", "payer")),
            what="the LSP to hold the HTLC",
            timeout_s=30,
        )
        runner.close()
        node.stop()
        node.start()
        node.wait_ready(lab.chain.tip())
        with LspsRunner(node, db, mpp_timeout_s=15):
            t.join(timeout=180)
        assert result["paid"].status == "FAILED"
        assert c.last_buy is not None
        parts = held_htlcs(db, c.last_buy["jit_channel_scid"])
    # The replayed HTLC was recognised by circuit key (one row, not two) and failed at the timeout.
    assert parts and all(p.state == "FAILED" and p.failure == "temporary_channel_failure" for p in parts)
    lab.node("client").connect(node)
    assert len(channels_with(lab, "client", "lsp")) == before_chans
    wait_for(lambda: _payer_balance_msat(lab) == before, what="the payer's balance to be whole again", timeout_s=60)
    expect_errors(lab, *FAILED_BACK, *LND_RESTART)


def test_service_restart_with_part_held_then_rest_arrives_opens_one_channel(
    lab: LightningTestHarness, tmp_path: Path
) -> None:
    """The service restarts while part of a bought payment size is held; after LND replays it,
    the rest arrives and the channel opens once, with the fee taken once. (The two parts are two
    invoices of the same buy, so the test controls when each arrives; the interceptor groups by
    buy, as LSPS2 fixed-amount mode sums every HTLC for the JIT SCID.)"""
    lab.node("client").connect(lab.node("lsp"))
    with (
        LspsRunner(lab.node("lsp"), tmp_path / "resume.db") as runner,
        LspsClient(lab.node("client"), lab.node("lsp").pubkey) as c,
    ):
        params = c.get_info()["opening_fee_params_menu"][0]
        before = len(channels_with(lab, "client", "lsp"))
        first = c.jit_invoice(params, amount_msat=20_000_000, payment_size_msat=40_000_000)
        second = c.jit_invoice(params, amount_msat=20_000_000, bought=c.last_buy)
        results: dict[str, PaymentResult] = {}
        t = threading.Thread(
            target=lambda: results.update(
                first=lab.node("payer").pay_invoice(first.payment_request, fee_limit_sat=0, timeout_s=60)
            )
        )
        t.start()
        wait_for(
            lambda: any(ch.pending_htlcs for ch in channels_with(lab, "lsp", "payer")),
            what="the LSP to hold the first part",
            timeout_s=30,
        )
        restart_lsps(lab, runner)
        paid_second = lab.node("payer").pay_invoice(second.payment_request, fee_limit_sat=0, timeout_s=60)
        t.join(timeout=90)
        assert paid_second.status == "SUCCEEDED" and results["first"].status == "SUCCEEDED"
        fee = opening_fee_msat(40_000_000, int(params["min_fee_msat"]), params["proportional"])
        assert first.received_msat + second.received_msat == 40_000_000 - fee
        assert sum(first.fees_msat) + sum(second.fees_msat) == fee
    assert len(channels_with(lab, "client", "lsp")) == before + 1


def test_a_jit_scid_nobody_bought_fails_with_unknown_next_peer(lab: LightningTestHarness, client: LspsClient) -> None:
    """bLIP-52: an HTLC for a SCID that is not a live buy is failed with unknown_next_peer (the LSP
    resumes it onto the unmapped SCID, so LND's switch produces exactly that code)."""
    params = client.get_info()["opening_fee_params_menu"][0]
    forged = {"jit_channel_scid": "16000321x7x1", "lsp_cltv_expiry_delta": 144, "client_trusts_lsp": False}
    inv = client.jit_invoice(params, amount_msat=5_000_000, bought=forged)
    before = _payer_balance_msat(lab)

    paid = lab.node("payer").pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=30)

    assert paid.status == "FAILED"
    assert paid.failures and all(f == ("UNKNOWN_NEXT_PEER", 1) for f in paid.failures), paid.failures
    assert _payer_balance_msat(lab) == before
    expect_errors(lab, *FAILED_BACK)
