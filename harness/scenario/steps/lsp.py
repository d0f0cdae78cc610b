"""``lsp``: a signed call on the LSP's client API; skipped when the scenario runs no LSP.

``receive`` and ``send`` move real money through the LSP's node and record a
payment like ``pay`` steps do, so they appear in the report's latency and
fee figures."""

from __future__ import annotations

import json
import time
from typing import Any

from harness.blip52 import opening_fee_msat
from harness.scenario.context import StepContext, StepSkipped
from harness.scenario.model import LspStep
from harness.scenario.results import PaymentRecord
from harness.scenario.steps.expect import in_range, range_text
from harness.wait import wait_for


def _receive(step: LspStep, ctx: StepContext) -> str:
    assert ctx.lsp is not None and step.payer is not None and step.amount_sat is not None
    client = ctx.lsp
    inv = client.create_invoice(step.amount_sat, f"{ctx.scenario.name} step {ctx.index + 1}")
    payer = ctx.lab.node(step.payer)
    t0 = time.monotonic()
    res = payer.pay_invoice(inv["paymentRequest"], fee_limit_sat=1000)
    rec = PaymentRecord(
        step.payer,
        f"lsp:{ctx.scenario.lsp}",
        step.amount_sat,
        res.status,
        res.fee_msat,
        round(time.monotonic() - t0, 4),
        "" if res.succeeded else res.failure_reason,
        hops=len(res.route),
        expected_status="SUCCEEDED",
    )
    ctx.result.payments.append(rec)
    if not res.succeeded:
        ctx.fail(f"{step.payer} could not pay the client's LSP invoice: {res.failure_reason}")
        return "not paid"
    # Settled at the node is not yet credited by the LSP: its invoice watcher must see it.
    wait_for(
        lambda: client.get_invoice(inv["invoiceId"])["status"] == "settled",
        what=f"the LSP to mark invoice {inv['invoiceId']} settled",
        timeout_s="LSP_CREDIT",
        describe=lambda: str(client.get_invoice(inv["invoiceId"])["status"]),
    )
    return f"{step.payer} paid the client's invoice of {step.amount_sat:,} sat; settled at the LSP"


def _send(step: LspStep, ctx: StepContext) -> str:
    assert ctx.lsp is not None and step.payee is not None and step.amount_sat is not None
    inv = ctx.lab.node(step.payee).add_invoice(step.amount_sat, memo=f"{ctx.scenario.name} step {ctx.index + 1}")
    t0 = time.monotonic()
    p = ctx.lsp.send_payment(inv.payment_request, max_fee_sat=100, timeout_s=60)
    status = str(p["status"]).upper()
    rec = PaymentRecord(
        f"lsp:{ctx.scenario.lsp}",
        step.payee,
        step.amount_sat,
        status,
        int(p.get("fee") or 0) * 1000,
        round(time.monotonic() - t0, 4),
        p.get("failureReason") or "",
        expected_status="SUCCEEDED",
    )
    ctx.result.payments.append(rec)
    if status != "SUCCEEDED":
        ctx.fail(f"the LSP payment to {step.payee} ended {status}: {p.get('failureReason')}")
    return f"client paid {step.payee} {step.amount_sat:,} sat (fee {p.get('fee')} sat): {status}"


def _jit_buy(step: LspStep, ctx: StepContext) -> str:
    assert ctx.lsp is not None and step.client is not None and step.amount_sat is not None
    node = ctx.lab.node(step.client)
    size = step.amount_sat * 1000
    got = ctx.lsp.buy_jit(node.pubkey, host=node.p2p_address, payment_size_msat=size)
    params = got["openingFeeParams"]
    formula = opening_fee_msat(size, int(params["min_fee_msat"]), int(params["proportional"]))
    ctx.result.outcome = {
        "jit_channel_scid": got["jitChannelScid"],
        "payment_size_msat": size,
        "opening_fee_msat": got["openingFeeMsat"],
        "formula_fee_msat": formula,
        "fee_matches_formula": got["openingFeeMsat"] == formula,
    }
    if got["openingFeeMsat"] != formula:
        ctx.fail(f"the LSP quoted {got['openingFeeMsat']:,} msat for the JIT channel; bLIP-52's formula gives {formula:,}")
    return (
        f"JIT channel bought for {step.client}: SCID {got['jitChannelScid']}, opening fee "
        f"{got['openingFeeMsat']:,} msat for {size:,} msat (formula {formula:,})"
    )


def run(step: LspStep, ctx: StepContext) -> None:
    if ctx.lsp is None:
        raise StepSkipped("no LSP runs in this scenario (set `lsp: <node>` on the scenario)")
    from lsp.client import LSPAPIError

    client = ctx.lsp
    calls: dict[str, Any] = {
        "me": client.me,
        "balance": client.balance,
        "channel_balance": client.channel_balance,
        "liquidity_rates": client.liquidity_rates,
        "create_invoice": lambda: client.create_invoice(step.amount_sat or 1000, f"scenario {ctx.scenario.name}"),
        "receive": lambda: _receive(step, ctx),
        "send": lambda: _send(step, ctx),
        "jit_buy": lambda: _jit_buy(step, ctx),
        "dashboard": client.dashboard,
    }
    try:
        answer = calls[step.call]()
    except LSPAPIError as exc:
        if step.expect_error is not None and exc.code == step.expect_error:
            ctx.result.detail = f"{step.call}: {exc.status} {exc.code} as expected"
            return
        ctx.fail(f"{step.call}: {exc}")
        return
    if step.expect_error is not None:
        ctx.fail(f"{step.call}: succeeded, expected error {step.expect_error}")
    if step.call == "balance" and step.balance_sat is not None:
        bal = int(answer["balance"])
        if not in_range(bal, step.balance_sat):
            ctx.fail(f"client balance {bal:,} sat outside {range_text(step.balance_sat)}")
    if isinstance(answer, dict):
        # The report is shared: keep credentials (apiKey, secrets) out of it.
        answer = {k: v for k, v in answer.items() if "key" not in k.lower() and "secret" not in k.lower()}
    # JSON, as the API answered it (not Python's repr), cut to a line in the report.
    shown = json.dumps(answer, sort_keys=True, default=str)[:160]
    ctx.result.detail = answer if isinstance(answer, str) else f"{step.call}: {shown}"
