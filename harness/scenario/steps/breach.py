"""``breach``: a cheater broadcasts a revoked commitment; the victim (or its watchtower) sweeps it.

The harness does the work (``lab.breach`` -> ``harness/breach.py``); the step
records its figures in the step's ``outcome`` so ``expect: results`` can check
them (close type, what the victim gained, who swept)."""

from __future__ import annotations

from dataclasses import asdict

from harness.scenario.context import StepContext
from harness.scenario.model import BreachStep


def run(step: BreachStep, ctx: StepContext) -> None:
    res = ctx.lab.breach(step.cheater, step.victim, tower=step.tower)
    ctx.result.outcome = {
        **asdict(res),
        "victim_gain_sat": res.victim_onchain_after_sat - res.victim_onchain_before_sat,
    }
    ctx.result.detail = (
        f"{res.close_type}: breach {res.breach_txid[:12]}, justice {res.justice_txid[:12]} by {res.swept_by}; "
        f"{step.victim} +{res.victim_onchain_after_sat - res.victim_onchain_before_sat:,} sat on-chain, "
        f"{step.cheater} lost {res.cheater_loss_sat:,} sat"
    )
