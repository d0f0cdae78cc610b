"""Pure parts of the live router: LND route construction, learning from HTLC results, graph
updates, settlement, persistence, rebalance planning. LND's real protobuf messages, no node
(``LiveGraph(None)``: these paths never call LND)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lncore import stubs
from lsp.db import migrate
from lsp.db.base import make_engine, make_sessionmaker
from lsp.routing.executor import ExecutionResult, McfExecutor, PartRecord, route_proto
from lsp.routing.graph import Channel, ChannelGraph
from lsp.routing.liquidity import LiquidityModel, Prior, settle
from lsp.routing.live import LiveGraph
from lsp.routing.plan import NoRouteError, PaymentPart
from lsp.routing.rebalance import plan_rebalance

pytestmark = pytest.mark.unit

S_A = Channel("11", "S", "A", 1_000_000, base_fee_msat=5000, fee_rate_ppm=5000, cltv_delta=99)  # ours: no fee
A_B = Channel("12", "A", "B", 2_000_000, base_fee_msat=1000, fee_rate_ppm=100, cltv_delta=40)
B_T = Channel("13", "B", "T", 3_000_000, base_fee_msat=0, fee_rate_ppm=2000, cltv_delta=80)
B_A = Channel("12", "B", "A", 2_000_000)


@pytest.fixture(scope="module")
def pb() -> Any:
    return stubs.load()


def live_graph(channels: list[Channel], **kw: Any) -> LiveGraph:
    live = LiveGraph(None, **kw)  # type: ignore[arg-type]
    live.self_node = "S"
    live.channels = {c.key: c for c in channels}
    return live


def test_route_proto_follows_lnd_hop_conventions(pb: Any) -> None:
    part = PaymentPart.build([S_A, A_B, B_T], 100_000_000, 0.5)
    route = route_proto(pb, part, height=1000, final_cltv=40, payment_addr=b"\x01" * 32, total_msat=300_000_000)
    # Amounts: see test_routing_fees (100_211_020 leaves us, 100_200_000 reaches B).
    assert route.total_amt_msat == 100_211_020
    assert route.total_fees_msat == 211_020
    assert [h.chan_id for h in route.hops] == [11, 12, 13]
    assert [h.pub_key for h in route.hops] == ["A", "B", "T"]
    # hops[i] tells node i what to send on: A forwards 100_200_000 (fee 11_020), B 100_000_000.
    assert [h.amt_to_forward_msat for h in route.hops] == [100_200_000, 100_000_000, 100_000_000]
    assert [h.fee_msat for h in route.hops] == [11_020, 200_000, 0]
    # Timelocks: T gets height + 40 + 3 padding = 1043; B needs +80 on its way in, A +40.
    assert [h.expiry for h in route.hops] == [1123, 1043, 1043]
    assert route.total_time_lock == 1163
    assert route.hops[-1].mpp_record.total_amt_msat == 300_000_000
    assert route.hops[-1].mpp_record.payment_addr == b"\x01" * 32
    assert not route.hops[0].HasField("mpp_record")


def _done(result: Any) -> asyncio.Future[Any]:
    loop = asyncio.new_event_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    fut.set_result(result)
    loop.close()
    return fut


def _attempt(pb: Any, code: str | None, index: int = 0) -> Any:
    if code is None:
        return pb.ln.HTLCAttempt(status=pb.ln.HTLCAttempt.SUCCEEDED, preimage=b"\x07" * 32)
    failure = pb.ln.Failure(code=pb.ln.Failure.FailureCode.Value(code), failure_source_index=index)
    return pb.ln.HTLCAttempt(status=pb.ln.HTLCAttempt.FAILED, failure=failure)


def _rec(part: PaymentPart) -> PartRecord:
    return PartRecord(1, part.amount_msat, part.fee_msat, part.probability, [], [])


def test_liquidity_failure_bounds_the_failing_channel_and_lower_bounds_the_ones_before(pb: Any) -> None:
    live = live_graph([S_A, A_B, B_T, B_A], clock=lambda: 100.0)
    ex = McfExecutor(live)
    part = PaymentPart.build([S_A, A_B, B_T], 100_000_000, 0.5)
    ex._inflight(part, +1)
    # Node 2 (B) could not forward over B->T.
    rec = _rec(part)
    outcome, preimage = ex._resolve(_done(_attempt(pb, "TEMPORARY_CHANNEL_FAILURE", 2)), part, rec, pb)  # type: ignore[arg-type]
    assert (outcome, preimage) == ("failed", None)
    assert (rec.failure_code, rec.failure_index) == ("TEMPORARY_CHANNEL_FAILURE", 2)
    k = live.liquidity.knowledge
    assert k[B_T.key].upper_msat == 100_000_000  # X < what it had to carry
    assert k[A_B.key].lower_msat == 100_200_000  # A->B carried its share
    assert k[B_A.key].upper_msat == 2_000_000_000 - 100_200_000 + 1  # the reverse is bounded too
    assert all(v.inflight_msat == 0 for v in k.values())  # the failed HTLC no longer counts


def test_other_errors_make_the_channel_unusable_and_final_errors_are_fatal(pb: Any) -> None:
    live = live_graph([S_A, A_B, B_T], clock=lambda: 100.0)
    ex = McfExecutor(live)
    part = PaymentPart.build([S_A, A_B, B_T], 1_000_000, 0.5)
    ex._inflight(part, +1)
    assert ex._resolve(_done(_attempt(pb, "UNKNOWN_NEXT_PEER", 1)), part, _rec(part), pb)[0] == "failed"  # type: ignore[arg-type]
    assert live.liquidity.knowledge[A_B.key].upper_msat == 1
    ex._inflight(part, +1)
    fatal = _attempt(pb, "INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS", 3)
    assert ex._resolve(_done(fatal), part, _rec(part), pb)[0] == "fatal"  # type: ignore[arg-type]
    ex._inflight(part, +1)
    assert ex._resolve(_done(_attempt(pb, "MPP_TIMEOUT", 3)), part, _rec(part), pb)[0] == "failed"  # type: ignore[arg-type]


def test_success_stays_in_flight_until_settled_then_bounds_shift(pb: Any) -> None:
    live = live_graph([S_A, A_B, B_T, B_A], clock=lambda: 100.0)
    ex = McfExecutor(live)
    part = PaymentPart.build([S_A, A_B, B_T], 100_000_000, 0.5)
    ex._inflight(part, +1)
    outcome, preimage = ex._resolve(_done(_attempt(pb, None)), part, _rec(part), pb)  # type: ignore[arg-type]
    assert (outcome, preimage) == ("succeeded", "07" * 32)
    assert live.liquidity.knowledge[A_B.key].inflight_msat == 100_200_000
    ex._settle([part])
    k = live.liquidity.knowledge
    # We knew A->B held >= 100.2k sat; after carrying exactly that, we know only >= 0.
    assert k[A_B.key].lower_msat == 0 and k[A_B.key].inflight_msat == 0
    assert k[B_A.key].lower_msat == 100_200_000  # it now sits on B's side


def test_settle_moves_both_bounds_and_the_reverse() -> None:
    m = LiquidityModel(Prior.UNIFORM, clock=lambda: 0.0)
    m.learn_failure(A_B, 1_500_000_000, B_A)  # A->B < 1.5M sat, so B->A > 0.5M sat
    m.learn_success(A_B, 600_000_000, B_A)  # A->B >= 0.6M sat, so B->A <= 1.4M sat
    settle(m, A_B, 500_000_000, B_A)
    k = m.knowledge[A_B.key]
    assert (k.lower_msat, k.upper_msat) == (100_000_000, 1_000_000_000)
    r = m.knowledge[B_A.key]
    assert (r.lower_msat, r.upper_msat) == (1_000_000_001, 1_900_000_001)
    settle(m, B_A, 1_500_000_000, A_B)  # B sends it all back: the reverse bound reaches capacity
    assert m.knowledge[A_B.key].upper_msat is None


def test_topology_updates_change_policies_and_drop_closed_channels(pb: Any) -> None:
    live = live_graph([S_A, A_B, B_T, B_A])
    live.liquidity.learn_failure(B_T, 5)
    graph_before = live.graph()
    policy = pb.ln.RoutingPolicy(time_lock_delta=144, min_htlc=1000, fee_base_msat=7, fee_rate_milli_msat=321)
    upd = pb.ln.GraphTopologyUpdate(
        channel_updates=[
            pb.ln.ChannelEdgeUpdate(
                chan_id=12, capacity=2_000_000, routing_policy=policy, advertising_node="A", connecting_node="B"
            )
        ],
        closed_chans=[pb.ln.ClosedChannelUpdate(chan_id=13, capacity=3_000_000)],
    )
    assert live.apply_update(upd) == 2
    assert live.changed.is_set()
    ch = live.channels[("12", "A")]
    assert (ch.fee_rate_ppm, ch.base_fee_msat, ch.cltv_delta, ch.htlc_min_msat) == (321, 7, 144, 1000)
    assert ("13", "B") not in live.channels and B_T.key not in live.liquidity.knowledge
    g = live.graph()
    assert g is not graph_before and len(g) == 3
    assert live.apply_update(upd) == 0  # the same update twice changes nothing


def test_learned_bounds_survive_a_restart_through_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lsp.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        sessions = make_sessionmaker(engine)
        first = live_graph([S_A, A_B, B_T, B_A], sessions=sessions, clock=lambda: 50.0)
        first.liquidity.learn_failure(B_T, 70_000_000)
        first.liquidity.learn_success(A_B, 90_000_000, B_A)
        first.liquidity.add_inflight(S_A, 5)  # in-flight is LND's truth after a restart: not stored
        assert first.save_model() == 3
        second = live_graph([S_A, A_B, B_T, B_A], sessions=sessions, clock=lambda: 50.0)
        assert second.load_model() == 3
        assert second.liquidity.knowledge[B_T.key].upper_msat == 70_000_000
        assert second.liquidity.knowledge[A_B.key].lower_msat == 90_000_000
        assert S_A.key not in second.liquidity.knowledge
        assert second.liquidity.probability(B_T, 70_000_000) == 0.0
        # A reload never overwrites what the running process learned since.
        second.liquidity.learn_failure(A_B, 95_000_001)
        second.load_model()
        assert second.liquidity.knowledge[A_B.key].upper_msat == 95_000_001
    finally:
        engine.dispose()


def test_rebalance_plans_a_circle_from_our_out_channel_to_our_in_channel() -> None:
    chans = [
        Channel("1", "S", "A", 5_000_000),
        Channel("2", "A", "C", 1_000_000, base_fee_msat=1000, fee_rate_ppm=100),
        Channel("3", "C", "B", 1_000_000, base_fee_msat=1000, fee_rate_ppm=100),
        Channel("4", "A", "B", 1_000_000, base_fee_msat=1000, fee_rate_ppm=500),
        Channel("5", "B", "S", 5_000_000, base_fee_msat=2000, fee_rate_ppm=10),
        Channel("6", "S", "B", 5_000_000),  # our other channel: the circle must not use it
    ]
    g = ChannelGraph.from_channels(chans, self_node="S", local_balances_msat={("1", "S"): 900_000_000})
    m = LiquidityModel(Prior.UNIFORM, clock=lambda: 0.0)
    plan = plan_rebalance(g, m, "1", "5", 800_000_000)
    assert plan.amount_msat == 800_000_000
    assert len(plan.parts) >= 2  # no single middle path has room for 800k sat
    for p in plan.parts:
        assert p.route[0].scid == "1" and p.route[-1].scid == "5"
        assert "6" not in [c.scid for c in p.route]
        assert p.fee_msat > 0  # B's fee into us and the middle hops' fees
    with pytest.raises(NoRouteError):
        plan_rebalance(g, m, "1", "1", 1000)
    with pytest.raises(NoRouteError, match="out channel holds"):
        plan_rebalance(g, m, "1", "5", 1_000_000_000)  # the middle can carry it; our balance cannot


def test_execution_result_maps_to_the_payments_outcome() -> None:
    ok = ExecutionResult("succeeded", "ab" * 32, 700_000_000, fee_msat=87_750, attempts=2, preimage="07" * 32)
    out = ok.to_outcome()
    assert (out.status, out.fee_sat, out.fee_msat, out.value_sat, out.preimage) == (
        "SUCCEEDED",
        87,
        87_750,
        700_000,
        "07" * 32,
    )
    bad = ExecutionResult("failed", "ab" * 32, 1000, failure_reason="FAILURE_REASON_NO_ROUTE: x").to_outcome()
    assert (bad.status, bad.fee_sat, bad.preimage, bad.failure_reason) == (
        "FAILED",
        0,
        None,
        "FAILURE_REASON_NO_ROUTE: x",
    )
