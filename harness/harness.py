"""``LightningTestHarness``: one lab, from a topology to a live network and back.

Use it as a context manager. It cleans up even when start-up fails; on
success the lab directory is removed, on failure it is kept (logs, data) and
its path is printed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.breach import Breach, BreachResult
from harness.chain import CHAINS, ChainBackend
from harness.errors import BringupRetried, InvariantError, LabError, ProcessDied, WaitTimeout
from harness.faults import Faults
from harness.ldk import LdkNode
from harness.network import Network, Progress
from harness.node import LightningNode, LndNode
from harness.runtime import RUNTIMES
from harness.runtime.base import Runtime
from harness.runtime.process import ProcessRuntime
from harness.snapshot import SnapshotStore
from harness.toolchain.build import find_toolchain
from harness.topology import Policy, Topology, load_topology

# How long an in-flight HTLC may take to settle before the invariant check calls it left pending.
HTLC_SETTLE_GRACE_S = 5.0


def resolve_runtime(name: str) -> str:
    """``auto``: Docker when a daemon answers, local processes otherwise."""
    if name != "auto":
        return name
    from harness.runtime.docker_client import docker_available

    return "docker" if docker_available() else "process"


# Log lines at these levels are failures unless a pattern below explains them.
ERROR_MARKERS = ("[ERR]", "[CRT]")
# Benign errors LND logs in normal regtest operation (peer churn at shutdown,
# gossip races while a network is being built).
BENIGN_ERRORS = (
    "unable to read message from peer",
    "unable to write message to peer",
    "Unable to process channel update",
    "Received ChannelUpdate for unknown channel",
    "Unable to send error to peer",
    "FundingManager shutting down",
    "RPC server shutting down",
    "connection reset by peer",
    "use of closed network connection",
    "broken pipe",
    "EOF",
    "server is shutting down",
    "unable to start peer",
    # A channel update written while LND deletes and re-adds an option-scid-alias edge (at the 6th
    # confirmation, or the 1st of a zero-conf channel): LND rejects it and keeps rejecting that peer's
    # updates for that channel (see Network._mine_to_announce, whose order keeps bring-ups clear of
    # it). Logged, not failed here: what it costs is one policy in one graph, and
    # Network.wait_graph_synced names it when a graph the lab waits on never converges.
    "UpdateEdgePolicy faild: edge not found",
    "UpdateEdgePolicy failed: edge not found",
    "unable to add channel: edge not found",
    # The same race seen from LND's topology subscribers: a policy update whose edge is not in the
    # graph (yet) when the notification is built (CI, 2026-11-30, on c3 while a star5 channel opened).
    "unable to update topology change notification: unable fetch channel edge: edge not found",
    # LND's broadcaster re-broadcasts its transactions at start-up: btcd answers one it already
    # has with no error, Bitcoin Core one already mined with "already in block chain" (RPC -27).
    "Broadcast attempt failed: <nil>",
    "Broadcast attempt failed: Transaction already in block chain",
    "Broadcast attempt failed: Transaction outputs already in utxo set",
    # Logged by LND's shutdown and by its connection manager when a
    # restarted peer redials (node stop/start faults).
    "dead epoch stream in BestBlockTracker",
    "CMGR: Unknown connid",
    # A failed payment is an outcome returned to the caller, not a fault.
    "CRTR: No route found for payment",
    "CRTR: Payment ",
    # A client closing a streaming RPC on purpose: the lab cancels
    # CloseChannel's stream once the closing tx is broadcast, the LSP and
    # lab clients stop interceptor, acceptor, subscription streams.
    "rpc error: code = Canceled desc = context canceled",
    "[/lnrpc.Lightning/SubscribeCustomMessages]: context canceled",
    "CHAC: Received an error: rpc error: code = Canceled",
)


def runs_root() -> Path:
    """Where labs live (``LAB_RUNS_DIR``; default: <tmp>/lightning-lab)."""
    env = os.environ.get("LAB_RUNS_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "lightning-lab"


def new_lab_dir(topology_name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    name = f"{topology_name}-{stamp}-{worker + '-' if worker else ''}{secrets.token_hex(3)}"
    path = runs_root() / name
    path.mkdir(parents=True, exist_ok=False)
    return path


def _stderr_progress(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


class LightningTestHarness:
    """A live regtest network shaped by a topology.

    >>> with LightningTestHarness("line3") as lab:
    ...     inv = lab.node("carol").add_invoice(1000)
    ...     assert lab.node("alice").pay_invoice(inv.payment_request).succeeded
    """

    def __init__(
        self,
        topology: str | Path | Topology = "line3",
        *,
        runtime: str = "process",
        lab_dir: Path | None = None,
        keep: bool | None = None,
        tie_to_parent: bool = True,
        progress: Progress | None = None,
        bringup_retries: int = 1,
        chain: str | None = None,
        snapshot: bool | None = None,
    ):
        if runtime not in RUNTIMES:
            raise LabError(f"unknown runtime {runtime!r} (expected one of: {', '.join(RUNTIMES)})")
        # ``chain`` (or LAB_CHAIN) runs the topology on another chain backend than it names.
        chain = chain or os.environ.get("LAB_CHAIN") or None
        if chain is not None and chain not in CHAINS:
            raise LabError(f"unknown chain backend {chain!r} (expected one of: {', '.join(CHAINS)})")
        self.topology = topology if isinstance(topology, Topology) else load_topology(topology)
        if chain is not None and chain != self.topology.chain:
            if self.topology.has_ldk and chain != "bitcoind":
                raise LabError(f"topology {self.topology.name!r} has ldk nodes, which need chain bitcoind "
                               f"(ldk-node has no {chain} chain source); asked for chain {chain!r}")
            # The same network on another chain backend (pytest --lab-chain, lab up --chain).
            self.topology = self.topology.model_copy(update={"chain": chain})
        self.runtime_name = resolve_runtime(runtime)
        self._lab_dir = lab_dir
        self.keep = keep
        self.progress: Progress = progress or _stderr_progress
        self.tie_to_parent = tie_to_parent
        self.runtime: Runtime | None = None
        self.network: Network | None = None
        self.failed = False
        self._log_offsets: dict[Path, int] = {}
        self._faults: Faults | None = None
        self._expected_errors: list[str] = []
        # ``with LightningTestHarness(...)`` retries a stalled bring-up this many times (see start).
        self.bringup_retries = bringup_retries
        # Start from a saved snapshot of this network (bitcoind labs; see harness/snapshot.py).
        # Default on; LAB_SNAPSHOT=0 builds every network from scratch.
        self.snapshot = snapshot if snapshot is not None else os.environ.get("LAB_SNAPSHOT", "1") != "0"
        # What start() went through: the kept directories of attempts that were retried, and the
        # gossip-repair rounds of those attempts (``repair_rounds`` adds the live network's).
        self.retried_dirs: list[Path] = []
        self._earlier_repair_rounds = 0

    @property
    def retries_used(self) -> int:
        """How many bring-ups start() threw away and began again (0 on a clean start)."""
        return len(self.retried_dirs)

    @property
    def repair_rounds(self) -> int:
        """Rounds of gossip repair over every attempt (see ``Network.wait_graph_synced``)."""
        return self._earlier_repair_rounds + (self.network.repair_rounds if self.network is not None else 0)

    # -- lifecycle ---------------------------------------------------------
    @property
    def lab_dir(self) -> Path:
        if self._lab_dir is None:
            self._lab_dir = new_lab_dir(self.topology.name)
        return self._lab_dir

    @property
    def existing_lab_dir(self) -> Path | None:
        """The lab directory if one was made (``lab_dir`` makes one); after a failed start, the kept one."""
        return self._lab_dir

    def _make_runtime(self) -> Runtime:
        if self.runtime_name == "docker":
            from harness.runtime.docker import DockerRuntime

            return DockerRuntime(self.lab_dir, progress=self.progress, owned=self.tie_to_parent)
        return ProcessRuntime(tie_to_parent=self.tie_to_parent)

    def start(self, *, retries: int = 0) -> LightningTestHarness:
        """Bring the network up. With ``retries``, a bring-up that times out
        or loses a node process is tried again on a fresh network (the failed
        one's directory is kept): a safety net for stalls no step of the test
        is about, counted in ``retries_used`` (``retried_dirs``: the kept
        directories) and warned as ``BringupRetried``; ``lab soak`` fails on
        any. Nothing after start is retried."""
        for attempt in range(retries + 1):
            try:
                return self._start_once()
            except (WaitTimeout, ProcessDied) as exc:
                if attempt == retries:
                    raise
                kept = self._lab_dir
                if kept is not None:
                    self.retried_dirs.append(kept)
                self._earlier_repair_rounds = self.repair_rounds
                why = f"bring-up failed ({str(exc).splitlines()[0]}); logs kept in {kept}"
                self.progress(f"{why}; trying once more with a fresh network")
                warnings.warn(f"lab {self.topology.name}: {why}; retried on a fresh network", BringupRetried, stacklevel=2)
                self._lab_dir, self.network, self.runtime, self.failed = None, None, None, False
        raise AssertionError("unreachable")

    def _start_once(self) -> LightningTestHarness:
        toolchain = find_toolchain()
        try:
            self.runtime = self._make_runtime()
            self.network = Network(self.topology, self.lab_dir, toolchain, self.runtime)
            self.network.start(self.progress, snapshots=self._snapshots())
        except BaseException:
            self.failed = True
            self.stop()
            raise
        return self

    def _snapshots(self) -> SnapshotStore | None:
        """Where this network's snapshot lives, when it can have one: btcd cannot keep a chain,
        and in Docker the LND databases would hold the container IPs of the network that built
        the snapshot, which other labs' containers may hold now (the private daemon runs without
        iptables, so lab networks can reach each other): a restored node would redial them."""
        if not self.snapshot or self.topology.chain != "bitcoind" or self.runtime_name != "process" \
                or self.topology.has_ldk:
            # (LDK nodes: not saved in snapshots yet; such labs build cold.)
            return None
        return SnapshotStore(self.topology, self.runtime_name)

    def stop(self, *, failed: bool | None = None) -> None:
        """Stop every process; remove the lab dir unless it failed or ``keep``."""
        if failed is not None:
            self.failed = self.failed or failed
        try:
            try:
                if self.network is not None:
                    self.network.stop()
            finally:
                if self.runtime is not None:
                    self.runtime.close()
        finally:
            keep = self.keep if self.keep is not None else self.failed
            if self._lab_dir is not None and self._lab_dir.exists():
                if keep:
                    self.progress(f"kept the lab directory (logs, data): {self._lab_dir}")
                else:
                    shutil.rmtree(self._lab_dir, ignore_errors=True)

    def __enter__(self) -> LightningTestHarness:
        return self.start(retries=self.bringup_retries)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(failed=exc is not None)

    # -- access ------------------------------------------------------------
    @property
    def net(self) -> Network:
        if self.network is None:
            raise LabError("the lab is not started")
        return self.network

    def node(self, name: str) -> LndNode:
        return self.net.node(name)

    def ldk(self, name: str) -> LdkNode:
        return self.net.ldk(name)

    def lightning_node(self, name: str) -> LightningNode:
        return self.net.lightning_node(name)

    @property
    def nodes(self) -> dict[str, LndNode]:
        return self.net.nodes

    @property
    def chain(self) -> ChainBackend:
        return self.net.chain

    def mine(self, n: int = 1) -> list[str]:
        return self.net.mine(n)

    def open_channel(self, a: str, b: str, capacity_sat: int, **kw: Any) -> str:
        return self.net.open_channel(a, b, capacity_sat, **kw)

    def close_channel(self, a: str, channel_point: str, *, force: bool = False) -> str:
        return self.net.close_channel(a, channel_point, force=force)

    def send_onchain(self, address: str, amount_sat: int, *, confirm: bool = True) -> str:
        txid = self.net.send_from_faucet([(address, amount_sat)])
        if confirm:
            self.mine(1)
        return txid

    # -- faults (both runtimes) -------------------------------------------
    @property
    def faults(self) -> Faults:
        if self._faults is None:
            self._faults = Faults(self.net)
        return self._faults

    def stop_node(self, name: str) -> None:
        self.faults.stop_node(name)

    def start_node(self, name: str, *, wait_active: bool = True) -> LndNode:
        return self.faults.start_node(name, wait_active=wait_active)

    def restart_node(self, name: str) -> LndNode:
        return self.faults.restart_node(name)

    def kill_node(self, name: str) -> None:
        self.faults.kill_node(name)

    def pause_node(self, name: str) -> None:
        self.faults.pause_node(name)

    def resume_node(self, name: str) -> None:
        self.faults.resume_node(name)

    def partition(self, name: str) -> list[str]:
        return self.faults.partition(name)

    def heal(self, name: str) -> None:
        self.faults.heal(name)

    def reorg(self, depth: int = 1) -> list[str]:
        return self.faults.reorg(depth)

    def stop_chain(self) -> None:
        self.faults.stop_chain()

    def start_chain(self) -> None:
        self.faults.start_chain()

    def restart_chain(self) -> None:
        self.faults.restart_chain()

    def set_fees(self, by_target: dict[str, int]) -> None:
        self.faults.set_fees(by_target)

    def breach(self, cheater: str, victim: str, *, tower: str | None = None) -> BreachResult:
        """Make ``cheater`` broadcast a revoked state; see harness/breach.py."""
        # Expected here: a closed channel's late gossip proof, and a justice tx
        # broadcast again after its outputs were already swept (by the tower,
        # or by the victim's own earlier justice tx: LND's breach arbiter
        # re-broadcasts, seen under the Docker runtime). Also a peer that
        # reconnects while the breached channel is being closed: the victim
        # cannot resend its channel_reestablish because the channel's closed
        # summary is not written until the justice tx confirms (seen in CI
        # with the watchtower recipe).
        self.expect_log_errors(
            "unable to store the proof for short_chan_id",
            "Unable to broadcast justice tx: transaction rejected: output already spent",
            "unable to fetch channel sync messages for peer",
        )
        return Breach(self.net, self.faults).run(cheater, victim, tower=tower)

    def expect_log_errors(self, *patterns: str) -> None:
        """Error log lines containing any of ``patterns`` are expected by the
        current test and do not count against the lab's invariants."""
        self._expected_errors.extend(patterns)

    def policy(self, base_fee_msat: int = 1000, fee_rate_ppm: int = 1, cltv_delta: int = 80) -> Policy:
        return Policy(base_fee_msat=base_fee_msat, fee_rate_ppm=fee_rate_ppm, cltv_delta=cltv_delta)

    # -- invariants (checked after each test by the pytest plugin) ----------
    def mark_logs(self) -> None:
        """Remember where each node log ends, so later checks read only new
        lines; also forgets the previous test's expected errors."""
        self._expected_errors.clear()
        for n in self.net.nodes.values():
            p = n.config.log_path
            self._log_offsets[p] = p.stat().st_size if p.exists() else 0

    def new_error_lines(self) -> list[str]:
        out: list[str] = []
        for n in self.net.nodes.values():
            p = n.config.log_path
            if not p.exists():
                continue
            with p.open("rb") as fh:
                fh.seek(self._log_offsets.get(p, 0))
                for raw in fh:
                    line = raw.decode("utf-8", "replace").rstrip()
                    allowed = (*BENIGN_ERRORS, *self._expected_errors)
                    if any(m in line for m in ERROR_MARKERS) and not any(b in line for b in allowed):
                        out.append(f"{n.name}: {line}")
        return out

    def _pending_htlcs(self) -> list[str]:
        problems: list[str] = []
        for n in self.net.nodes.values():
            if n.proc is None or not n.proc.is_running() or n.proc.paused:
                continue
            for ch in n.list_channels():
                if ch.pending_htlcs:
                    problems.append(f"{n.name}: {len(ch.pending_htlcs)} HTLC(s) pending on {ch.channel_point}")
        for ldk in self.net.ldk_nodes.values():
            if ldk.proc is not None and ldk.proc.is_running() and (msat := ldk.pending_htlc_msat()):
                problems.append(f"{ldk.name}: {msat} msat of HTLCs pending")
        return problems

    def check_invariants(self) -> None:
        """No HTLC left pending on any channel; no unexplained error log lines.

        An HTLC is "left" when it is still there after ``HTLC_SETTLE_GRACE_S``: the sender of a
        multi-hop payment learns the preimage before the hops behind it have finished their own
        commitment exchange (milliseconds), and a stuck HTLC stays for minutes."""
        deadline = time.monotonic() + HTLC_SETTLE_GRACE_S
        problems = self._pending_htlcs()
        while problems and time.monotonic() < deadline:
            time.sleep(0.2)
            problems = self._pending_htlcs()
        problems += [f"error logged: {line}" for line in self.new_error_lines()[:20]]
        if problems:
            raise InvariantError("lab invariants violated after the test:\n  " + "\n  ".join(problems))
