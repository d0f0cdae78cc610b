"""The LSP's own router on a live regtest mesh (topologies/mpp6.yaml).

The executor runs in-process with the LSP's async LND client pointed at the payer node,
exactly as the LSP runs it. Every test starts from the network's initial balances: after
each one, ``dest`` sends back what arrived over the channels it arrived on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.routing_live import client_for, dest_balances, mcf_row, pay_lnd, restore, settle_all
from harness.harness import LightningTestHarness
from lsp.db import migrate
from lsp.db.base import make_engine, make_sessionmaker
from lsp.routing.executor import ExecutionResult, McfExecutor, route_proto
from lsp.routing.live import LiveGraph
from lsp.routing.plan import PaymentPart

pytestmark = pytest.mark.topology("mpp6", shared=True)

AMOUNT_SAT = 700_000
FEE_CAP_SAT = 2_000
_BASELINES: dict[str, dict[int, int]] = {}
EXPECTED_ERROR = "insufficient bandwidth to route htlc"


@pytest.fixture
def baseline(lab: LightningTestHarness) -> Iterator[dict[int, int]]:
    """The network's initial balances into dest, restored after the test."""
    settle_all(lab)
    base = _BASELINES.setdefault(str(lab.lab_dir), dest_balances(lab))
    yield base
    settle_all(lab)
    asyncio.run(restore(lab, base))
    assert dest_balances(lab) == base
    expected_only(lab)


def expected_only(lab: LightningTestHarness) -> None:
    """Routers log a part they cannot forward at [ERR] ("insufficient bandwidth"): here that is
    the scenario, not a fault. Anything else stays an error for the lab's invariant check."""
    unexpected = [line for line in lab.new_error_lines() if EXPECTED_ERROR not in line]
    lab.mark_logs()
    assert not unexpected, unexpected


def spendable_toward_dest(lab: LightningTestHarness) -> dict[str, int]:
    dest = lab.node("dest").pubkey
    out = {}
    for r in ("r1", "r2", "r3", "r4"):
        ch = next(c for c in lab.node(r).list_channels() if c.remote_pubkey == dest)
        out[r] = ch.local_balance_sat
    return out


def test_our_routes_are_the_routes_lnd_builds(lab: LightningTestHarness) -> None:
    """route_proto (amounts, fees, timelocks, MPP record) agrees with LND's own BuildRoute."""

    async def main() -> None:
        async with client_for(lab.node("payer")) as lnd:
            live = LiveGraph(lnd)
            await live.load()
            r2, dest = lab.node("r2").pubkey, lab.node("dest").pubkey
            first = next(ch for ch in live.channels.values() if ch.source == live.self_node and ch.dest == r2)
            second = next(ch for ch in live.channels.values() if ch.source == r2 and ch.dest == dest)
            part = PaymentPart.build([first, second], 123_456_789, 1.0)
            height = await lnd.block_height()
            addr = bytes(range(32))
            ours = route_proto(lnd.pb, part, height=height, final_cltv=40, payment_addr=addr, total_msat=500_000_000)
            theirs = await lnd.build_route(
                123_456_789, [r2, dest], final_cltv_delta=40, outgoing_chan_id=int(first.scid), payment_addr=addr
            )
        assert ours.total_amt_msat == theirs.total_amt_msat
        assert ours.total_fees_msat == theirs.total_fees_msat == 1_000 + 123_456_789 * 100 // 1_000_000
        assert [h.chan_id for h in ours.hops] == [h.chan_id for h in theirs.hops]
        assert [h.amt_to_forward_msat for h in ours.hops] == [h.amt_to_forward_msat for h in theirs.hops]
        assert [h.fee_msat for h in ours.hops] == [h.fee_msat for h in theirs.hops]
        # We pad the final CLTV by 3 blocks (as SendPaymentV2 does); BuildRoute does not.
        assert [h.expiry - 3 for h in ours.hops] == [h.expiry for h in theirs.hops]
        assert ours.total_time_lock - 3 == theirs.total_time_lock
        assert ours.hops[-1].mpp_record.total_amt_msat == 500_000_000
        assert ours.hops[-1].mpp_record.payment_addr == addr

    asyncio.run(main())


def test_mcf_pays_more_than_any_single_path_can_carry(lab: LightningTestHarness, baseline: dict[int, int]) -> None:
    spendable = spendable_toward_dest(lab)
    assert max(spendable.values()) < AMOUNT_SAT  # the premise: no single path is enough
    invoice = lab.node("dest").add_invoice(AMOUNT_SAT)

    async def main() -> ExecutionResult:
        async with client_for(lab.node("payer")) as lnd:
            live = LiveGraph(lnd)
            await live.load()
            return await McfExecutor(live).pay(invoice.payment_request, fee_limit_msat=FEE_CAP_SAT * 1000, timeout_s=60)

    res = asyncio.run(main())
    assert res.status == "succeeded", res.as_dict()
    settled = lab.node("dest").ln.lookup_invoice(invoice.payment_hash)
    assert settled.amt_paid_sat == AMOUNT_SAT
    ok = [p for p in res.parts if p.status == "succeeded"]
    assert len({p.scids[-1] for p in ok}) >= 2  # arrived over at least two channels into dest
    assert sum(p.amount_msat for p in ok) == AMOUNT_SAT * 1000
    assert 0 < res.fee_msat <= FEE_CAP_SAT * 1000
    assert res.preimage and len(res.preimage) == 64


def test_lnd_and_mcf_compared_from_the_same_balances(lab: LightningTestHarness, baseline: dict[int, int]) -> None:
    """Both strategies pay the same amount from the same balances; both are recorded.

    Both start ignorant (LND's mission control is reset, the MCF model is new). Not required:
    that LND fails. Required: MCF delivers within the fee cap, pays no more fees than LND and
    sends no more failed HTLCs."""
    rows = []

    async def main() -> None:
        inv = lab.node("dest").add_invoice(AMOUNT_SAT, memo="lnd")
        rows.append(await pay_lnd(lab, inv.payment_request, fee_limit_sat=FEE_CAP_SAT, fresh=True))
        settle_all(lab)
        await restore(lab, baseline)
        async with client_for(lab.node("payer")) as lnd:
            live = LiveGraph(lnd)
            await live.load()
            inv = lab.node("dest").add_invoice(AMOUNT_SAT, memo="mcf")
            res = await McfExecutor(live).pay(inv.payment_request, fee_limit_msat=FEE_CAP_SAT * 1000, timeout_s=60)
            rows.append(mcf_row(res))

    asyncio.run(main())
    out = Path(os.environ.get("LAB_RESULTS_DIR", lab.lab_dir)) / "routing-live-compare.json"
    out.write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows, indent=2))
    lnd_row, mcf = rows
    assert mcf["success"], mcf
    assert mcf["fee_msat"] <= FEE_CAP_SAT * 1000
    if lnd_row["success"]:
        assert mcf["fee_msat"] <= lnd_row["fee_msat"]
    assert mcf["htlcs_failed"] <= lnd_row["htlcs_failed"]


def test_the_model_learns_and_keeps_it_across_a_restart(
    lab: LightningTestHarness, baseline: dict[int, int], tmp_path: Path
) -> None:
    """Same payment twice, balances restored in between, LSP restarted in between: the second
    run avoids the drained channels it learned about and needs fewer attempts."""
    url = f"sqlite:///{tmp_path / 'lsp.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    drained = {lab.node("r1").pubkey, lab.node("r4").pubkey}

    async def pay_once() -> tuple[ExecutionResult, LiveGraph]:
        async with client_for(lab.node("payer")) as lnd:
            live = LiveGraph(lnd, sessions=sessions)  # a fresh process: only the DB remembers
            await live.load()
            inv = lab.node("dest").add_invoice(AMOUNT_SAT)
            res = await McfExecutor(live).pay(inv.payment_request, fee_limit_msat=FEE_CAP_SAT * 1000, timeout_s=60)
            return res, live

    try:
        first, _ = asyncio.run(pay_once())
        settle_all(lab)
        asyncio.run(restore(lab, baseline))
        second, live2 = asyncio.run(pay_once())
    finally:
        engine.dispose()
    assert first.status == second.status == "succeeded"
    assert first.attempts >= 2
    assert any(p.status == "failed" and p.hops[0] in drained for p in first.parts)
    assert second.attempts == 1 < first.attempts
    assert all(p.status == "succeeded" for p in second.parts)
    assert not any(p.hops[0] in drained for p in second.parts)
    # What survived the restart: upper bounds on the drained channels into dest.
    bounded = {src for (_scid, src), k in live2.liquidity.knowledge.items() if k.upper_msat is not None}
    assert drained <= bounded


def test_graph_stream_applies_a_policy_change(lab: LightningTestHarness) -> None:
    r1 = lab.node("r1")
    chan = next(c for c in r1.list_channels() if c.remote_pubkey == lab.node("payer").pubkey)

    async def main() -> int:
        async with client_for(lab.node("payer")) as lnd:
            live = LiveGraph(lnd)
            await live.load()
            key = (str(chan.chan_id), r1.pubkey)
            before = live.channels[key].fee_rate_ppm
            live.start()
            try:
                r1.ln.update_policy(chan.channel_point, base_fee_msat=1000, fee_rate_ppm=before + 7, cltv_delta=80)
                deadline = asyncio.get_running_loop().time() + 60 * float(os.environ.get("LAB_TIMEOUT_FACTOR", "1"))
                while live.channels[key].fee_rate_ppm != before + 7:
                    assert asyncio.get_running_loop().time() < deadline, "policy update never arrived"
                    live.changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(live.changed.wait(), timeout=1.0)
                assert live.graph().channels[live.graph().edge_index(*key)].fee_rate_ppm == before + 7
                return before
            finally:
                await live.close()

    before = asyncio.run(main())
    r1.ln.update_policy(chan.channel_point, base_fee_msat=1000, fee_rate_ppm=before, cltv_delta=80)


def test_rebalance_moves_liquidity_between_our_channels(lab: LightningTestHarness, baseline: dict[int, int]) -> None:
    """The channel manager's rebalancing: payer -> r2 -> dest -> r3 -> payer, planned by MCF."""
    payer = lab.node("payer")
    by_peer = {c.remote_pubkey: c for c in payer.list_channels()}
    out_ch, in_ch = by_peer[lab.node("r2").pubkey], by_peer[lab.node("r3").pubkey]
    amount = 100_000

    async def main() -> ExecutionResult:
        async with client_for(payer) as lnd:
            live = LiveGraph(lnd)
            await live.load()
            return await McfExecutor(live).rebalance(
                str(out_ch.chan_id), str(in_ch.chan_id), amount, fee_limit_msat=100_000, timeout_s=60
            )

    res = asyncio.run(main())
    assert res.status == "succeeded", res.as_dict()
    payer.wait_no_pending_htlcs()
    after = {c.remote_pubkey: c for c in payer.list_channels()}
    moved_out = out_ch.local_balance_sat - after[out_ch.remote_pubkey].local_balance_sat
    moved_in = after[in_ch.remote_pubkey].local_balance_sat - in_ch.local_balance_sat
    assert moved_in == amount
    assert moved_out == amount + res.fee_msat // 1000 or moved_out == amount + -(-res.fee_msat // 1000)
    assert all(p.scids[0] == str(out_ch.chan_id) and p.scids[-1] == str(in_ch.chan_id) for p in res.parts)
