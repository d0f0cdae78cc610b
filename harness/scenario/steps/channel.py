"""``open_channel`` / ``close_channel``: the network verbs, which wait until the change is usable."""

from __future__ import annotations

from harness.errors import NodeError
from harness.scenario.context import StepContext
from harness.scenario.model import CloseChannelStep, OpenChannelStep


def run_open(step: OpenChannelStep, ctx: StepContext) -> None:
    cp = ctx.lab.open_channel(step.from_, step.to, step.capacity_sat, push_sat=step.push_sat, private=step.private)
    ctx.result.detail = f"{step.from_}->{step.to} {step.capacity_sat} sat at {cp}"


def run_close(step: CloseChannelStep, ctx: StepContext) -> None:
    a, b = ctx.lab.node(step.from_), ctx.lab.node(step.to)
    chans = [
        c
        for c in a.list_channels()
        if c.remote_pubkey == b.pubkey and (step.capacity_sat is None or c.capacity_sat == step.capacity_sat)
    ]
    if not chans:
        what = f" of {step.capacity_sat} sat" if step.capacity_sat else ""
        raise NodeError(f"{step.from_} has no open channel{what} with {step.to}")
    ch = chans[0]
    txid = ctx.lab.close_channel(step.from_, ch.channel_point, force=step.force)
    how = "force-closed" if step.force else "closed"
    ctx.result.detail = f"{how} {ch.channel_point} ({ch.capacity_sat} sat) in {txid[:16]}…"
