"""`lab bench chain-notify`: how LND learns of Bitcoin Core's blocks, ZMQ against RPC polling.

For each mode a line3 lab on bitcoind (processes, built cold: the flags differ per mode) mines
blocks one at a time and measures the time from ``generatetoaddress`` returning to every LND
node reporting the new tip as synced; then it idles and measures the CPU time bitcoind and the
three LND processes burn doing nothing (what polling costs). One run, modes interleaved block by
block is not possible (one mode per lab), so the labs run back to back on an otherwise idle machine.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.harness import LightningTestHarness
from harness.topology import load_topology

MODES: dict[str, list[str]] = {
    "zmq": [],
    # LND's own itests poll every 10 ms; 100 ms and 1 s bracket what a lab would pick.
    "rpcpolling-100ms": ["--bitcoind.rpcpolling", "--bitcoind.blockpollinginterval=100ms",
                         "--bitcoind.txpollinginterval=100ms"],
    "rpcpolling-1s": ["--bitcoind.rpcpolling", "--bitcoind.blockpollinginterval=1s", "--bitcoind.txpollinginterval=1s"],
}
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def one_mode(mode: str, *, blocks: int, idle_s: float) -> dict[str, Any]:
    base = load_topology("line3")
    topo = base.model_copy(update={"flags": [*base.flags, *MODES[mode]]})
    with LightningTestHarness(topo, chain="bitcoind", snapshot=False, progress=lambda _m: None) as lab:
        nodes = list(lab.nodes.values())
        latencies = []
        for _ in range(blocks):
            lab.chain.mine(1)
            tip = lab.chain.tip()
            t0 = time.monotonic()
            while not all((i := n.ln.get_info()).synced_to_chain and i.block_hash == tip[1] for n in nodes):
                time.sleep(0.005)
            latencies.append(time.monotonic() - t0)
        pids = {"bitcoind": lab.chain.proc.pid if lab.chain.proc else 0} | {n.name: n.proc.pid for n in nodes if n.proc}
        before = {k: _cpu_s(p) for k, p in pids.items()}
        time.sleep(idle_s)
        after = {k: _cpu_s(p) for k, p in pids.items()}
    idle = {k: (after[k] - before[k]) / idle_s for k in pids}
    return {
        "mode": mode,
        "blocks": blocks,
        "latency_median_ms": statistics.median(latencies) * 1000,
        "latency_max_ms": max(latencies) * 1000,
        "idle_cpu_bitcoind_pct": idle["bitcoind"] * 100,
        "idle_cpu_lnd_pct": sum(v for k, v in idle.items() if k != "bitcoind") * 100,
    }


def run(*, blocks: int, idle_s: float, out_path: Path | None, echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    rows = []
    for mode in MODES:
        row = one_mode(mode, blocks=blocks, idle_s=idle_s)
        echo(
            f"{mode:17} block -> every LND synced: median {row['latency_median_ms']:.0f} ms, max "
            f"{row['latency_max_ms']:.0f} ms over {blocks} blocks; idle CPU bitcoind "
            f"{row['idle_cpu_bitcoind_pct']:.1f}%, 3 LND {row['idle_cpu_lnd_pct']:.1f}%"
        )
        rows.append(row)
    if out_path is not None:
        out_path.write_text(json.dumps(rows, indent=2))
    return rows
