"""Node faults: restart, pause/resume, partition/heal.

Thin on purpose: the harness verbs do the work (``LndNode.stop/start/
wait_ready``, ``ManagedProcess.pause/resume``, ``LndNode.disconnect/connect``);
a richer fault API can replace them here without touching scenario files.
"""

from __future__ import annotations

from harness.errors import NodeError
from harness.scenario.context import StepContext
from harness.scenario.model import HealStep, PartitionStep, PauseStep, RestartStep, ResumeStep
from harness.scenario.steps.wait import wait_channels_active


def run_restart(step: RestartStep, ctx: StepContext) -> None:
    node = ctx.lab.node(step.node)
    node.stop()
    node.start()
    node.wait_ready(ctx.lab.chain.tip())
    # A restart is done when the node can route again: its peers reconnect
    # and re-enable the channels on both ends.
    wait_channels_active(ctx, node)
    ctx.result.detail = f"{step.node} restarted (pid {node.proc.pid if node.proc else '?'})"


def run_pause(step: PauseStep, ctx: StepContext) -> None:
    node = ctx.lab.node(step.node)
    if node.proc is None:
        raise NodeError(f"{step.node} has no process to pause")
    node.close_rpc()  # a frozen server would hang any RPC on the cached channel
    node.proc.pause()
    ctx.result.detail = f"{step.node} paused (SIGSTOP)"


def run_resume(step: ResumeStep, ctx: StepContext) -> None:
    node = ctx.lab.node(step.node)
    if node.proc is None:
        raise NodeError(f"{step.node} has no process to resume")
    node.proc.resume()
    node.wait_synced(ctx.lab.chain.tip())
    ctx.result.detail = f"{step.node} resumed"


def run_partition(step: PartitionStep, ctx: StepContext) -> None:
    ctx.lab.node(step.node).disconnect(ctx.lab.node(step.peer))
    ctx.result.detail = f"{step.node} disconnected from {step.peer}"


def run_heal(step: HealStep, ctx: StepContext) -> None:
    node, peer = ctx.lab.node(step.node), ctx.lab.node(step.peer)
    node.connect(peer)
    wait_channels_active(ctx, node)
    ctx.result.detail = f"{step.node} reconnected to {step.peer}"
