"""`lab bench bringup`: time from start to ready per topology, chain backend,
start mode (cold, or from the network's snapshot) and runtime, by phase, and
peak resident memory (VmHWM) of each LND process after a payment and of the
chain backend.

Every combination runs in the same session, interleaved run by run, so load
from other work on the machine hits each alike. The snapshot a "snapshot"
sample starts from is built (and not timed) before the first sample.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import Any

from harness.harness import LightningTestHarness
from harness.snapshot import SnapshotStore
from harness.topology import load_topology

MODES = ("cold", "snapshot")


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_run(topology: str, runtime: str = "process", chain: str = "bitcoind", mode: str = "cold") -> dict[str, Any]:
    phases: list[tuple[float, str]] = []
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        phases.append((round(time.monotonic() - t0, 3), msg))

    lab = LightningTestHarness(topology, runtime=runtime, progress=progress, chain=chain, snapshot=mode == "snapshot")
    with lab:
        ready = time.monotonic() - t0
        # One payment through the first channel so memory includes a payment path.
        ch = lab.topology.channels[0] if lab.topology.channels else None
        if ch is not None:
            inv = lab.node(ch.to).add_invoice(1000)
            lab.node(ch.from_).pay_invoice(inv.payment_request)
        # In Docker the container's init is the node itself, so the same /proc read works.
        mem = {name: _vm_hwm_kib(n.proc.pid) for name, n in lab.nodes.items() if n.proc}
        chain_proc = lab.chain.proc
        chain_mem = _vm_hwm_kib(chain_proc.pid) if chain_proc is not None else 0
    return {"ready_s": ready, "phases": phases, "lnd_peak_rss_kib": mem, "chain_peak_rss_kib": chain_mem}


def _ensure_snapshot(topology: str, runtime: str, chain: str, echo: Callable[[str], None]) -> None:
    topo = load_topology(topology).model_copy(update={"chain": chain})
    if SnapshotStore(topo, runtime).manifest() is None:
        echo(f"building the {topology} snapshot ({chain}, {runtime}) before timing")
        with LightningTestHarness(topo, runtime=runtime, progress=lambda _m: None, snapshot=True):
            pass


def run(
    topologies: list[str],
    *,
    runs: int,
    out_path: Path | None,
    runtimes: tuple[str, ...] = ("process",),
    chains: tuple[str, ...] = ("bitcoind",),
    modes: tuple[str, ...] = ("cold",),
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    results = []
    for topo in topologies:
        # Snapshots exist for Bitcoin Core labs on processes only (see LightningTestHarness._snapshots).
        combos = [
            (r, c, m) for r, c, m in product(runtimes, chains, modes)
            if not (m == "snapshot" and (c == "btcd" or r == "docker"))
        ]
        for runtime, chain, mode in combos:
            if mode == "snapshot":
                _ensure_snapshot(topo, runtime, chain, echo)
        samples: dict[tuple[str, str, str], list[dict[str, Any]]] = {k: [] for k in combos}
        for _ in range(runs):
            for key in combos:
                samples[key].append(one_run(topo, *key))
        for (runtime, chain, mode), got in samples.items():
            results.append(_summarise(topo, runtime, chain, mode, got, echo))
    if out_path is not None:
        meta = {"machine": f"{platform.machine()} {platform.node()}", "python": platform.python_version()}
        out_path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return results


def _summarise(
    topo: str, runtime: str, chain: str, mode: str, samples: list[dict[str, Any]], echo: Callable[[str], None]
) -> dict[str, Any]:
    ready = [s["ready_s"] for s in samples]
    mem = [v for s in samples for v in s["lnd_peak_rss_kib"].values()]
    chain_mem = [s["chain_peak_rss_kib"] for s in samples if s["chain_peak_rss_kib"]]
    row = {
        "topology": topo,
        "runtime": runtime,
        "chain": chain,
        "mode": mode,
        "runs": len(samples),
        "ready_median_s": statistics.median(ready),
        "ready_min_s": min(ready),
        "ready_max_s": max(ready),
        "ready_all_s": [round(r, 2) for r in ready],
        "lnd_peak_rss_mib_max": max(mem) / 1024 if mem else 0,
        "lnd_peak_rss_mib_median": statistics.median(mem) / 1024 if mem else 0,
        "chain_peak_rss_mib_median": statistics.median(chain_mem) / 1024 if chain_mem else 0,
        "phases_first_run": samples[0]["phases"],
    }
    echo(
        f"{topo:8} {runtime:8} {chain:9} {mode:9} ready median {row['ready_median_s']:.1f}s "
        f"(min {row['ready_min_s']:.1f}, max {row['ready_max_s']:.1f}) over {len(samples)} run(s); "
        f"LND peak RSS median {row['lnd_peak_rss_mib_median']:.0f} MiB (max {row['lnd_peak_rss_mib_max']:.0f}); "
        f"{chain} {row['chain_peak_rss_mib_median']:.0f} MiB"
    )
    return row
