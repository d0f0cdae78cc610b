"""`lab soak`: bring topologies up cold and tear them down, again and again,
and count what went wrong: bring-ups that needed a retry (the harness's safety
net, ``LightningTestHarness.start(retries=...)``), rounds of gossip repair,
bring-ups that failed outright, and the time to ready.

Cold means no snapshot: every bring-up starts the chain, starts and funds the
nodes, opens the channels and waits for the gossip, which is where the flakes
live. Topologies take turns (round 1: each topology once, round 2: ...), so a
``--max-minutes`` bound cuts them alike. A retried or failed bring-up keeps
its lab directory (the harness does); the soak lists their paths.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import LabError
from harness.harness import LightningTestHarness
from harness.topology import Topology


@dataclass
class Sample:
    topology: str
    ready_s: float
    retries: int
    repair_rounds: int
    phases: dict[str, float]
    failed: str = ""  # the error, when the bring-up failed even after its retries
    kept: list[str] = field(default_factory=list)  # lab directories kept (retried or failed attempts)


@dataclass
class Summary:
    topology: str
    bringups: int
    retried: int
    failed: int
    repair_rounds: int
    p50_s: float
    p95_s: float
    max_s: float
    kept: list[str]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def one_bringup(topology: Topology, *, chain: str | None, runtime: str = "process") -> Sample:
    """One cold bring-up and teardown of ``topology``."""
    lab = LightningTestHarness(topology, runtime=runtime, chain=chain, snapshot=False, progress=lambda _m: None)
    t0 = time.monotonic()
    try:
        lab.start(retries=lab.bringup_retries)
    except LabError as exc:
        last = lab.existing_lab_dir
        kept = [*lab.retried_dirs, *([last] if last is not None and last.exists() else [])]
        return Sample(topology.name, time.monotonic() - t0, lab.retries_used, lab.repair_rounds,
                      {}, failed=str(exc).splitlines()[0], kept=[str(p) for p in kept])
    ready = time.monotonic() - t0
    phases = dict(lab.net.phases)
    try:
        return Sample(topology.name, ready, lab.retries_used, lab.repair_rounds, phases,
                      kept=[str(p) for p in lab.retried_dirs])
    finally:
        lab.stop()


def summarise(name: str, samples: list[Sample]) -> Summary:
    ok = [s.ready_s for s in samples if not s.failed]
    return Summary(
        topology=name,
        bringups=len(samples),
        retried=sum(1 for s in samples if s.retries),
        failed=sum(1 for s in samples if s.failed),
        repair_rounds=sum(s.repair_rounds for s in samples),
        p50_s=statistics.median(ok) if ok else math.nan,
        p95_s=percentile(ok, 95) if ok else math.nan,
        max_s=max(ok) if ok else math.nan,
        kept=[p for s in samples for p in s.kept],
    )


def run(
    topologies: list[Topology],
    *,
    count: int,
    max_minutes: float,
    chain: str | None = None,
    out_path: Path | None = None,
    echo: Callable[[str], None] = print,
    bringup: Callable[..., Sample] | None = None,
) -> list[Summary]:
    """Up to ``count`` rounds, each bringing every topology up once, until
    ``max_minutes`` have passed (a bring-up under way is finished).
    ``bringup`` (default ``one_bringup``) runs one bring-up and teardown."""
    bringup = bringup or one_bringup
    deadline = time.monotonic() + max_minutes * 60
    samples: dict[str, list[Sample]] = {t.name: [] for t in topologies}
    rounds = 0
    for i in range(count):
        if time.monotonic() >= deadline:
            echo(f"--max-minutes {max_minutes:g} reached after {rounds} of {count} round(s)")
            break
        for topo in topologies:
            if time.monotonic() >= deadline:
                break
            s = bringup(topo, chain=chain)
            samples[topo.name].append(s)
            how = f"FAILED: {s.failed}" if s.failed else f"ready in {s.ready_s:.1f}s"
            extra = "".join([
                f", {s.retries} retry" if s.retries else "",
                f", {s.repair_rounds} repair round(s)" if s.repair_rounds else "",
            ])
            echo(f"[{i + 1}/{count}] {topo.name}: {how}{extra}")
        rounds = i + 1
    summaries = [summarise(name, got) for name, got in samples.items()]
    if out_path is not None:
        out_path.write_text(json.dumps({
            "count": count, "max_minutes": max_minutes, "chain": chain, "rounds": rounds,
            "summaries": [asdict(s) for s in summaries],
            "samples": {name: [asdict(s) for s in got] for name, got in samples.items()},
        }, indent=2))
    return summaries


def needs_attention(summaries: list[Summary]) -> bool:
    """A soak passes only when no bring-up needed a retry or failed."""
    return any(s.retried or s.failed for s in summaries)


def as_rows(summaries: list[Summary]) -> list[dict[str, Any]]:
    def secs(v: float) -> str:
        return "-" if math.isnan(v) else f"{v:.1f}"

    return [
        {"topology": s.topology, "bring-ups": str(s.bringups), "retried": str(s.retried), "failed": str(s.failed),
         "repair rounds": str(s.repair_rounds), "p50 s": secs(s.p50_s), "p95 s": secs(s.p95_s),
         "max s": secs(s.max_s)}
        for s in summaries
    ]
