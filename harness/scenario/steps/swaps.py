"""``swap_in`` / ``swap_out``: submarine swaps through the scenario's LSP (``harness/swaps.py``).

The LSP is the scenario's ``lsp serve`` (its swap loop runs by default,
``LSP_SWAP_WATCH``); the step drives the client side with the scenario's signed
``LSPClient`` and records the final swap view in the step's ``outcome``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import WaitTimeout
from harness.scenario.context import StepContext, StepSkipped
from harness.scenario.model import SwapInStep, SwapOutStep
from harness.swaps import swap_in, swap_out
from harness.wait import wait_for


def _outcome(view: dict[str, Any], received: int) -> dict[str, Any]:
    return {
        "state": view["state"],
        "swap_id": view["swapId"],
        "invoice_amount": int(view["invoiceAmount"]),
        "onchain_amount": int(view["onchainAmount"]),
        "service_fee": int(view["serviceFee"]),
        "miner_fee": int(view["minerFee"]),
        "received_sat": received,
    }


def _gain(ctx: StepContext, read: Callable[[], int], before: int, want: int, what: str) -> int:
    """What arrived, once at least ``want`` did (balances lag the swap's state by a moment)."""
    try:
        wait_for(lambda: read() - before >= want, what=what, timeout_s="WALLET_BALANCE")
    except WaitTimeout:
        ctx.fail(f"{what}: only {read() - before:,} sat arrived")
    return read() - before


def run_in(step: SwapInStep, ctx: StepContext) -> None:
    if ctx.lsp is None:
        raise StepSkipped("no LSP runs in this scenario (set `lsp: <node>` on the scenario)")
    node = ctx.lab.node(step.node)
    before = node.balances().channel_local_sat
    view = swap_in(ctx.lab, ctx.lsp, step.node, step.amount_sat, timeout_s=step.timeout_s)
    got = _gain(
        ctx,
        lambda: node.balances().channel_local_sat,
        before,
        step.amount_sat,
        f"{step.node}'s channel balance to grow by {step.amount_sat:,} sat",
    )
    ctx.result.outcome = _outcome(view, got)
    ctx.result.detail = (
        f"swap-in {view['swapId']}: {view['state']}; {step.node} +{got:,} sat in channels, "
        f"locked {view['onchainAmount']:,} sat on-chain (fees {view['serviceFee']} + {view['minerFee']} sat)"
    )


def run_out(step: SwapOutStep, ctx: StepContext) -> None:
    if ctx.lsp is None:
        raise StepSkipped("no LSP runs in this scenario (set `lsp: <node>` on the scenario)")
    node = ctx.lab.node(step.node)
    before = node.balances().onchain_confirmed_sat
    view = swap_out(ctx.lab, ctx.lsp, step.node, step.amount_sat, node.new_address(), timeout_s=step.timeout_s)
    # The claim pays the lockup minus the claim's own miner fee: at least the swap's on-chain amount less a margin.
    got = _gain(
        ctx,
        lambda: node.balances().onchain_confirmed_sat,
        before,
        int(view["onchainAmount"]) - 5_000,
        f"{step.node}'s confirmed on-chain balance to grow by the claimed lockup",
    )
    ctx.result.outcome = _outcome(view, got)
    ctx.result.detail = (
        f"swap-out {view['swapId']}: {view['state']}; {step.node} paid {view['invoiceAmount']:,} sat, "
        f"claimed {got:,} sat on-chain (fees {view['serviceFee']} + {view['minerFee']} sat)"
    )
