"""Assertions: per-payment expectations of pay/keysend steps, and ``expect`` steps
on earlier payments, balances and channel states."""

from __future__ import annotations

import math

from harness.errors import WaitTimeout
from harness.harness import LightningTestHarness
from harness.rpc.lightning import Graph
from harness.rpc.router import PaymentResult
from harness.scenario.context import StepContext
from harness.scenario.model import EventCheck, ExpectStep, PaymentExpect, Range, ResultCheck
from harness.scenario.results import PaymentRecord
from harness.wait import wait_for


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def policy_fee_msat(lab: LightningTestHarness, graph: Graph, route: tuple[str, ...], amount_msat: int) -> int | None:
    """The fee the hop policies in ``graph`` charge to deliver ``amount_msat``
    along ``route`` (hop pubkeys, payer excluded), computed backwards from the
    payee the way LND does (integer msat). None when an edge is unknown."""
    amt = amount_msat
    total = 0
    for i in range(len(route) - 2, -1, -1):
        fwd, nxt = route[i], route[i + 1]
        edge = next((e for e in graph.edges if {e.node1, e.node2} == {fwd, nxt}), None)
        pol = edge.policy_of(fwd) if edge is not None else None
        if pol is None:
            return None
        fee = pol.base_fee_msat + amt * pol.fee_rate_ppm // 1_000_000
        total += fee
        amt += fee
    return total


def record(
    payer: str,
    payee: str,
    amount_sat: int,
    res: PaymentResult,
    latency_s: float,
    memo: str = "",
    *,
    expected_status: str | None = None,
) -> PaymentRecord:
    """The report's record of one payment, from the paying node's result."""
    return PaymentRecord(
        payer=payer,
        payee=payee,
        amount_sat=amount_sat,
        status=res.status,
        fee_msat=res.fee_msat,
        latency_s=round(latency_s, 4),
        failure_reason="" if res.succeeded else res.failure_reason,
        memo=memo,
        hops=len(res.route),
        expected_status=expected_status,
    )


def check_payment(ctx: StepContext, rec: PaymentRecord, exp: PaymentExpect) -> None:
    label = f"payment {rec.payer}->{rec.payee} {rec.amount_sat} sat"
    rec.expected_status = exp.status if exp.min_success_rate is None else None
    if exp.status is not None and exp.min_success_rate is None and rec.status != exp.status:
        why = f" ({rec.failure_reason})" if rec.failure_reason else ""
        ctx.fail(f"{label}: status {rec.status}{why}, expected {exp.status}")
    if exp.failure_reason is not None and rec.status == "FAILED" and rec.failure_reason != exp.failure_reason:
        ctx.fail(f"{label}: failure reason {rec.failure_reason}, expected {exp.failure_reason}")
    if rec.status != "SUCCEEDED":
        return
    if exp.fee_msat is not None and rec.fee_msat != exp.fee_msat:
        ctx.fail(f"{label}: fee {rec.fee_msat} msat, expected {exp.fee_msat} msat")
    if exp.max_fee_msat is not None and rec.fee_msat > exp.max_fee_msat:
        ctx.fail(f"{label}: fee {rec.fee_msat} msat above the maximum {exp.max_fee_msat} msat")
    if exp.fee_per_policy and rec.expected_fee_msat is not None and rec.fee_msat != rec.expected_fee_msat:
        ctx.fail(f"{label}: fee {rec.fee_msat} msat, but the route's policies charge {rec.expected_fee_msat} msat")


def check_rate(ctx: StepContext, records: list[PaymentRecord], exp: PaymentExpect) -> None:
    if exp.min_success_rate is None or not records:
        return
    rate = sum(r.status == "SUCCEEDED" for r in records) / len(records)
    if rate < exp.min_success_rate:
        ctx.fail(f"success rate {rate:.0%} below the expected {exp.min_success_rate:.0%}")


def in_range(value: int, rng: Range) -> bool:
    return (rng.min is None or value >= rng.min) and (rng.max is None or value <= rng.max)


def range_text(r: Range) -> str:
    return f"[{'' if r.min is None else r.min}..{'' if r.max is None else r.max}]"


def _check_result(ctx: StepContext, rc: ResultCheck) -> str:
    """A figure an earlier recording step (breach, jit_receive, swaps, hosted_node, ...) recorded (validated
    names, so only the value may miss). Ranges take integers and, for durations, fractions of a second."""
    outcome = ctx.history[rc.step].outcome
    if rc.field not in outcome:
        ctx.fail(f"step {rc.step!r} recorded no {rc.field!r} (it did not finish)")
        return f"{rc.step}.{rc.field}"
    value = outcome[rc.field]
    if rc.equals is not None and value != rc.equals:
        ctx.fail(f"step {rc.step!r}: {rc.field} is {value!r}, expected {rc.equals!r}")
    if rc.min is not None or rc.max is not None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            ctx.fail(f"step {rc.step!r}: {rc.field} is {value!r}, not a number")
        elif (rc.min is not None and value < rc.min) or (rc.max is not None and value > rc.max):
            bounds = f"[{'' if rc.min is None else f'{rc.min:,}'}..{'' if rc.max is None else f'{rc.max:,}'}]"
            ctx.fail(f"step {rc.step!r}: {rc.field} = {value:,} outside {bounds}")
    return f"{rc.step}.{rc.field}"


def _check_events(ctx: StepContext, ev: EventCheck) -> str:
    """Events arrive asynchronously (LND -> LSP watcher -> WebSocket): wait for the minimum."""

    def count() -> int:
        return sum(e.get("type") == ev.type for e in ctx.lsp_events)

    if ev.min_count > 0:
        try:
            wait_for(lambda: count() >= ev.min_count, what=f"{ev.min_count} {ev.type} event(s)", timeout_s=ev.timeout_s)
        except WaitTimeout:
            seen = sorted({str(e.get("type")) for e in ctx.lsp_events}) or ["none"]
            ctx.fail(
                f"{count()} {ev.type} event(s) in {ev.timeout_s:g}s, expected at least {ev.min_count} "
                f"(seen: {', '.join(seen)})"
            )
    if ev.max_count is not None and count() > ev.max_count:
        ctx.fail(f"{count()} {ev.type} event(s), expected at most {ev.max_count}")
    return f"{count()} {ev.type} event(s)"


def run(step: ExpectStep, ctx: StepContext) -> None:
    checked = []
    for chk in step.payments:
        prior = ctx.history[chk.step]
        pays = prior.payments
        ok = [p for p in pays if p.status == "SUCCEEDED"]
        if chk.count is not None and len(pays) != chk.count:
            ctx.fail(f"step {chk.step!r} made {len(pays)} payments, expected {chk.count}")
        if chk.min_success_rate is not None:
            rate = len(ok) / len(pays) if pays else 0.0
            if rate < chk.min_success_rate:
                ctx.fail(f"step {chk.step!r}: success rate {rate:.0%} below {chk.min_success_rate:.0%}")
        if chk.max_p95_latency_s is not None:
            p95 = percentile([p.latency_s for p in ok], 95)
            if p95 > chk.max_p95_latency_s:
                ctx.fail(f"step {chk.step!r}: p95 latency {p95:.2f}s above {chk.max_p95_latency_s}s")
        if chk.max_total_fee_msat is not None:
            fees = sum(p.fee_msat for p in ok)
            if fees > chk.max_total_fee_msat:
                ctx.fail(f"step {chk.step!r}: fees {fees} msat above {chk.max_total_fee_msat} msat")
        checked.append(f"payments of {chk.step}")
    for b in step.balances:
        bal = ctx.lab.node(b.node).balances()
        if b.channel_local_sat is not None and not in_range(bal.channel_local_sat, b.channel_local_sat):
            ctx.fail(f"{b.node}: channel balance {bal.channel_local_sat} sat outside {range_text(b.channel_local_sat)}")
        if b.onchain_confirmed_sat is not None and not in_range(bal.onchain_confirmed_sat, b.onchain_confirmed_sat):
            ctx.fail(
                f"{b.node}: on-chain {bal.onchain_confirmed_sat} sat outside {range_text(b.onchain_confirmed_sat)}"
            )
        checked.append(f"balance of {b.node}")
    for c in step.channels:
        node, peer = ctx.lab.node(c.node), ctx.lab.node(c.peer)
        chans = [
            ch
            for ch in node.list_channels()
            if ch.remote_pubkey == peer.pubkey and (c.capacity_sat is None or ch.capacity_sat == c.capacity_sat)
        ]
        pair = f"{c.node}-{c.peer}"
        if c.state == "absent":
            if chans:
                ctx.fail(f"channel {pair}: expected none, found {len(chans)}")
        elif not chans:
            ctx.fail(f"channel {pair}: none open, expected {c.state}")
        else:
            ch = chans[0]
            if (c.state == "active") != ch.active:
                ctx.fail(f"channel {pair}: {'active' if ch.active else 'inactive'}, expected {c.state}")
            if c.local_sat is not None and not in_range(ch.local_balance_sat, c.local_sat):
                ctx.fail(f"channel {pair}: local balance {ch.local_balance_sat} sat outside {range_text(c.local_sat)}")
            if c.remote_sat is not None and not in_range(ch.remote_balance_sat, c.remote_sat):
                ctx.fail(
                    f"channel {pair}: remote balance {ch.remote_balance_sat} sat outside {range_text(c.remote_sat)}"
                )
        checked.append(f"channel {pair}")
    for ev in step.events:
        checked.append(_check_events(ctx, ev))
    for rc in step.results:
        checked.append(_check_result(ctx, rc))
    ctx.result.detail = "checked " + ", ".join(checked)
