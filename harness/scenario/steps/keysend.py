"""``keysend``: spontaneous payments to a node's pubkey (no invoice)."""

from __future__ import annotations

import time

from harness.scenario.context import StepContext
from harness.scenario.model import KeysendStep
from harness.scenario.steps.expect import check_payment, check_rate, policy_fee_msat, record


def run(step: KeysendStep, ctx: StepContext) -> None:
    lab = ctx.lab
    for plan in ctx.planned:
        payer, payee = lab.node(plan.payer), lab.node(plan.payee)
        t0 = time.monotonic()
        res = payer.router.keysend(
            payee.pubkey, plan.amount_sat, fee_limit_sat=step.fee_limit_sat, timeout_s=step.timeout_s
        )
        latency = time.monotonic() - t0
        if res.succeeded:
            payer.wait_no_pending_htlcs()
        rec = record(plan.payer, plan.payee, plan.amount_sat, res, latency)
        if step.expect.fee_per_policy and res.succeeded:
            rec.expected_fee_msat = policy_fee_msat(lab, payer.describe_graph(), res.route, plan.amount_sat * 1000)
        ctx.result.payments.append(rec)
        check_payment(ctx, rec, step.expect)
    check_rate(ctx, ctx.result.payments, step.expect)
    ok = sum(p.status == "SUCCEEDED" for p in ctx.result.payments)
    ctx.result.detail = f"{ok}/{len(ctx.result.payments)} succeeded"
