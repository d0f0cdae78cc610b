"""`lab bench hosted`: a hosted Lightning node from ``POST /api/nodes`` to running with its channels usable.

star5 comes up (``--runtime`` process or docker), ``lsp serve`` runs on the hub with hosted nodes on
the Docker daemon (``harness.lsp_process.hosting_env``: the lab's LND image, the lab's Bitcoin Core
as the nodes' chain), one client is onboarded and funded by an invoice paid from c1. Each run:

* t0 just before ``POST /api/nodes`` asking for two 500,000 sat channels from the hub (one public,
  one private: the private one gives the node's invoices a route hint before anything is announced);
* **running**: ``GET /api/nodes/{id}`` polled until ``running`` (container and volume created, LND
  started, wallet created and unlocked, synced, client macaroon baked, both channels opened in one
  batch by the hub: the funding transaction is in the mempool);
* **usable**: blocks mined one at a time, as the chain would confirm the funding transaction: the
  next block only once the node has seen the last one and still counts confirmations to go (or when
  nothing moved for ``BLOCK_PATIENCE_S``); then both channels active as the node itself reports them
  through its gRPC with the returned macaroon and certificate, an invoice of the node with a route
  hint (``private=True``), and that invoice paid from c1 through the hub;
* memory, once usable (running, two channels, one payment received): ``GET /api/nodes/{id}/metrics``
  ``memoryBytes`` (Docker's ``memory_stats.usage``, page cache included), the working set (usage
  less inactive file pages, what ``docker stats`` shows) and the peak since start (cgroup v1);
* phases: from the container's log (Docker's timestamps) and its create/start times, where the
  seconds to running went;
* then (untimed) deleted with its funds swept to a c3 address, blocks mined until ``deleted``, so
  the tier's limit of live nodes and the hub's wallet never pile up.

Every container and volume of this LSP instance is removed at the end (hosted nodes outlive the LSP
by design), their logs saved in the lab directory first, which is kept when the bench fails.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.harness import LightningTestHarness
from harness.hosted import dial, remove_instance
from harness.lsp_process import LspServer, free_port, hosting_env, lsp_env
from harness.runtime import docker_client
from harness.wait import timeout, wait_for

TOPOLOGY = "star5"
MAX_RUNS = 20
CAPACITY = 500_000
CHANNELS = [{"capacity": CAPACITY}, {"capacity": CAPACITY, "isPrivate": True}]
# scid-alias like every node of star5 (the hub opens the private channel with an alias).
FEATURES = ["scid-alias"]
MONTHLY_FEE = 1_000
TX_FEE = 100
BASE_FEE, FEE_RATE = 1_000, 0.001  # the opening fee: base + capacity x rate
MIN_CHANNEL_SIZE = 100_000
INVOICE_SAT = 5_000
TARGET_USABLE_S = 15.0
POLL_S = 0.1
BLOCK_PATIENCE_S = 3.0  # mine anyway when the channels have not moved for this long since the last block
MIB = 1024 * 1024

# What the hosted node's LND logs on its way to running and usable (the first line matching each).
LOG_MARKERS: tuple[tuple[str, str], ...] = (
    ("lnd: started", r"Version Info"),
    ("lnd: TLS certificate written", r"Done generating TLS certificates"),
    ("lnd: waiting for the wallet (unlocker up)", r"Waiting for wallet encryption password"),
    ("lnd: wallet created (InitWallet)", r"Opened wallet"),
    ("lnd: waiting for chain sync", r"Waiting for chain backend to finish sync"),
    ("lnd: synced to chain", r"Chain backend is fully synced"),
    ("lnd: p2p listening", r"Server listening on"),
    ("lnd: LSP connected", r"New inbound connection"),
    ("lnd: funding request received", r"Recv'd fundingRequest"),
    ("lnd: funding signed", r"sending FundingSigned"),
    ("lnd: channel confirmed (first)", r"is now active: ChannelID"),
    ("lnd: channel link up (first)", r"New channel active"),
    ("lnd: HTLC settled", r"settling htlc"),
)


@dataclass
class Sample:
    run: int
    node_id: str
    running_s: float  # t0 -> GET says running
    usable_s: float  # t0 -> both channels active on the node and an invoice of it paid from c1
    blocks: int  # mined between running and usable
    memory_mib: float | None  # /metrics memoryBytes (cgroup usage, page cache included)
    working_set_mib: float | None  # usage less inactive file pages
    peak_mib: float | None  # the container's peak usage since it started (cgroup v1 max_usage): wallet creation's scrypt
    server_provision_s: float | None  # the LSP's own createdAt -> runningAt
    delete_s: float = 0.0
    delete_blocks: int = 0
    # seconds after t0, what happened when (Docker's create/start, LND's log, the API, the chain)
    phases: dict[str, float] = field(default_factory=dict)


_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")


def _iso(value: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 time (Docker's nanoseconds cut to microseconds; no zone: UTC)."""
    m = _TIME_RE.match(value or "")
    if m is None or m.group(1).startswith("0001-"):
        return None
    head, frac, tz = m.groups()
    tz = "+00:00" if tz in (None, "Z") else tz
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6]}{tz}").timestamp()


def _container(daemon: Any, instance: str, node_id: str) -> Any:
    return daemon.containers.get(f"lsp-{instance}-{node_id}")


def _log_phases(container: Any, t0_wall: float) -> dict[str, float]:
    """Seconds after t0 of Docker's create and start and of the first log line matching each marker."""
    out: dict[str, float] = {}
    created = _iso(container.attrs.get("Created"))
    started = _iso(container.attrs.get("State", {}).get("StartedAt"))
    if created is not None:
        out["container created"] = created - t0_wall
    if started is not None:
        out["container started"] = started - t0_wall
    lines = container.logs(timestamps=True).decode(errors="replace").splitlines()
    for name, pattern in LOG_MARKERS:
        rx = re.compile(pattern)
        for line in lines:
            stamp, _, text = line.partition(" ")
            if rx.search(text):
                when = _iso(stamp)
                if when is not None:
                    out[name] = when - t0_wall
                break
    return out


def _memory(container: Any) -> tuple[float | None, float | None]:
    """The container's working set (usage less inactive file pages) and its peak usage so far
    (cgroup v1's ``max_usage``; None on cgroup v2), in MiB."""
    stats = container.stats(stream=False) or {}
    mem = stats.get("memory_stats") or {}
    usage, peak = mem.get("usage"), mem.get("max_usage")
    inner = mem.get("stats") or {}
    inactive = inner.get("inactive_file", inner.get("total_inactive_file", 0))
    return (float(usage - inactive) / MIB if usage else None), (float(peak) / MIB if peak else None)


def _poll(fn: Callable[[], Any], *, what: str, timeout_name: str) -> Any:
    """``fn()`` every POLL_S until it returns something truthy (a tighter poll than wait_for's)."""
    deadline = time.monotonic() + timeout(timeout_name)
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def _one_run(
    i: int, lab: LightningTestHarness, client: Any, daemon: Any, instance: str, where: Path, echo: Callable[[str], None]
) -> Sample:
    marks: dict[str, float] = {}
    t0_wall, t0 = time.time(), time.perf_counter()

    def mark(name: str) -> float:
        marks[name] = time.perf_counter() - t0
        return marks[name]

    created = client.create_node({"alias": f"bench-{i}", "features": FEATURES, "channels": CHANNELS})
    mark("POST answered")
    node_id = created["nodeId"]

    def running() -> dict[str, Any] | None:
        got = client.get_node(node_id)
        if got["state"] in ("failed", "deleted"):
            raise RuntimeError(f"run {i}: hosted node {node_id} is {got['state']}: {got['reason']}")
        return dict(got) if got["state"] == "running" else None

    node = _poll(running, what=f"hosted node {node_id} to be running", timeout_name="HOSTED_NODE")
    running_s = mark("running (GET)")
    hosted = dial(node, where)
    rpc = hosted.ln
    chain = lab.chain
    blocks = 0
    try:
        for txid in {p.split(":")[0] for p in node["channelPoints"]}:
            chain.wait_for_tx(txid)
        mark("funding tx in mempool")
        last_block = -1e9

        def active() -> bool:
            nonlocal blocks, last_block
            if len(rpc.list_channels(active_only=True)) >= len(CHANNELS):
                return True
            pending = rpc.pending_channels().pending_open_channels
            to_go = max((int(p.confirmations_until_active) for p in pending), default=0)
            seen_tip = rpc.get_info().block_height >= chain.height()
            stalled = time.perf_counter() - last_block > BLOCK_PATIENCE_S
            if (to_go > 0 and seen_tip) or stalled:
                chain.mine(1)
                blocks += 1
                last_block = time.perf_counter()
                mark(f"block {blocks} mined")
            return False

        _poll(active, what=f"both channels active on hosted node {node_id}", timeout_name="CHANNEL_OPEN")
        mark("channels active")

        def hinted() -> str | None:
            inv = rpc._call("AddInvoice", rpc.s.ln.Invoice(value=INVOICE_SAT, memo="bench", private=True))
            pr = str(inv.payment_request)
            return pr if rpc.decode_invoice(pr).route_hints else None

        pr = _poll(hinted, what="an invoice of the hosted node with a route hint", timeout_name="GRAPH_SYNC")
        mark("invoice with route hint")
        paid = lab.node("c1").pay_invoice(pr, fee_limit_sat=100, wait_settled=False)
        if not paid.succeeded:
            raise RuntimeError(f"run {i}: paying the hosted node from c1 failed: {paid}")
        usable_s = mark("paid from c1")
    finally:
        hosted.close()

    metrics = client.node_metrics(node_id)
    container = _container(daemon, instance, node_id)
    working_set, peak = _memory(container)
    phases = _log_phases(container, t0_wall)
    created_at, running_at = _iso(node.get("createdAt")), _iso(node.get("runningAt"))
    if running_at is not None:
        phases["running (LSP's runningAt)"] = running_at - t0_wall
    phases.update(marks)
    memory = metrics.get("memoryBytes")
    sample = Sample(
        run=i,
        node_id=node_id,
        running_s=running_s,
        usable_s=usable_s,
        blocks=blocks,
        memory_mib=float(memory) / MIB if memory else None,
        working_set_mib=working_set,
        peak_mib=peak,
        server_provision_s=(running_at - created_at) if created_at is not None and running_at is not None else None,
        phases=dict(sorted(phases.items(), key=lambda kv: kv[1])),
    )

    # Untimed: delete it (channels closed cooperatively, funds swept to c3), mining until it is gone.
    d0 = time.perf_counter()
    client.delete_node(node_id, sweep_address=lab.node("c3").ln.new_address())

    def deleted() -> bool:
        got = client.get_node(node_id)
        if got["state"] == "deleted":
            return True
        lab.mine(1)
        sample.delete_blocks += 1
        time.sleep(0.5)
        return False

    wait_for(deleted, what=f"hosted node {node_id} to be deleted", timeout_s="CHANNEL_CLOSE")
    sample.delete_s = time.perf_counter() - d0
    echo(
        f"run {i}: running {sample.running_s:5.1f} s, usable {sample.usable_s:5.1f} s ({blocks} block(s)), "
        f"memory {_mib(sample.memory_mib)} MiB (working set {_mib(sample.working_set_mib)}, peak {_mib(sample.peak_mib)}); "
        f"deleted in {sample.delete_s:.1f} s ({sample.delete_blocks} blocks)"
    )
    return sample


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def run(
    *,
    runs: int = 5,
    runtime: str = "process",
    image: str | None = None,
    out_path: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``runs`` hosted nodes one after another on one star5 lab; ``image``: the LND image they run
    (default the lab's, built with the ``integration`` tag: cranked-down scrypt)."""
    from lsp.client import LSPClient

    runs = max(1, min(runs, MAX_RUNS))
    instance = f"bench-{uuid.uuid4().hex[:8]}"
    daemon = docker_client.client()
    samples: list[Sample] = []
    # per run: the first period, the two opening fees and the transaction fee of the payment received
    funding = runs * (MONTHLY_FEE + len(CHANNELS) * (BASE_FEE + int(CAPACITY * FEE_RATE)) + TX_FEE) + 10_000
    with LightningTestHarness(TOPOLOGY, runtime=runtime) as lab, tempfile.TemporaryDirectory() as tmp:
        server: LspServer | None = None
        try:
            hosting = hosting_env(lab, instance=instance, **({"LSP_HOSTING_IMAGE": image} if image else {}))
            image = hosting["LSP_HOSTING_IMAGE"]
            env = lsp_env(
                lab.node("hub"),
                f"sqlite:///{lab.lab_dir / 'lsp-bench-hosted.db'}",
                **hosting,
                LSP_HOSTING_MONTHLY_FEE=str(MONTHLY_FEE),
                LSP_HOSTING_TRANSACTION_FEE=str(TX_FEE),
                LSP_CHANNEL_BASE_FEE=str(BASE_FEE),
                LSP_CHANNEL_FEE_RATE=str(FEE_RATE),
                LSP_MIN_CHANNEL_SIZE=str(MIN_CHANNEL_SIZE),
                LSP_DEFAULT_REQUESTS_PER_MINUTE="100000",
            )
            server = LspServer(env, free_port(), lab.lab_dir / "lsp-bench-hosted.log")
            server.start()
            creds = server.onboard(f"bench-{uuid.uuid4().hex[:6]}", requestsPerMinute=100_000)
            with LSPClient(server.base_url, creds.api_key, creds.api_secret) as client:
                fund = client.create_invoice(funding, "bench funding")
                if not lab.node("c1").pay_invoice(fund["paymentRequest"], fee_limit_sat=1000).succeeded:
                    raise RuntimeError("funding the bench client from c1 failed")
                wait_for(
                    lambda: client.get_invoice(fund["invoiceId"])["status"] == "settled",
                    what="the bench funding to be credited",
                    timeout_s="PAYMENT",
                )
                for i in range(1, runs + 1):
                    samples.append(_one_run(i, lab, client, daemon, instance, Path(tmp), echo))
        finally:
            if server is not None:
                server.stop()
            kept = lab.existing_lab_dir
            remove_instance(instance, kept if kept is not None and kept.exists() else None)
            daemon.close()

    usable = [s.usable_s for s in samples]
    mem = [s.memory_mib for s in samples if s.memory_mib is not None]
    ws = [s.working_set_mib for s in samples if s.working_set_mib is not None]
    peaks = [s.peak_mib for s in samples if s.peak_mib is not None]
    median_usable = statistics.median(usable)
    result: dict[str, Any] = {
        "benchmark": "hosted",
        "topology": TOPOLOGY,
        "runtime": runtime,
        "image": image,
        "runs": runs,
        "channels": CHANNELS,
        "samples": [asdict(s) for s in samples],
        "median_running_s": statistics.median(s.running_s for s in samples),
        "median_usable_s": median_usable,
        "median_blocks": statistics.median(s.blocks for s in samples),
        "median_memory_mib": statistics.median(mem) if mem else None,
        "median_working_set_mib": statistics.median(ws) if ws else None,
        "median_peak_mib": statistics.median(peaks) if peaks else None,
        "target_usable_s": TARGET_USABLE_S,
        "met": median_usable <= TARGET_USABLE_S,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "load_avg_1m": os.getloadavg()[0],
    }
    if out_path is not None:
        out_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def table(result: dict[str, Any]) -> str:
    """The per-run markdown table docs/BENCHMARKS.md records, the medians and the target check."""
    lines = [
        "| run | running s | usable s | blocks mined | memory MiB | working set MiB | peak MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in result["samples"]:
        lines.append(
            f"| {s['run']} | {s['running_s']:.1f} | {s['usable_s']:.1f} | {s['blocks']} "
            f"| {_mib(s['memory_mib'])} | {_mib(s['working_set_mib'])} | {_mib(s['peak_mib'])} |"
        )
    lines.append(
        f"| **median** | **{result['median_running_s']:.1f}** | **{result['median_usable_s']:.1f}** "
        f"| {result['median_blocks']:g} | {_mib(result['median_memory_mib'])} | {_mib(result['median_working_set_mib'])} "
        f"| {_mib(result['median_peak_mib'])} |"
    )
    verdict = "PASS" if result["met"] else "MISS"
    lines.append(
        f"\ntarget: median usable <= {result['target_usable_s']:g} s: {verdict} "
        f"({result['median_usable_s']:.1f} s, {result['runtime']} runtime, image {result['image']})"
    )
    return "\n".join(lines)


def phases_table(result: dict[str, Any]) -> str:
    """Seconds after POST per phase and run (where the time to running goes)."""
    names: list[str] = []
    for s in result["samples"]:
        for name in s["phases"]:
            if name not in names:
                names.append(name)
    order = {n: statistics.median(s["phases"][n] for s in result["samples"] if n in s["phases"]) for n in names}
    names.sort(key=lambda n: order[n])
    head = "| phase (s after POST) | " + " | ".join(f"run {s['run']}" for s in result["samples"]) + " | median |"
    lines = [head, "|---" * (len(result["samples"]) + 2) + "|"]
    for n in names:
        cells = [f"{s['phases'][n]:.2f}" if n in s["phases"] else "-" for s in result["samples"]]
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {order[n]:.2f} |")
    return "\n".join(lines)
