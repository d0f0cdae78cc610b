"""``lsp``: a signed call on the LSP's client API; skipped when the scenario runs no LSP."""

from __future__ import annotations

from typing import Any

from harness.scenario.context import StepContext, StepSkipped
from harness.scenario.model import LspStep


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
    ctx.result.detail = f"{step.call}: {str(answer)[:160]}"
