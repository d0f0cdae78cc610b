"""`lab bench scale`: how bring-up grows with the number of nodes.

For each size, one generated topology (harness/topogen.py, same degree and
seed for every size) is brought up cold, one size after the other in the same
run: time to ready, retries, gossip-repair rounds, where the time goes (the
network's own phase clock: chain, start nodes, fund, open channels,
mine/announce, wait active, policies, graph sync) and memory: the peak of the
summed resident memory of the node processes (sampled every half second while
the network comes up) and the sum of their own peaks (VmHWM, an upper bound).
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.harness import LightningTestHarness
from harness.topogen import GenSpec, generate

PHASES = ("chain", "start nodes", "fund", "open channels", "mine/announce", "wait active", "policies", "graph sync")
SAMPLE_EVERY_S = 0.5


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class RssSampler:
    """Peak of the summed RSS of a lab's LND processes, sampled in the background."""

    def __init__(self, lab: LightningTestHarness):
        self.lab = lab
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def pids(self) -> list[int]:
        net = self.lab.network
        if net is None:
            return []
        return [n.proc.pid for n in list(net.nodes.values()) if n.proc is not None]

    def _run(self) -> None:
        # A sampling period, not a wait for a condition: stop() ends it at once.
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.peak_kib = max(self.peak_kib, sum(_status_kib(p, "VmRSS") for p in self.pids()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def one_size(spec: GenSpec, *, chain: str | None, echo: Callable[[str], None]) -> dict[str, Any]:
    topo = generate(spec)
    public = sum(1 for c in topo.channels if not c.private)
    echo(f"{spec.nodes} nodes, {len(topo.channels)} channels ({public} public): bringing up cold")
    lab = LightningTestHarness(topo, runtime="process", chain=chain, snapshot=False, progress=lambda _m: None)
    t0 = time.monotonic()
    with RssSampler(lab) as rss:
        try:
            lab.start(retries=lab.bringup_retries)
        finally:
            ready = time.monotonic() - t0
    try:
        net = lab.net
        rss.peak_kib = max(rss.peak_kib, sum(_status_kib(p, "VmRSS") for p in rss.pids()))
        hwm = sum(_status_kib(n.proc.pid, "VmHWM") for n in net.nodes.values() if n.proc is not None)
        chain_proc = net.chain.proc
        row = {
            "nodes": spec.nodes,
            "channels": len(topo.channels),
            "public_channels": public,
            "ready_s": round(ready, 2),
            "retries": lab.retries_used,
            "repair_rounds": lab.repair_rounds,
            "phases_s": {k: round(net.phases.get(k, 0.0), 2) for k in PHASES},
            "lnd_rss_peak_sum_mib": round(rss.peak_kib / 1024),
            "lnd_hwm_sum_mib": round(hwm / 1024),
            "chain_rss_mib": round(_status_kib(chain_proc.pid, "VmHWM") / 1024) if chain_proc else 0,
            "load_avg_1m_at_ready": round(os.getloadavg()[0], 2),
            "kept": [str(p) for p in lab.retried_dirs],
        }
    finally:
        lab.stop()
    return row


def run(
    sizes: list[int],
    *,
    degree: float,
    seed: int,
    private_fraction: float = 0.0,
    chain: str | None = None,
    out_path: Path | None = None,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        spec = GenSpec(nodes=n, degree=min(degree, n - 1), seed=seed, private_fraction=private_fraction)
        row = one_size(spec, chain=chain, echo=echo)
        rows.append(row)
        phases = ", ".join(f"{k} {v:.1f}" for k, v in row["phases_s"].items())
        echo(f"  ready in {row['ready_s']:.1f}s, {row['retries']} retries, {row['repair_rounds']} repair rounds; "
             f"LND RSS peak sum {row['lnd_rss_peak_sum_mib']} MiB; {phases}")
    if out_path is not None:
        meta = {"machine": f"{platform.machine()} {os.cpu_count()} cpu", "python": platform.python_version(),
                "degree": degree, "seed": seed, "private_fraction": private_fraction, "chain": chain or "bitcoind"}
        out_path.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = ["nodes", "channels", "ready s", "retries", "repair rounds", *PHASES, "LND RSS peak sum MiB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["nodes"]), str(r["channels"]), f"{r['ready_s']:.1f}", str(r["retries"]), str(r["repair_rounds"]),
                 *(f"{r['phases_s'][p]:.1f}" for p in PHASES), str(r["lnd_rss_peak_sum_mib"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
