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


def one_run(topology: str) -> dict[str, Any]:
    phases: list[tuple[float, str]] = []
    t0 = time.monotonic()

    def progress(msg: str) -> None:
        phases.append((time.monotonic() - t0, msg))

    lab = LightningTestHarness(topology, progress=progress)
    with lab:
        ready = time.monotonic() - t0
        # One payment through the first channel so memory includes a payment path.
        ch = lab.topology.channels[0] if lab.topology.channels else None
        if ch is not None:
            inv = lab.node(ch.to).add_invoice(1000)
            lab.node(ch.from_).pay_invoice(inv.payment_request)
        mem = {name: _vm_hwm_kib(n.proc.pid) for name, n in lab.nodes.items() if n.proc}
    return {"ready_s": ready, "phases": phases, "lnd_peak_rss_kib": mem}


def run(topologies: list[str], *, runs: int, out_path: Path | None, echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    results = []
    for topo in topologies:
        samples = [one_run(topo) for _ in range(runs)]
        ready = [s["ready_s"] for s in samples]
        mem = [v for s in samples for v in s["lnd_peak_rss_kib"].values()]
        row = {
            "topology": topo,
            "runs": runs,
            "ready_median_s": statistics.median(ready),
            "ready_min_s": min(ready),
            "ready_max_s": max(ready),
            "first_run_s": ready[0],
            "lnd_peak_rss_mib_max": max(mem) / 1024 if mem else 0,
            "lnd_peak_rss_mib_median": statistics.median(mem) / 1024 if mem else 0,
            "phases_first_run": samples[0]["phases"],
        }
        results.append(row)
        echo(
            f"{topo:8} ready median {row['ready_median_s']:.1f}s (min {row['ready_min_s']:.1f}, "
            f"max {row['ready_max_s']:.1f}, first {row['first_run_s']:.1f}) over {runs} run(s); "
            f"LND peak RSS median {row['lnd_peak_rss_mib_median']:.0f} MiB, max {row['lnd_peak_rss_mib_max']:.0f} MiB"
        )
    if out_path is not None:
        meta = {"machine": f"{platform.machine()} {platform.node()}", "python": platform.python_version()}
        out_path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return results
