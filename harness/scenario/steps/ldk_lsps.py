"""``lsps2_receive`` and ``lsps1_order``: LDK's own LSPS clients (ldk-node, lightning-liquidity)
buy liquidity from the LSP, as the interop tests do (tests/lab/lsps/test_ldk_interop.py).

The LSPS service runs against the LSP node for the step (``harness.lsps_lsp.LspsRunner``, the
lab's fee menu); the client is an ldk node whose topology entry names that LSP. The expected fee
comes from the menu the LSP serves on the wire (asked by the payer) and bLIP-52's formula.
"""

from __future__ import annotations

import time
from typing import Any

from harness.blip52 import cheapest_fee_msat
from harness.errors import LabError
from harness.lsps_client import served_menu
from harness.lsps_lsp import LspsRunner
from harness.rpc.router import PaymentResult
from harness.scenario.context import StepContext
from harness.scenario.model import Lsps1OrderStep, Lsps2ReceiveStep
from harness.scenario.steps.expect import record
from harness.wait import wait_for
from lncore.versions import LDK_NODE_VERSION

LDK_CLIENT = f"ldk-node {LDK_NODE_VERSION} (lightning-liquidity)"


def _lsp_channels(ctx: StepContext, client: str, lsp: str) -> set[str]:
    lsp_pk = ctx.lab.node(lsp).pubkey
    return {c.channel_point or "" for c in ctx.lab.ldk(client).list_channels() if c.counterparty_node_id == lsp_pk}


def _record(ctx: StepContext, payer: str, payee: str, amount_sat: int, paid: PaymentResult, latency: float) -> None:
    rec = record(payer, payee, amount_sat, paid, latency)
    rec.expected_status = "SUCCEEDED"
    ctx.result.payments.append(rec)


def run_lsps2(step: Lsps2ReceiveStep, ctx: StepContext) -> None:
    lab = ctx.lab
    client, payer = lab.ldk(step.client), lab.node(step.payer)
    before = _lsp_channels(ctx, step.client, step.lsp)
    payer.connect(lab.node(step.lsp))
    with LspsRunner(lab.node(step.lsp), lab.lab_dir / f"lsps-step{ctx.index}.db", probe=payer):
        menu = served_menu(payer, lab.node(step.lsp).pubkey)
        inv = client.jit_invoice(step.amount_msat, memo=f"{ctx.scenario.name} lsps2",
                                 max_total_lsp_fee_msat=step.max_fee_msat)
        t0 = time.monotonic()
        paid = payer.pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=step.timeout_s)
        latency = time.monotonic() - t0
        got = client.wait_received(inv.payment_hash) if paid.succeeded else None
    _record(ctx, step.payer, step.client, step.amount_msat // 1000, paid, latency)
    if lab.chain.mempool():
        lab.mine(1)  # confirm the zero-conf funding so later steps start on a quiet chain
    if got is None:
        ctx.fail(f"{step.payer} could not pay {step.client}'s JIT invoice: {paid.failure_reason}")
        return
    # The cheapest served entry valid for this size: what LDK's client picks.
    formula = cheapest_fee_msat(menu, step.amount_msat)
    received = got.amount_msat or 0
    fee = got.counterparty_skimmed_fee_msat or 0
    new = _lsp_channels(ctx, step.client, step.lsp) - before
    ctx.result.outcome = {
        "client_implementation": LDK_CLIENT,
        "amount_msat": step.amount_msat,
        "received_msat": received,
        "lsp_fee_msat": fee,
        "formula_fee_msat": formula,
        "fee_matches_formula": fee == formula and received == step.amount_msat - formula,
        "new_channel": bool(new),
    }
    ctx.result.detail = (
        f"{step.client} (LDK) received {received:,} msat of {step.amount_msat:,}; {step.lsp} kept {fee:,} msat "
        f"(formula {formula:,}); {'new JIT channel' if new else 'existing channel'}"
    )


def run_lsps1(step: Lsps1OrderStep, ctx: StepContext) -> None:
    lab = ctx.lab
    client, payer = lab.ldk(step.client), lab.node(step.payer)
    before = _lsp_channels(ctx, step.client, step.lsp)
    payer.connect(lab.node(step.lsp))
    with LspsRunner(lab.node(step.lsp), lab.lab_dir / f"lsps-step{ctx.index}.db", probe=payer):
        order = client.lsps1_request(step.lsp_balance_sat, 0, announce_channel=step.announce_channel)
        bolt11 = order["payment"]["bolt11"]
        t0 = time.monotonic()
        paid = payer.pay_invoice(bolt11["invoice"], fee_limit_sat=0, timeout_s=step.timeout_s)
        latency = time.monotonic() - t0
        _record(ctx, step.payer, step.lsp, int(bolt11["order_total_sat"]), paid, latency)
        if not paid.succeeded:
            ctx.fail(f"{step.payer} could not pay the order's invoice: {paid.failure_reason}")
            return

        def with_channel() -> dict[str, Any] | None:
            o = client.lsps1_status(order["order_id"])
            return o if o["channel"] is not None else None

        try:
            done: dict[str, Any] = wait_for(with_channel, what=f"{step.client} to see the ordered channel",
                                            timeout_s=step.timeout_s)
        except LabError as exc:
            ctx.fail(str(exc))
            return
    if lab.chain.mempool():
        lab.mine(1)
    new = _lsp_channels(ctx, step.client, step.lsp) - before
    ch = client.channel(next(iter(new))) if len(new) == 1 else None
    if ch is not None:
        client.wait_can_send_over(ch.channel_point or "", timeout_s=step.timeout_s)
    ctx.result.outcome = {
        "client_implementation": LDK_CLIENT,
        "order_id": order["order_id"],
        "fee_total_sat": int(bolt11["fee_total_sat"]),
        "order_total_sat": int(bolt11["order_total_sat"]),
        "payment_state": done["payment"]["bolt11"]["state"],
        "channel_capacity_sat": ch.capacity_sat if ch else 0,
        "channel_usable": ch is not None,
        "channel_announced": bool(ch and ch.is_announced),
    }
    ctx.result.detail = (
        f"{step.client} (LDK) ordered {step.lsp_balance_sat:,} sat for {int(bolt11['order_total_sat']):,} sat; "
        f"{step.lsp} opened {ch.capacity_sat if ch else 0:,} sat ({'usable' if ch else 'no channel'})"
    )
