"""``mine``: mine blocks and wait until every running node has them."""

from __future__ import annotations

from harness.scenario.context import StepContext
from harness.scenario.model import MineStep


def run(step: MineStep, ctx: StepContext) -> None:
    ctx.lab.mine(step.blocks)
    ctx.result.detail = f"{step.blocks} block(s), tip {ctx.lab.chain.tip()[0]}"
