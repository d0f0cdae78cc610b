"""One module per step kind; ``RUNNERS`` maps a step's ``kind`` to its runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.scenario.context import StepContext
from harness.scenario.steps import (
    breach,
    channel,
    expect,
    hosted,
    jit,
    keysend,
    ldk_lsps,
    lsp,
    mine,
    node,
    pay,
    swaps,
    wait,
)

Runner = Callable[[Any, StepContext], None]

RUNNERS: dict[str, Runner] = {
    "pay": pay.run,
    "keysend": keysend.run,
    "open_channel": channel.run_open,
    "close_channel": channel.run_close,
    "mine": mine.run,
    "wait": wait.run,
    "restart": node.run_restart,
    "pause": node.run_pause,
    "resume": node.run_resume,
    "partition": node.run_partition,
    "heal": node.run_heal,
    "lsp": lsp.run,
    "breach": breach.run,
    "jit_receive": jit.run,
    "lsps2_receive": ldk_lsps.run_lsps2,
    "lsps1_order": ldk_lsps.run_lsps1,
    "swap_in": swaps.run_in,
    "swap_out": swaps.run_out,
    "hosted_node": hosted.run,
    "expect": expect.run,
}
