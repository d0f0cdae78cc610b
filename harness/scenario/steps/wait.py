"""``wait``: poll until a network condition holds (never a fixed sleep)."""

from __future__ import annotations

from harness.node import LndNode
from harness.scenario.context import StepContext
from harness.scenario.model import WaitStep
from harness.wait import wait_for


def wait_channels_active(ctx: StepContext, node: LndNode, timeout_s: str | float = "CHANNEL_OPEN") -> None:
    """Until every channel of ``node`` is active on both ends."""
    by_pub = {n.pubkey: n for n in ctx.lab.nodes.values()}

    def all_active() -> bool:
        for ch in node.list_channels():
            if not ch.active:
                return False
            peer = by_pub.get(ch.remote_pubkey)
            if peer is not None and not any(
                c.channel_point == ch.channel_point and c.active for c in peer.list_channels()
            ):
                return False
        return True

    wait_for(
        all_active,
        what=f"{node.name}'s channels to be active on both ends",
        timeout_s=timeout_s,
        log=node.config.log_path,
        describe=lambda: ", ".join(
            f"{c.channel_point[:8]}:{'up' if c.active else 'down'}" for c in node.list_channels()
        ),
    )


def run(step: WaitStep, ctx: StepContext) -> None:
    lab = ctx.lab
    nodes = [lab.node(step.node)] if step.node else list(lab.nodes.values())
    if step.until == "channels_active":
        for n in nodes:
            wait_channels_active(ctx, n, step.timeout_s or "CHANNEL_OPEN")
    elif step.until == "no_pending_htlcs":
        for n in nodes:
            n.wait_no_pending_htlcs(timeout_s=step.timeout_s or "HTLC_RESOLVE")
    elif step.until == "graph_synced":
        lab.net.wait_graph_synced(timeout_s=step.timeout_s or "GRAPH_SYNC")
    else:
        tip = lab.chain.tip()
        for n in nodes:
            n.wait_synced(tip)
    ctx.result.detail = f"{step.until} on {', '.join(n.name for n in nodes)}"
