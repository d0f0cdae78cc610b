"""The limits ``McfExecutor.pay`` must keep: the fee cap, ``max_attempts`` and the timeout.

The executor runs for real (planning, learning, re-planning) against ``FakeLnd``, which
answers SendToRouteV2 from a per-route script and plays the recipient's MPP hold: a part
that arrives is held until the whole amount is there (then every held part settles) or
until its MPP timeout fails it with ``MPP_TIMEOUT``. Real LND protobuf messages, no node.

Graphs are fans ``S -> Xi -> T``: our channel ``1i`` to ``Xi``, then ``Xi``'s channel ``2i``
to the recipient ``T``; the fee of a route is ``Xi -> T``'s fee (we do not charge ourselves).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from lncore import stubs
from lsp.routing.executor import MAX_ROUTING_ATTEMPTS, McfExecutor
from lsp.routing.graph import Channel
from lsp.routing.live import RESERVE_MARGIN_SAT, LiveGraph
from lsp.routing.plan import PaymentPart, PaymentPlan

pytestmark = pytest.mark.unit

SELF, DEST = "S", "T"
PAYMENT_HASH = "ab" * 32
PREIMAGE = b"\x07" * 32
CAPACITY_SAT = 1_000_000
OUR_BALANCE_SAT = 500_000
AMOUNT_MSAT = 10_000_000  # single-path size for the planner (<= McfConfig.single_path_max_msat)

PB = stubs.load()


# --- the fake ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fail:
    """The part fails at node ``index`` of its route (0 is us, ``len(route)`` the recipient)."""

    code: str = "TEMPORARY_CHANNEL_FAILURE"
    index: int = 1
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Arrive:
    """The part reaches the recipient, which holds it (MPP) until the set is complete."""

    delay_s: float = 0.0


Action = Fail | Arrive


@dataclass(slots=True)
class SentPart:
    scids: list[str]
    amount_msat: int  # delivered to the recipient
    fee_msat: int
    sent_at: float
    result: str | None = None  # SUCCEEDED | failure code, once resolved
    resolved_at: float | None = None


class FakeLnd:
    """A fake LND for pure-logic tests of the executor, not a model of LND.

    It implements only what ``McfExecutor.pay`` and ``LiveGraph.refresh_balances`` call:
    ``pb`` (LND's real protobuf modules), ``decode_pay_req``, ``block_height``,
    ``list_channels`` and ``send_to_route_v2``. Each SendToRouteV2 call asks ``script`` (the
    route's channel ids -> ``Fail`` | ``Arrive``) what happens to the part. It records every
    part sent, when it was sent and resolved, how many calls are unresolved (``in_flight``) and
    the largest fee total ever at stake (parts in flight or settled, the fees we may pay).
    """

    def __init__(
        self,
        script: Callable[[list[str]], Action],
        *,
        amount_msat: int = AMOUNT_MSAT,
        our_scids: Sequence[str] = (),
        mpp_timeout_s: float = 0.2,
    ) -> None:
        self.pb = PB
        self.script = script
        self.amount_msat = amount_msat
        self.our_scids = list(our_scids)
        self.mpp_timeout_s = mpp_timeout_s
        self.sent: list[SentPart] = []
        self.in_flight = 0
        self.in_flight_when_pay_returned: int | None = None
        self.fees_at_stake_msat = 0
        self.max_fees_at_stake_msat = 0
        self._arrived_msat = 0
        self._complete = asyncio.Event()

    async def decode_pay_req(self, payment_request: str) -> Any:
        return self.pb.ln.PayReq(
            destination=DEST,
            payment_hash=PAYMENT_HASH,
            num_satoshis=self.amount_msat // 1000,
            num_msat=self.amount_msat,
            cltv_expiry=40,
            payment_addr=b"\x01" * 32,
        )

    async def block_height(self) -> int:
        return 1000

    async def list_channels(self, **_: Any) -> list[Any]:
        return [
            self.pb.ln.Channel(
                chan_id=int(scid),
                active=True,
                local_balance=OUR_BALANCE_SAT + RESERVE_MARGIN_SAT,
                local_constraints=self.pb.ln.ChannelConstraints(chan_reserve_sat=0),
            )
            for scid in self.our_scids
        ]

    async def send_to_route_v2(self, payment_hash: bytes, route: Any, *, timeout_s: float) -> Any:
        assert payment_hash == bytes.fromhex(PAYMENT_HASH)
        part = SentPart(
            scids=[str(h.chan_id) for h in route.hops],
            amount_msat=int(route.hops[-1].amt_to_forward_msat),
            fee_msat=int(route.total_fees_msat),
            sent_at=time.monotonic(),
        )
        self.sent.append(part)
        self.in_flight += 1
        self.fees_at_stake_msat += part.fee_msat
        self.max_fees_at_stake_msat = max(self.max_fees_at_stake_msat, self.fees_at_stake_msat)
        try:
            action = self.script(part.scids)
            await asyncio.sleep(action.delay_s)
            if isinstance(action, Fail):
                attempt = self._failed(action.code, action.index)
            else:
                attempt = await self._held(part, int(route.hops[-1].mpp_record.total_amt_msat), len(route.hops))
            if attempt.status == self.pb.ln.HTLCAttempt.SUCCEEDED:
                part.result = "SUCCEEDED"
            else:
                part.result = self.pb.ln.Failure.FailureCode.Name(attempt.failure.code)
                self.fees_at_stake_msat -= part.fee_msat
            part.resolved_at = time.monotonic()  # not set for a call cancelled under us
            return attempt
        finally:
            self.in_flight -= 1

    async def _held(self, part: SentPart, total_msat: int, n_hops: int) -> Any:
        self._arrived_msat += part.amount_msat
        if self._arrived_msat >= total_msat:
            self._complete.set()
        try:
            await asyncio.wait_for(self._complete.wait(), self.mpp_timeout_s)
        except TimeoutError:
            self._arrived_msat -= part.amount_msat
            return self._failed("MPP_TIMEOUT", n_hops)
        return self.pb.ln.HTLCAttempt(status=self.pb.ln.HTLCAttempt.SUCCEEDED, preimage=PREIMAGE)

    def _failed(self, code: str, index: int) -> Any:
        failure = self.pb.ln.Failure(code=self.pb.ln.Failure.FailureCode.Value(code), failure_source_index=index)
        return self.pb.ln.HTLCAttempt(status=self.pb.ln.HTLCAttempt.FAILED, failure=failure)


# --- graphs and plans ---------------------------------------------------------------------------


def fan(fees: Sequence[tuple[int, int]]) -> list[Channel]:
    """``S -> Xi -> T`` for each ``(base_fee_msat, fee_rate_ppm)`` of ``Xi -> T``."""
    out: list[Channel] = []
    for i, (base, ppm) in enumerate(fees, start=1):
        hop = f"X{i}"
        out.append(Channel(f"1{i:02d}", SELF, hop, CAPACITY_SAT))
        out.append(Channel(f"1{i:02d}", hop, SELF, CAPACITY_SAT))
        out.append(Channel(f"2{i:02d}", hop, DEST, CAPACITY_SAT, base_fee_msat=base, fee_rate_ppm=ppm))
    return out


def route(channels: Sequence[Channel], i: int) -> list[Channel]:
    by_scid = {(c.scid, c.source): c for c in channels}
    return [by_scid[(f"1{i:02d}", SELF)], by_scid[(f"2{i:02d}", f"X{i}")]]


def executor(
    script: Callable[[list[str]], Action],
    channels: Sequence[Channel],
    *,
    amount_msat: int = AMOUNT_MSAT,
    mpp_timeout_s: float = 0.2,
    **kw: Any,
) -> tuple[McfExecutor, FakeLnd]:
    ours = sorted({c.scid for c in channels if c.source == SELF})
    lnd = FakeLnd(script, amount_msat=amount_msat, our_scids=ours, mpp_timeout_s=mpp_timeout_s)
    live = LiveGraph(lnd, clock=lambda: 1_000.0)  # type: ignore[arg-type]
    live.self_node = SELF
    live.channels = {c.key: c for c in channels}
    return McfExecutor(live, collect_s=0.02, **kw), lnd


class ScriptedPlans:
    """A ``plan_fn`` returning the given plans in turn (each a list of ``(route, amount)``)."""

    def __init__(self, *rounds: list[tuple[list[Channel], int]]) -> None:
        self.rounds = list(rounds)
        self.asked: list[int] = []

    def __call__(self, amount_msat: int) -> PaymentPlan:
        self.asked.append(amount_msat)
        parts = self.rounds.pop(0)
        assert sum(a for _, a in parts) == amount_msat, "the script does not match what the executor re-plans"
        return PaymentPlan(tuple(PaymentPart.build(r, a, 0.5) for r, a in parts))


def assert_nothing_left_in_flight(ex: McfExecutor, lnd: FakeLnd) -> None:
    assert lnd.in_flight_when_pay_returned == 0, "pay() returned with SendToRouteV2 calls unresolved"
    assert all(p.resolved_at is not None for p in lnd.sent)
    assert all(k.inflight_msat == 0 for k in ex.live.liquidity.knowledge.values())


def pay(ex: McfExecutor, **kw: Any) -> Any:
    lnd = ex.lnd

    async def run() -> Any:
        res = await ex.pay("lnbcrt-fake", **kw)
        # Measured here: asyncio.run cancels whatever is left once we return.
        lnd.in_flight_when_pay_returned = lnd.in_flight
        return res

    return asyncio.run(run())


# --- the fee cap ------------------------------------------------------------------------------


def test_nothing_is_sent_when_every_plan_costs_more_than_the_fee_cap() -> None:
    # Both routes cost more than the cap: 6000 and 5000 + 10M * 200 / 1e6 = 7000 msat.
    chans = fan([(6000, 0), (5000, 200)])
    ex, lnd = executor(lambda scids: Arrive(), chans)
    res = pay(ex, fee_limit_msat=5_000, timeout_s=5)
    assert lnd.sent == []
    assert res.status == "failed" and res.parts == []
    assert res.failure_reason is not None
    assert res.failure_reason.startswith("FAILURE_REASON_NO_ROUTE") and "exceed the cap" in res.failure_reason
    assert res.attempts == 1
    assert ex.estimate(DEST, AMOUNT_MSAT).fee_msat > 5_000  # the plan it refused
    assert res.to_outcome().status == "FAILED"


def test_replanning_after_a_failure_sends_nothing_past_the_fee_cap() -> None:
    # Round 1 takes the cheap route (fee 2000) and fails there; the only route left costs
    # 6000 > 5000: the executor must give up rather than send it.
    chans = fan([(2000, 0), (6000, 0)])
    ex, lnd = executor(lambda scids: Fail(index=1) if "201" in scids else Arrive(), chans)
    res = pay(ex, fee_limit_msat=5_000, timeout_s=5)
    assert [p.scids for p in lnd.sent] == [["101", "201"]]
    assert sum(p.fee_msat for p in lnd.sent) <= 5_000
    assert res.status == "failed" and res.attempts == 2
    assert res.failure_reason is not None and "exceed the cap" in res.failure_reason
    assert_nothing_left_in_flight(ex, lnd)


def test_fees_of_a_held_part_count_against_the_cap_when_replanning() -> None:
    # Round 1: X1's part (fee 2000) arrives and is held; X2's part (fee 2000) fails. Re-planning
    # X2's 10M through X3 costs 4500: within the cap alone, but 2000 + 4500 > 5000.
    chans = fan([(1000, 100), (1000, 100), (3500, 100)])
    plans = ScriptedPlans(
        [(route(chans, 1), AMOUNT_MSAT), (route(chans, 2), AMOUNT_MSAT)],
        [(route(chans, 3), AMOUNT_MSAT)],
    )
    ex, lnd = executor(lambda scids: Fail(index=1) if "202" in scids else Arrive(), chans, amount_msat=2 * AMOUNT_MSAT)
    res = pay(ex, fee_limit_msat=5_000, timeout_s=5, plan_fn=plans)
    assert plans.asked == [2 * AMOUNT_MSAT, AMOUNT_MSAT]
    assert sorted(p.scids[1] for p in lnd.sent) == ["201", "202"]  # never X3
    assert sum(p.fee_msat for p in lnd.sent) == 4_000 <= 5_000
    assert lnd.max_fees_at_stake_msat <= 5_000
    assert res.status == "failed"
    assert res.failure_reason is not None and "exceed the cap" in res.failure_reason
    # The held part was waited for until the recipient gave it up, not abandoned.
    held = next(p for p in res.parts if p.scids[1] == "201")
    assert (held.status, held.failure_code) == ("failed", "MPP_TIMEOUT")
    assert_nothing_left_in_flight(ex, lnd)


def test_fees_of_failed_parts_are_released_for_the_replan() -> None:
    # The counterpart of the test above: a re-plan that fits the budget left (2500 <= 5000 -
    # 2000) is sent and completes the set; the failed part's 2000 no longer counts.
    chans = fan([(1000, 100), (1000, 100), (1500, 100)])
    plans = ScriptedPlans(
        [(route(chans, 1), AMOUNT_MSAT), (route(chans, 2), AMOUNT_MSAT)],
        [(route(chans, 3), AMOUNT_MSAT)],
    )
    ex, lnd = executor(
        lambda scids: Fail(index=1) if "202" in scids else Arrive(), chans, amount_msat=2 * AMOUNT_MSAT, mpp_timeout_s=2
    )
    res = pay(ex, fee_limit_msat=5_000, timeout_s=5, plan_fn=plans)
    assert res.status == "succeeded", res.failure_reason
    assert res.fee_msat == 4_500 and res.preimage == PREIMAGE.hex()
    assert lnd.max_fees_at_stake_msat <= 5_000
    assert_nothing_left_in_flight(ex, lnd)


# --- max_attempts -------------------------------------------------------------------------------


@pytest.mark.parametrize("max_attempts", [1, 3, None])
def test_every_part_failing_stops_after_exactly_max_attempts_rounds(
    max_attempts: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = MAX_ROUTING_ATTEMPTS if max_attempts is None else max_attempts
    chans = fan([(1000, 100)] * (n + 3))  # routes to spare: only the limit can stop it
    ex, lnd = executor(lambda scids: Fail("TEMPORARY_CHANNEL_FAILURE", 1), chans)
    rounds: list[int] = []
    plan_within_fees = ex._plan_within_fees

    def counting(target: str, amount_msat: int, budget_msat: int, plan_fn: Any = None) -> PaymentPlan:
        rounds.append(amount_msat)
        return plan_within_fees(target, amount_msat, budget_msat, plan_fn)

    monkeypatch.setattr(ex, "_plan_within_fees", counting)
    kw = {} if max_attempts is None else {"max_attempts": max_attempts}
    res = pay(ex, fee_limit_msat=1_000_000, timeout_s=30, **kw)
    assert len(rounds) == n and res.attempts == n
    assert len(lnd.sent) == n and len({tuple(p.scids) for p in lnd.sent}) == n  # a new route each round
    assert sorted({p.attempt for p in res.parts}) == list(range(1, n + 1))
    assert res.status == "failed"
    assert res.failure_reason == f"no success within {n} attempts"
    assert all(p.status == "failed" and p.failure_code == "TEMPORARY_CHANNEL_FAILURE" for p in res.parts)
    assert_nothing_left_in_flight(ex, lnd)


def test_max_attempts_of_the_executor_is_the_default() -> None:
    chans = fan([(1000, 100)] * 6)
    ex, lnd = executor(lambda scids: Fail(index=1), chans, max_attempts=2)
    res = pay(ex, fee_limit_msat=1_000_000, timeout_s=30)
    assert res.attempts == 2 and len(lnd.sent) == 2
    assert res.failure_reason == "no success within 2 attempts"


# --- the timeout --------------------------------------------------------------------------------

SLOW_S = 0.4
TIMEOUT_S = 0.6  # round 2 starts at ~0.4 s (before it), round 3 would start at ~0.8 s (after it)


def test_no_round_starts_after_the_timeout_and_slow_parts_are_awaited() -> None:
    chans = fan([(1000, 100)] * 6)
    ex, lnd = executor(lambda scids: Fail(index=1, delay_s=SLOW_S), chans, max_attempts=10)
    t_start = time.monotonic()
    res = pay(ex, fee_limit_msat=1_000_000, timeout_s=TIMEOUT_S)
    t_end = time.monotonic()
    deadline = t_start + TIMEOUT_S
    assert res.status == "failed" and res.failure_reason == "FAILURE_REASON_TIMEOUT"
    assert res.attempts == 2 and len(lnd.sent) == 2
    assert all(p.sent_at < deadline for p in lnd.sent)
    # Round 2's part resolved after the deadline, and pay() waited for it.
    last = max(p.resolved_at or 0.0 for p in lnd.sent)
    assert deadline < last <= t_end
    assert all(p.status == "failed" for p in res.parts)
    assert_nothing_left_in_flight(ex, lnd)


def test_a_part_held_by_the_recipient_is_awaited_past_the_timeout() -> None:
    # Round 1: X1's part arrives and is held, X2's fails slowly; round 2 (X3) fails slowly
    # too, after the deadline. No round 3; X1's part is waited for until its MPP timeout.
    chans = fan([(1000, 100)] * 4)
    plans = ScriptedPlans(
        [(route(chans, 1), AMOUNT_MSAT), (route(chans, 2), AMOUNT_MSAT)],
        [(route(chans, 3), AMOUNT_MSAT)],
        [(route(chans, 4), AMOUNT_MSAT)],
    )
    ex, lnd = executor(
        lambda scids: Arrive() if "201" in scids else Fail(index=1, delay_s=SLOW_S),
        chans,
        amount_msat=2 * AMOUNT_MSAT,
        mpp_timeout_s=0.9,
        max_attempts=10,
    )
    t_start = time.monotonic()
    res = pay(ex, fee_limit_msat=1_000_000, timeout_s=TIMEOUT_S, plan_fn=plans)
    t_end = time.monotonic()
    assert res.status == "failed" and res.failure_reason == "FAILURE_REASON_TIMEOUT"
    assert res.attempts == 2 and len(plans.asked) == 2 and len(lnd.sent) == 3
    assert all(p.sent_at < t_start + TIMEOUT_S for p in lnd.sent)
    held = next(p for p in res.parts if p.scids[1] == "201")
    assert (held.status, held.failure_code) == ("failed", "MPP_TIMEOUT")
    assert t_end - t_start >= 0.9 and res.duration_s >= 0.9
    assert_nothing_left_in_flight(ex, lnd)
