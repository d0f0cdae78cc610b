"""``pay``: the payee makes an invoice (seeded memo), the payer pays it; one record per payment."""

from __future__ import annotations

import time

from harness.scenario.context import StepContext
from harness.scenario.model import PayStep
from harness.scenario.steps.expect import check_payment, check_rate, policy_fee_msat, record


def run(step: PayStep, ctx: StepContext) -> None:
    lab = ctx.lab
    graph = None
    for n, plan in enumerate(ctx.planned, 1):
        payer, payee = lab.node(plan.payer), lab.node(plan.payee)
        inv = payee.add_invoice(plan.amount_sat, memo=plan.memo)
        t0 = time.monotonic()
        res = payer.router.pay_invoice(inv.payment_request, fee_limit_sat=step.fee_limit_sat, timeout_s=step.timeout_s)
        latency = time.monotonic() - t0
        if res.succeeded:
            # Settle before the next payment so balances and HTLC counts are final.
            payer.wait_no_pending_htlcs()
        rec = record(plan.payer, plan.payee, plan.amount_sat, res, latency, plan.memo)
        if step.expect.fee_per_policy and res.succeeded:
            graph = graph or payer.describe_graph()
            rec.expected_fee_msat = policy_fee_msat(lab, graph, res.route, plan.amount_sat * 1000)
        ctx.result.payments.append(rec)
        check_payment(ctx, rec, step.expect)
        if len(ctx.planned) > 1 and (n % 10 == 0 or n == len(ctx.planned)):
            ok = sum(p.status == "SUCCEEDED" for p in ctx.result.payments)
            ctx.progress(f"  {n}/{len(ctx.planned)} payments, {ok} succeeded")
    check_rate(ctx, ctx.result.payments, step.expect)
    ok = sum(p.status == "SUCCEEDED" for p in ctx.result.payments)
    ctx.result.detail = f"{ok}/{len(ctx.result.payments)} succeeded"
