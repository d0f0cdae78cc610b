"""Fault injection, one API for both runtimes: node stop/start/restart,
kill -9, pause/resume (freeze), partition/heal, channel-database snapshot and
restore; chain faults: auto-mining, reorgs, fee changes, and stopping and
restarting the chain backend itself.

Caveat: btcd deletes its regtest database whenever it starts, so on a btcd
lab the chain backend cannot be restarted (``stop_chain`` says so); Bitcoin
Core keeps its chain and can.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import LabError, WaitTimeout
from harness.network import Network
from harness.node import LndNode
from harness.wait import wait_for

# LND will not finish starting while the chain tip is older than this.
MAX_TIP_AGE_S = 2 * 3600 - 300
# How long a block takes to reach LND after bitcoind restarted: LND's ZMQ
# client re-subscribes every --bitcoind.zmqreaddeadline (LND's default, 5 s).
ZMQ_RESUBSCRIBE_S = 6.0


class Faults:
    def __init__(self, net: Network):
        self.net = net
        self._partitioned: dict[str, list[str]] = {}

    # -- node lifecycle ----------------------------------------------------
    def stop_node(self, name: str) -> None:
        """Graceful stop; the node's data stays for ``start_node``."""
        self.net.node(name).stop()

    def kill_node(self, name: str) -> None:
        """kill -9: no shutdown, whatever was in flight is cut."""
        self.net.node(name).kill()

    def start_node(self, name: str, *, wait_active: bool = True) -> LndNode:
        """Start a stopped or killed node again and wait until it is synced and
        (with ``wait_active``) its channels with running peers are active again."""
        node = self.net.node(name)
        if node.proc is not None and node.proc.is_running():
            raise LabError(f"{name} is already running")
        if self.net.chain.tip_age() > MAX_TIP_AGE_S:
            self.net.chain.mine(1)
        assert node.proc is not None
        node.close_rpc()
        node.proc = self.net.runtime.restart(node.proc)
        node.wait_ready(self.net.chain.tip())
        if wait_active:
            self._wait_channels_active(node)
        return node

    def restart_node(self, name: str) -> LndNode:
        self.stop_node(name)
        return self.start_node(name)

    def pause_node(self, name: str) -> None:
        """Freeze the node (SIGSTOP / docker pause): it stops answering anything."""
        node = self.net.node(name)
        assert node.proc is not None
        node.proc.pause()

    def resume_node(self, name: str) -> None:
        node = self.net.node(name)
        assert node.proc is not None
        node.proc.resume()

    @contextmanager
    def paused(self, name: str) -> Iterator[None]:
        self.pause_node(name)
        try:
            yield
        finally:
            self.resume_node(name)

    # -- partitions -------------------------------------------------------
    def partition(self, name: str) -> list[str]:
        """Cut ``name`` off from all its peers. Both sides disconnect, which
        also drops each other from LND's persistent-peer list, so neither
        reconnects on its own until ``heal``. Returns the peers it had."""
        node = self.net.node(name)
        peers = [n for n in self.net.nodes.values() if n is not node and n.pubkey in node.ln.peers()]
        for peer in peers:
            for a, b in ((node, peer), (peer, node)):
                try:
                    a.ln.disconnect(b.pubkey)
                except Exception:
                    pass
        wait_for(
            lambda: not any(p.pubkey in node.ln.peers() for p in peers),
            what=f"{name} to have no peers",
            timeout_s="PEER_CONNECT",
        )
        self._partitioned[name] = [p.name for p in peers]
        return [p.name for p in peers]

    def heal(self, name: str) -> None:
        """Reconnect ``name`` to the peers ``partition`` cut it off from, and
        wait until its channels are active again."""
        node = self.net.node(name)
        for peer_name in self._partitioned.pop(name, []):
            node.connect(self.net.node(peer_name))
        self._wait_channels_active(node)

    def _wait_channels_active(self, node: LndNode) -> None:
        running = {n.pubkey for n in self.net.nodes.values() if n.proc and n.proc.is_running() and not n.proc.paused}
        wait_for(
            lambda: all(c.active for c in node.list_channels() if c.remote_pubkey in running),
            what=f"{node.name}'s channels with running peers to be active",
            timeout_s="CHANNEL_OPEN",
            log=node.config.log_path,
        )

    # -- channel database --------------------------------------------------
    def snapshot_node(self, name: str, dest: Path | None = None) -> Path:
        """Copy a stopped node's channel database (its ``graph`` directory)."""
        node = self.net.node(name)
        if node.proc is not None and node.proc.is_running():
            raise LabError(f"stop {name} before taking a snapshot of its channel database")
        dest = dest or self.net.lab_dir / "snapshots" / f"{name}-{time.strftime('%H%M%S')}-{time.monotonic_ns()}"
        shutil.copytree(node.config.graph_dir, dest)
        return dest

    def restore_node(self, name: str, snapshot: Path) -> None:
        """Put a snapshot back in place of a stopped node's channel database."""
        node = self.net.node(name)
        if node.proc is not None and node.proc.is_running():
            raise LabError(f"stop {name} before restoring its channel database")
        shutil.rmtree(node.config.graph_dir)
        shutil.copytree(snapshot, node.config.graph_dir)

    # -- chain faults ------------------------------------------------------
    @contextmanager
    def auto_mine(self, interval_s: float = 1.0) -> Iterator[None]:
        """Mine a block every ``interval_s`` seconds in the background."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval_s):
                try:
                    self.net.chain.mine(1)
                except Exception:
                    return

        t = threading.Thread(target=run, name="lab-auto-mine", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join(timeout=10)

    def reorg(self, depth: int = 1, *, new_blocks: int | None = None) -> list[str]:
        """Replace the last ``depth`` blocks with a longer branch (``new_blocks``,
        default depth + 1). Transactions of the dropped blocks go back to the
        mempool and are mined again in the new branch. Returns the new hashes."""
        chain = self.net.chain
        height, _ = chain.tip()
        if not 1 <= depth < height:
            raise LabError(f"reorg depth must be between 1 and {height - 1}, got {depth}")
        n = new_blocks if new_blocks is not None else depth + 1
        if n <= depth:
            raise LabError(f"a reorg needs a longer branch: new_blocks ({n}) must exceed depth ({depth})")
        chain.invalidate_block(chain.block_hash(height - depth + 1))
        hashes = chain.mine_branch(n)
        self.net.wait_synced()  # every running node follows the new branch
        return hashes

    # -- the chain backend itself ---------------------------------------------
    def stop_chain(self) -> None:
        """Stop the chain backend (its data kept). LND nodes keep running and
        lose their view of the chain until ``start_chain``."""
        chain = self.net.chain
        if not chain.keeps_data:
            raise LabError(
                f"{chain.kind} cannot be stopped and started again: btcd deletes its regtest chain at every start. "
                "Use a topology with `chain: bitcoind` for chain faults."
            )
        chain.stop()

    def start_chain(self) -> None:
        """Start the stopped chain backend on its data, then mine until every
        running LND node has followed it to the new tip.

        LND learns of blocks from bitcoind's ZMQ feed, and its ZMQ client
        (lightninglabs/gozmq) re-subscribes only every ``zmqreaddeadline`` (5 s)
        after the publisher went away: a block mined before that is never
        pushed to it, and LND catches up at the next one. So one block at a
        time until all nodes are on the tip."""
        chain = self.net.chain
        chain.restart()
        running = [n for n in self.net.nodes.values() if n.proc and n.proc.is_running()]

        def synced(node: LndNode, tip: tuple[int, str]) -> bool:
            # GetInfo's block hash is bitcoind's own answer; synced_to_chain is LND having processed it.
            info = node.ln.get_info()
            return info.synced_to_chain and info.block_hash == tip[1]

        def all_follow() -> bool:
            chain.mine(1)
            tip = chain.tip()
            try:
                wait_for(
                    lambda: all(synced(n, tip) for n in running), what="every node on the new tip",
                    timeout_s=ZMQ_RESUBSCRIBE_S,
                )
            except WaitTimeout:
                return False
            return True

        wait_for(all_follow, what=f"every node to follow {chain.kind} again after its restart", timeout_s="LND_SYNC")
        self.net.wait_synced()

    def restart_chain(self) -> None:
        self.stop_chain()
        self.start_chain()

    def set_fees(self, by_target: dict[str, int]) -> None:
        """Change the fee estimates every node's ``--fee.url`` serves (sat/kvB by target)."""
        self.net.set_fees(by_target)
