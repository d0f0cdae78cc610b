"""Paying an invoice with our own plan: MCF parts sent with SendToRouteV2, learning as they resolve.

Round (an *attempt*): plan what is not yet in flight, send every part concurrently, wait.
A part that fails comes back within a few round trips; a part that reached the recipient
does not come back at all until the whole amount is there (the recipient holds an MPP set
until it is complete). So after the first failure we wait ``collect_s`` for more results, learn
from all of them, and re-plan only the amount that failed while the held parts stay in flight.
When the set is complete LND settles every part and each call returns SUCCEEDED.

Learning from a failure reported by node ``k`` of the route (0 is us):
``TEMPORARY_CHANNEL_FAILURE`` there means the channel ``route[k]`` lacked the liquidity for the
amount (an upper bound); the channels before ``k`` carried it (lower bounds). Other errors at an
intermediate node (unknown channel, disabled, policy mismatch) make that channel unusable for
a while (upper bound of 1 msat, which decays like any knowledge). A final-node error other
than ``MPP_TIMEOUT`` is fatal: the invoice is unknown, expired or already paid.

Limits kept: the fee cap (no plan is sent whose fees would push the total past it), the timeout
(no new parts after it; parts in flight are always waited for, so a failed result never leaves
an HTLC that could still settle) and ``max_attempts`` planning rounds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lncore.lnd.types import PaymentOutcome
from lsp.errors import LndError
from lsp.routing.liquidity import settle
from lsp.routing.mcf import McfPlanner
from lsp.routing.plan import NoRouteError, PaymentPart, PaymentPlan
from lsp.routing.rebalance import plan_rebalance

if TYPE_CHECKING:
    from lsp.routing.live import LiveGraph

log = logging.getLogger("lsp.routing.executor")

MAX_ROUTING_ATTEMPTS = 5
PlanFn = Callable[[int], PaymentPlan]
FINAL_CLTV_PADDING = 3
"""Blocks added to the final CLTV, as LND does, so a block found meanwhile does not fail the part."""
LIQUIDITY_CODES = {"TEMPORARY_CHANNEL_FAILURE"}
RETRYABLE_FINAL_CODES = {"MPP_TIMEOUT"}


@dataclass(slots=True)
class PartRecord:
    attempt: int
    amount_msat: int
    fee_msat: int
    probability: float
    hops: list[str]
    scids: list[str]
    status: str = "in_flight"  # in_flight | succeeded | failed
    failure_code: str | None = None
    failure_index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "amount_msat": self.amount_msat,
            "fee_msat": self.fee_msat,
            "probability": round(self.probability, 6),
            "hops": self.hops,
            "scids": self.scids,
            "status": self.status,
            "failure_code": self.failure_code,
            "failure_index": self.failure_index,
        }


@dataclass(slots=True)
class ExecutionResult:
    status: str  # succeeded | failed
    payment_hash: str
    amount_msat: int
    fee_msat: int = 0
    attempts: int = 0
    parts: list[PartRecord] = field(default_factory=list)
    preimage: str | None = None
    failure_reason: str | None = None
    duration_s: float = 0.0
    first_plan_probability: float | None = None

    @property
    def htlcs(self) -> int:
        return len(self.parts)

    def to_outcome(self) -> PaymentOutcome:
        """The same final shape the LND strategy produces, for the payments service."""
        ok = self.status == "succeeded"
        return PaymentOutcome(
            payment_hash=self.payment_hash,
            status="SUCCEEDED" if ok else "FAILED",
            fee_sat=self.fee_msat // 1000 if ok else 0,
            fee_msat=self.fee_msat if ok else 0,
            value_sat=self.amount_msat // 1000,
            preimage=self.preimage if ok else None,
            failure_reason=None if ok else (self.failure_reason or "FAILURE_REASON_NO_ROUTE"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "payment_hash": self.payment_hash,
            "amount_msat": self.amount_msat,
            "fee_msat": self.fee_msat,
            "attempts": self.attempts,
            "htlcs": self.htlcs,
            "failure_reason": self.failure_reason,
            "duration_s": round(self.duration_s, 3),
            "first_plan_probability": self.first_plan_probability,
            "parts": [p.as_dict() for p in self.parts],
        }


def route_proto(
    pb: Any, part: PaymentPart, *, height: int, final_cltv: int, payment_addr: bytes, total_msat: int
) -> Any:
    """LND ``Route`` for a planned part. LND's conventions: ``hops[i]`` is the channel into node
    ``i``; its ``amt_to_forward``/``expiry`` are what that node sends on (over ``route[i+1]``),
    and for the last hop what it receives; the MPP record rides on the last hop."""
    route = part.route
    n = len(route)
    amts = part.amounts.hop_amounts_msat
    cltv = [0] * n  # cltv[i]: the CLTV expiry of the HTLC over route[i]
    cltv[n - 1] = height + final_cltv + FINAL_CLTV_PADDING
    for i in range(n - 2, -1, -1):
        cltv[i] = cltv[i + 1] + route[i + 1].cltv_delta
    hops = []
    for i, ch in enumerate(route):
        last = i == n - 1
        fwd = amts[i] if last else amts[i + 1]
        hop = pb.ln.Hop(
            chan_id=int(ch.scid),
            chan_capacity=ch.capacity_sat,
            amt_to_forward_msat=fwd,
            fee_msat=amts[i] - fwd,
            expiry=cltv[i] if last else cltv[i + 1],
            pub_key=ch.dest,
            tlv_payload=True,
        )
        if last:
            hop.mpp_record.CopyFrom(pb.ln.MPPRecord(payment_addr=payment_addr, total_amt_msat=total_msat))
        hops.append(hop)
    return pb.ln.Route(
        total_time_lock=cltv[0],
        total_fees_msat=amts[0] - part.amount_msat,
        total_amt_msat=amts[0],
        hops=hops,
    )


class McfExecutor:
    """Pays invoices over a ``LiveGraph`` with MCF plans; one executor serves many payments."""

    def __init__(self, live: LiveGraph, *, max_attempts: int = MAX_ROUTING_ATTEMPTS, collect_s: float = 0.5) -> None:
        self.live = live
        self.max_attempts = max_attempts
        self.collect_s = collect_s

    @property
    def lnd(self) -> Any:
        return self.live.lnd

    # --- estimate ------------------------------------------------------------------------

    def estimate(self, target: str, amount_msat: int) -> PaymentPlan:
        """The plan we would send now (raises ``NoRouteError``); nothing is sent or learned."""
        return self.live.planner().plan(self.live.self_node, target, amount_msat)

    # --- pay -----------------------------------------------------------------------------

    def _plan_within_fees(
        self, target: str, amount_msat: int, budget_msat: int, plan_fn: PlanFn | None = None
    ) -> PaymentPlan:
        if plan_fn is not None:
            plan = plan_fn(amount_msat)
            if plan.fee_msat > budget_msat:
                raise NoRouteError(target, target, amount_msat, f"fees {plan.fee_msat} msat exceed the cap")
            return plan
        planner = self.live.planner()
        plan = planner.plan(self.live.self_node, target, amount_msat)
        mu = planner.config.mu
        # Over budget: weigh fees more (cheaper, less reliable routes) before giving up.
        for _ in range(3):
            if plan.fee_msat <= budget_msat:
                return plan
            mu *= 10
            cheap = McfPlanner(planner.graph, planner.liquidity, replace(planner.config, mu=mu))
            plan = cheap.plan(self.live.self_node, target, amount_msat)
        if plan.fee_msat <= budget_msat:
            return plan
        raise NoRouteError(self.live.self_node, target, amount_msat, f"fees {plan.fee_msat} msat exceed the cap")

    async def pay(
        self,
        payment_request: str,
        *,
        fee_limit_msat: int,
        timeout_s: float = 60.0,
        max_attempts: int | None = None,
        plan_fn: PlanFn | None = None,
    ) -> ExecutionResult:
        """Pay ``payment_request``; ``plan_fn`` (amount -> plan) replaces the default MCF plan
        to the invoice's node, e.g. for circular rebalancing."""
        t0 = time.monotonic()
        max_attempts = self.max_attempts if max_attempts is None else max_attempts
        dec = await self.lnd.decode_pay_req(payment_request)
        amount = int(dec.num_msat) or int(dec.num_satoshis) * 1000
        res = ExecutionResult("failed", dec.payment_hash, amount)
        if amount <= 0:
            res.failure_reason = "amountless invoices need an amount"
            return res
        target = dec.destination
        phash = bytes.fromhex(dec.payment_hash)
        height = await self.lnd.block_height()
        await self.live.refresh_balances()
        pb = self.lnd.pb
        deadline = t0 + timeout_s
        remaining = amount
        committed_fee = 0
        fatal = False
        stop_planning = False
        pending: dict[asyncio.Task[Any], tuple[PaymentPart, PartRecord]] = {}
        succeeded: list[PaymentPart] = []

        while True:
            if remaining > 0 and not fatal and not stop_planning:
                if res.attempts >= max_attempts:
                    res.failure_reason = res.failure_reason or f"no success within {max_attempts} attempts"
                    stop_planning = True
                elif time.monotonic() >= deadline:
                    res.failure_reason = "FAILURE_REASON_TIMEOUT"
                    stop_planning = True
                else:
                    res.attempts += 1
                    try:
                        plan = self._plan_within_fees(target, remaining, fee_limit_msat - committed_fee, plan_fn)
                    except NoRouteError as err:
                        res.failure_reason = f"FAILURE_REASON_NO_ROUTE: {err.reason}"
                        stop_planning = True
                    else:
                        if res.first_plan_probability is None:
                            res.first_plan_probability = plan.probability
                        for part in plan.parts:
                            rec = PartRecord(
                                res.attempts,
                                part.amount_msat,
                                part.fee_msat,
                                part.probability,
                                [ch.dest for ch in part.route],
                                [ch.scid for ch in part.route],
                            )
                            res.parts.append(rec)
                            self._inflight(part, +1)
                            route = route_proto(
                                pb,
                                part,
                                height=height,
                                final_cltv=int(dec.cltv_expiry),
                                payment_addr=bytes(dec.payment_addr),
                                total_msat=amount,
                            )
                            # The call outlives our timeout: a part that arrived is held by the
                            # recipient until the set completes or its MPP timeout (120 s) fails it.
                            task = asyncio.ensure_future(
                                self.lnd.send_to_route_v2(phash, route, timeout_s=timeout_s + 180)
                            )
                            pending[task] = (part, rec)
                            remaining -= part.amount_msat
                            committed_fee += part.fee_msat
            if not pending:
                break
            done, _ = await asyncio.wait(list(pending), return_when=asyncio.FIRST_COMPLETED)
            rest = [t for t in pending if t not in done]
            if rest:
                more, _ = await asyncio.wait(rest, timeout=self.collect_s)
                done |= more
            for task in done:
                part, rec = pending.pop(task)
                outcome, preimage = self._resolve(task, part, rec, pb)
                if outcome == "succeeded":
                    succeeded.append(part)
                    res.preimage = res.preimage or preimage
                else:
                    remaining += part.amount_msat
                    committed_fee -= part.fee_msat
                    if outcome == "fatal":
                        fatal = True
                        res.failure_reason = rec.failure_code or "FAILURE_REASON_ERROR"

        res.duration_s = time.monotonic() - t0
        if succeeded and remaining == 0:
            res.status = "succeeded"
            res.failure_reason = None
            res.fee_msat = sum(p.fee_msat for p in succeeded)
            self._settle(succeeded)
            await self.live.refresh_balances()
        else:
            # Parts that "succeeded" without the full amount cannot exist (the recipient only
            # settles a complete set), but never leave their in-flight marks behind.
            for p in succeeded:
                self._inflight(p, -1)
        self._save()
        return res

    async def rebalance(
        self, out_scid: str, in_scid: str, amount_sat: int, *, fee_limit_msat: int, timeout_s: float = 60.0
    ) -> ExecutionResult:
        """Move ``amount_sat`` from our channel ``out_scid`` to ``in_scid`` by paying ourselves."""
        inv = await self.lnd.add_invoice(amount_sat, "rebalance", expiry_s=600)
        await self.live.refresh_balances()

        def plan_fn(amount_msat: int) -> PaymentPlan:
            return plan_rebalance(
                self.live.graph(), self.live.liquidity, out_scid, in_scid, amount_msat, config=self.live.config
            )

        return await self.pay(inv.payment_request, fee_limit_msat=fee_limit_msat, timeout_s=timeout_s, plan_fn=plan_fn)

    def _inflight(self, part: PaymentPart, sign: int) -> None:
        liq = self.live.liquidity
        for ch, amt in zip(part.route, part.amounts.hop_amounts_msat, strict=True):
            if sign > 0:
                liq.add_inflight(ch, amt)
            else:
                liq.remove_inflight(ch, amt)

    def _resolve(self, task: asyncio.Task[Any], part: PaymentPart, rec: PartRecord, pb: Any) -> tuple[str, str | None]:
        """Learn from one resolved part; returns (succeeded | failed | fatal, preimage)."""
        self._inflight(part, -1)
        liq = self.live.liquidity
        route, amts = part.route, part.amounts.hop_amounts_msat
        exc = task.exception()
        if exc is not None:
            rec.status, rec.failure_code = "failed", f"error: {exc}"
            log.warning("part over %s raised %s", rec.scids, exc)
            return ("failed" if isinstance(exc, LndError) else "fatal"), None
        attempt = task.result()
        if attempt.status == pb.ln.HTLCAttempt.SUCCEEDED:
            rec.status = "succeeded"
            # Still counted as in flight until the whole payment settles (see _settle).
            self._inflight(part, +1)
            return "succeeded", attempt.preimage.hex()
        rec.status = "failed"
        code = pb.ln.Failure.FailureCode.Name(attempt.failure.code)
        k = int(attempt.failure.failure_source_index)
        rec.failure_code, rec.failure_index = code, k
        n = len(route)
        for i in range(min(k, n)):
            liq.learn_success(route[i], amts[i], self.live.reverse(route[i]))
        if k >= n:  # the recipient answered
            return ("failed" if code in RETRYABLE_FINAL_CODES else "fatal"), None
        if k == 0:
            return "failed", None  # our own channel: its balance is exact and refreshed per payment
        if code in LIQUIDITY_CODES:
            liq.learn_failure(route[k], amts[k], self.live.reverse(route[k]))
        else:
            liq.learn_failure(route[k], 1)
        return "failed", None

    def _settle(self, parts: list[PaymentPart]) -> None:
        """The payment settled: move what each channel carried from its bounds (see ``settle``)."""
        liq = self.live.liquidity
        load: dict[tuple[str, str], int] = {}
        chans = {}
        for part in parts:
            self._inflight(part, -1)
            for ch, amt in zip(part.route, part.amounts.hop_amounts_msat, strict=True):
                load[ch.key] = load.get(ch.key, 0) + amt
                chans[ch.key] = ch
        for key, amt in load.items():
            ch = chans[key]
            rev = self.live.reverse(ch)
            liq.learn_success(ch, amt, rev)
            settle(liq, ch, amt, rev)

    def _save(self) -> None:
        try:
            self.live.save_model()
        except Exception:  # persistence must never turn a paid invoice into an error
            log.exception("could not persist the liquidity model")
