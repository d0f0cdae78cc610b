"""`lab bench bringup`: time from start to ready per topology, by phase, and
peak resident memory (VmHWM) of each LND process after a payment."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.harness import LightningTestHarness


def _vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_run(topology: str, runtime: str = "process") -> dict[str, Any]:
    phases: list[tuple[float, str]] = []
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        phases.append((time.monotonic() - t0, msg))

    lab = LightningTestHarness(topology, runtime=runtime, progress=progress)
    with lab:
        ready = time.monotonic() - t0
        # One payment through the first channel so memory includes a payment path.
        ch = lab.topology.channels[0] if lab.topology.channels else None
        if ch is not None:
            inv = lab.node(ch.to).add_invoice(1000)
            lab.node(ch.from_).pay_invoice(inv.payment_request)
        # In Docker the container's init is lnd itself, so the same /proc read works.
        mem = {name: _vm_hwm_kib(n.proc.pid) for name, n in lab.nodes.items() if n.proc}
    return {"ready_s": ready, "phases": phases, "lnd_peak_rss_kib": mem}


def run(
    topologies: list[str],
    *,
    runs: int,
    out_path: Path | None,
    runtimes: tuple[str, ...] = ("process",),
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    results = []
    for topo in topologies:
        # Runtimes alternate run by run, so load from other work on the
        # machine hits each alike.
        by_runtime: dict[str, list[dict[str, Any]]] = {r: [] for r in runtimes}
        for _ in range(runs):
            for runtime in runtimes:
                by_runtime[runtime].append(one_run(topo, runtime))
        for runtime, samples in by_runtime.items():
            results.append(_summarise(topo, runtime, samples, echo))
    if out_path is not None:
        meta = {"machine": f"{platform.machine()} {platform.node()}", "python": platform.python_version()}
        out_path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return results


def _summarise(topo: str, runtime: str, samples: list[dict[str, Any]], echo: Callable[[str], None]) -> dict[str, Any]:
    ready = [s["ready_s"] for s in samples]
    mem = [v for s in samples for v in s["lnd_peak_rss_kib"].values()]
    row = {
        "topology": topo,
        "runtime": runtime,
        "runs": len(samples),
        "ready_median_s": statistics.median(ready),
        "ready_min_s": min(ready),
        "ready_max_s": max(ready),
        "first_run_s": ready[0],
        "lnd_peak_rss_mib_max": max(mem) / 1024 if mem else 0,
        "lnd_peak_rss_mib_median": statistics.median(mem) / 1024 if mem else 0,
        "phases_first_run": samples[0]["phases"],
    }
    echo(
        f"{topo:8} {runtime:8} ready median {row['ready_median_s']:.1f}s (min {row['ready_min_s']:.1f}, "
        f"max {row['ready_max_s']:.1f}, first {row['first_run_s']:.1f}) over {len(samples)} run(s); "
        f"LND peak RSS median {row['lnd_peak_rss_mib_median']:.0f} MiB, max {row['lnd_peak_rss_mib_max']:.0f} MiB"
    )
    return row
