"""The live network built from a topology: chain, nodes, funds, channels.

Verbs here do the whole job and assert it (the way LND's own harness does):
``open_channel`` connects, opens, mines and waits until the channel is active
on both ends; ``close_channel`` mines until the funds are back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.chain import ChainBackend, feeservice, make_chain
from harness.chain.faucet import FAUCET_COINBASES, Faucet, Utxo
from harness.errors import LabError, NodeError, ProcessDied, WaitTimeout
from harness.ldk import LdkConfig, LdkNode
from harness.node import BASE_FLAGS, LightningNode, LndConfig, LndNode
from harness.runtime.base import NodeHandle, Runtime
from harness.runtime.ports import claim, free_port, unclaim
from harness.snapshot import Manifest, SavedChannel, SnapshotStore
from harness.toolchain.build import Toolchain
from harness.topology import Channel, Policy, Topology
from harness.wait import timeout, wait_for

Progress = Callable[[str], None]

# Confirmations LND needs before it announces a public channel.
ANNOUNCE_CONFS = 6
# Seconds to wait for gossip to converge before re-sending what LND dropped.
REPAIR_AFTER_S = 8.0
CHAN_CONFS_FLAG = "--bitcoin.defaultchanconfs="
# LND's --numgraphsyncpeers default (lnd/server.go: defaultMinPeers).
LND_DEFAULT_SYNC_PEERS = 3
# What LND's gossiper logs (at error level) when it puts a channel update in its reject cache
# after failing to write it (discovery/gossiper.go, handleChanUpdate).
REJECTED_UPDATE = "Update edge for short_chan_id("


@dataclass
class OpenedChannel:
    spec: Channel
    channel_point: str


def _parallel(fn: Callable[[Any], Any], items: list[Any], *, workers: int = 8) -> list[Any]:
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


# Threads for waits that poll many nodes (RPC round trips, no work of ours): a 50-node lab
# otherwise spends its time queueing behind eight threads.
WAIT_WORKERS = 24


class Network:
    """The topology's chain backend and LND nodes, in one runtime."""

    def __init__(self, topology: Topology, lab_dir: Path, toolchain: Toolchain, runtime: Runtime):
        self.topology = topology
        self.lab_dir = lab_dir
        self.toolchain = toolchain
        self.runtime = runtime
        self.faucet = Faucet()
        self.backend: ChainBackend | None = None
        self.fee_proc: NodeHandle | None = None
        self.fee_port = 0
        # LND nodes (``node()``) and LDK nodes (``ldk()``); ``lightning_node()`` finds either.
        self.nodes: dict[str, LndNode] = {}
        self.ldk_nodes: dict[str, LdkNode] = {}
        self.channels: list[OpenedChannel] = []
        self._utxos: list[Utxo] = []
        # A snapshot's P2P ports this network listens on (released for the next lab at stop).
        self._claimed_ports: list[int] = []
        # Seconds per bring-up phase ("start nodes", "graph sync", ...), for `lab bench scale`.
        self.phases: dict[str, float] = {}
        # Rounds of gossip repair wait_graph_synced needed (0 when LND converged by itself).
        self.repair_rounds = 0

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.monotonic() - t0

    # -- access ------------------------------------------------------------
    def node(self, name: str) -> LndNode:
        """The LND node ``name`` (its typed gRPC handles and verbs)."""
        try:
            return self.nodes[name]
        except KeyError:
            if name in self.ldk_nodes:
                raise LabError(f"{name!r} is an ldk node: use ldk({name!r}) for it, or lightning_node({name!r}) "
                               "for the verbs every implementation has") from None
            raise self._unknown(name) from None

    def ldk(self, name: str) -> LdkNode:
        """The LDK node ``name``."""
        try:
            return self.ldk_nodes[name]
        except KeyError:
            if name in self.nodes:
                raise LabError(f"{name!r} is an lnd node: use node({name!r})") from None
            raise self._unknown(name) from None

    def lightning_node(self, name: str) -> LightningNode:
        """Node ``name`` whatever its implementation, through the verbs they share."""
        if name in self.ldk_nodes:
            return self.ldk_nodes[name]
        if name in self.nodes:
            return self.nodes[name]
        raise self._unknown(name)

    def all_nodes(self) -> list[LightningNode]:
        return [*self.nodes.values(), *self.ldk_nodes.values()]

    def _unknown(self, name: str) -> LabError:
        names = ", ".join([*self.nodes, *self.ldk_nodes])
        return LabError(f"no node named {name!r} in topology {self.topology.name!r} (nodes: {names})")

    @property
    def chain(self) -> ChainBackend:
        if self.backend is None:
            raise LabError("the chain is not running")
        return self.backend

    # -- bring-up ----------------------------------------------------------
    def start(self, progress: Progress = lambda _: None, *, snapshots: SnapshotStore | None = None) -> None:
        """Build the network: from scratch, or (with ``snapshots``) from a copy
        of a snapshot of it, which is built and saved first when missing."""
        t0 = time.monotonic()
        restore = None
        if snapshots is not None:
            restore = self._pick_snapshot(snapshots, progress)
        if restore is None:
            self._start_cold(progress)
        else:
            self._start_from_snapshot(*restore, progress)
        progress(f"network ready in {time.monotonic() - t0:.1f}s")

    def _pick_snapshot(self, snapshots: SnapshotStore, progress: Progress) -> tuple[SnapshotStore, Manifest] | None:
        """The first slot whose P2P ports this lab could claim (see harness/snapshot.py),
        building the first missing slot when every built one is in use; None: all in use."""
        for store in snapshots.slots():
            with store.lock():
                manifest = store.manifest()
                if manifest is None:
                    progress(f"no snapshot of {self.topology.name} (slot {store.slot}) yet: building it cold and saving it")
                    self._start_cold(progress)
                    manifest = self._save_snapshot(store, progress)
                claimed = [p for p in manifest.p2p_ports.values() if claim(p)]
                if len(claimed) == len(manifest.p2p_ports):
                    self._claimed_ports = claimed
                    return store, manifest
                for port in claimed:
                    unclaim(port)
        progress(f"every snapshot of {self.topology.name} is in use by another lab: building this one cold")
        return None

    def _start_cold(self, progress: Progress) -> None:
        with self._phase("chain"):
            self._start_chain(progress)
        with self._phase("start nodes"):
            self._start_nodes(progress)
        with self._phase("fund"):
            self._fund(progress)
        self._open_declared_channels(progress)

    def _make_chain(self) -> ChainBackend:
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        self.backend = make_chain(
            self.topology.chain,
            toolchain=self.toolchain,
            datadir=self.lab_dir / self.topology.chain,
            runtime=self.runtime,
            mining_address=self.faucet.address,
        )
        return self.backend

    def _start_chain(self, progress: Progress) -> None:
        chain = self._make_chain()
        chain.start()
        # CPU-mining a fresh chain to where soft forks are active and the
        # faucet's coinbases mature takes about a second at regtest difficulty.
        chain.mine(chain.bootstrap_height)
        self._utxos = self.faucet.coinbase_utxos(chain, chain.height(), limit=FAUCET_COINBASES)
        progress(f"{chain.kind} up, chain ready at height {chain.height()}")
        self._start_fee_service()

    def _save_snapshot(self, snapshots: SnapshotStore, progress: Progress) -> Manifest:
        """Stop the freshly built network, save its data, and set it aside
        (its logs stay under ``snapshot-build/``); the fee service keeps running."""
        chain = self.chain
        manifest = Manifest(
            topology=self.topology.name,
            chain=chain.kind,
            height=chain.height(),
            created=time.time(),
            utxos=list(self._utxos),
            channels=[SavedChannel(oc.spec, oc.channel_point) for oc in self.channels],
            pubkeys={name: n.pubkey for name, n in self.nodes.items()},
            p2p_ports={name: n.config.p2p_port for name, n in self.nodes.items()},
        )
        _parallel(lambda n: n.stop(), list(self.nodes.values()))
        chain.stop()
        snapshots.save(chain.datadir, {name: n.config.lnddir for name, n in self.nodes.items()}, manifest)
        aside = self.lab_dir / "snapshot-build"
        aside.mkdir()
        for handle in [chain.proc, *(n.proc for n in self.nodes.values())]:
            if handle is not None:
                self.runtime.remove(handle)
        chain.datadir.rename(aside / chain.datadir.name)
        for n in self.nodes.values():
            n.config.lnddir.rename(aside / n.name)
        self.backend, self.nodes, self.channels = None, {}, []
        progress(f"snapshot saved: {snapshots.path}")
        return manifest

    def _start_from_snapshot(self, snapshots: SnapshotStore, manifest: Manifest, progress: Progress) -> None:
        chain_dir = self.lab_dir / self.topology.chain
        snapshots.restore(chain_dir, {n.name: self.lab_dir / n.name for n in self.topology.nodes})
        try:
            chain = self._make_chain()
            chain.start()
            # The snapshot's tip is as old as the snapshot: a new block brings
            # Core out of initial block download and gives LND a current tip.
            chain.mine(1)
            self._utxos = list(manifest.utxos)
            progress(f"{chain.kind} up from the snapshot at height {chain.height()}")
            if self.fee_proc is None:
                self._start_fee_service()
            self._start_nodes(progress, p2p_ports=manifest.p2p_ports)
            self.channels = [OpenedChannel(c.spec, c.channel_point) for c in manifest.channels]
            # The nodes know each other at the snapshot's ports: connect them at
            # today's, opener to peer as at the cold start (a peer may not listen).
            pairs: dict[frozenset[str], tuple[str, str]] = {}
            for oc in self.channels:
                pairs.setdefault(frozenset((oc.spec.from_, oc.spec.to)), (oc.spec.from_, oc.spec.to))
            _parallel(lambda ab: self.node(ab[0]).connect(self.node(ab[1])), list(pairs.values()))
            progress("waiting for the snapshot's channels to become active")
            for oc in self.channels:
                self._wait_active(oc.spec.from_, oc.spec.to, oc.channel_point)
            self.wait_graph_synced()
        except (WaitTimeout, ProcessDied):
            # Perhaps the snapshot, perhaps the machine: the retry builds it afresh either way.
            snapshots.discard()
            raise

    @property
    def fee_file(self) -> Path:
        return self.lab_dir / "fees.json"

    @property
    def fee_url(self) -> str:
        """The URL as the nodes reach it (a container name in Docker)."""
        return f"http://{self.runtime.peer_host('feeservice')}:{self.fee_port}{feeservice.PATH}"

    def _start_fee_service(self) -> None:
        self.fee_port = free_port()
        feeservice.write_fees(self.fee_file)
        argv = [
            str(self.toolchain.feeservice),
            f"-listen={self.runtime.listen_host}:{self.fee_port}",
            f"-file={self.fee_file}",
        ]
        self.fee_proc = self.runtime.start(
            "feeservice", argv, log_path=self.lab_dir / "feeservice.log", publish=[self.fee_port]
        )
        host_url = f"http://127.0.0.1:{self.fee_port}{feeservice.PATH}"

        def answers() -> bool:
            assert self.fee_proc is not None
            if not self.fee_proc.is_running():
                raise ProcessDied(f"the fee service exited; see {self.lab_dir / 'feeservice.log'}")
            return httpx.get(host_url, timeout=2).status_code == 200

        wait_for(answers, what="the lab's fee service to answer", timeout_s="PROCESS_START")

    def set_fees(self, by_target: dict[str, int], *, min_relay: int = feeservice.MIN_RELAY_SAT_PER_KVB) -> None:
        """Change what LND's fee estimator reads (sat/kvB by confirmation target)."""
        feeservice.write_fees(self.fee_file, by_target, min_relay=min_relay)

    def gossip_flags(self) -> list[str]:
        """LND flags that make every peer a gossip source (before the topology's flags, which may override).

        LND takes new gossip from ``--numgraphsyncpeers`` peers only (default 3): with
        more peers than that, the rest get a "passive" gossip syncer, which tells the peer
        to send nothing but the peer's own announcements. Updates relayed through a node
        reach a neighbour only over its active syncers, so a node with more than three
        channel peers (a hub, a generated graph's well-connected node) can keep a whole
        branch of the graph from its other peers until LND rotates syncers (20 min). The
        lab wants every node to see every channel at once: as many sync peers as nodes.
        """
        lnd_nodes = sum(1 for n in self.topology.nodes if n.implementation == "lnd")
        return [f"--numgraphsyncpeers={max(LND_DEFAULT_SYNC_PEERS, lnd_nodes - 1)}"]

    def _node_config(self, name: str, flags: list[str]) -> LndConfig:
        return LndConfig(
            name=name,
            binary=self.toolchain.lnd,
            lnddir=self.lab_dir / name,
            chain_flags=self.chain.lnd_flags(),
            flags=[f"--fee.url={self.fee_url}", *self.gossip_flags(), *flags],
            listen_host=self.runtime.listen_host,
            advertise_host=self.runtime.peer_host(name),
        )

    def _start_nodes(self, progress: Progress, *, p2p_ports: dict[str, int] | None = None) -> None:
        for spec in self.topology.nodes:
            if spec.implementation != "lnd":
                continue
            cfg = self._node_config(spec.name, self.topology.flags_for(spec))
            if p2p_ports:
                cfg.p2p_port = p2p_ports[spec.name]
            if spec.role == "watchtower":
                cfg.tower_port = free_port()
            self.nodes[spec.name] = LndNode(cfg, self.runtime)
        if self.runtime.name == "process":
            # From this thread: PR_SET_PDEATHSIG fires when the *thread* that
            # spawned a process exits, so pool threads must not spawn nodes.
            for n in self.nodes.values():
                n.start()
        else:
            # Creating a container copies its image (vfs storage): overlap them.
            _parallel(lambda n: n.start(), list(self.nodes.values()))
        progress(f"started {len(self.nodes)} lnd node(s): {', '.join(self.nodes)}")
        tip = self.chain.tip()
        _parallel(lambda n: n.wait_ready(tip), list(self.nodes.values()), workers=WAIT_WORKERS)
        self._start_ldk_nodes(progress)
        progress("all nodes synced to the chain")

    def _start_ldk_nodes(self, progress: Progress) -> None:
        """After LND's: an LDK node's LSPS clients are configured with its LSP's pubkey."""
        specs = [s for s in self.topology.nodes if s.implementation == "ldk"]
        if not specs:
            return
        binary = self.toolchain.ldk
        if binary is None or not binary.exists():
            raise LabError(
                f"topology {self.topology.name!r} has ldk nodes but the LDK driver is not built: run `lab setup`"
            )
        for spec in specs:
            lsp = None
            if spec.lsp is not None:
                lsp_node = self.node(spec.lsp)
                lsp = (lsp_node.pubkey, lsp_node.p2p_address)
            cfg = LdkConfig(
                name=spec.name,
                binary=binary,
                datadir=self.lab_dir / spec.name,
                bitcoind_rpc=self.chain.rpc_endpoint(),
                listen_host=self.runtime.listen_host,
                advertise_host=self.runtime.peer_host(spec.name),
                lsp=lsp,
                trust_lsp_reserve=spec.trust_lsp_reserve,
            )
            node = LdkNode(cfg, self.runtime)
            self.ldk_nodes[spec.name] = node
            node.start()
        tip = self.chain.tip()
        _parallel(lambda n: n.wait_ready(tip), list(self.ldk_nodes.values()))
        progress(f"started {len(self.ldk_nodes)} ldk node(s): {', '.join(self.ldk_nodes)}")

    def _fund(self, progress: Progress) -> None:
        plan = self.topology.funding_plan()

        def addresses(name: str) -> list[tuple[str, int]]:
            node = self.lightning_node(name)
            return [(node.new_address(), amt) for amt in plan[name]]

        outputs = [o for per_node in _parallel(addresses, list(plan), workers=WAIT_WORKERS) for o in per_node]
        if not outputs:
            return
        total = sum(a for _, a in outputs)
        progress(f"funding {len(plan)} node(s) with {total / 1e8:.8f} BTC in {len(outputs)} outputs")
        self.send_from_faucet(outputs)
        self.mine(1)

        def funded(name: str) -> None:
            want, node = sum(plan[name]), self.lightning_node(name)
            wait_for(
                lambda: node.balances().onchain_confirmed_sat >= want,
                what=f"{name}'s confirmed on-chain balance to reach {want} sat",
                timeout_s="WALLET_BALANCE",
                describe=lambda: f"balance {node.balances()}",
            )

        _parallel(funded, [name for name, amounts in plan.items() if sum(amounts)], workers=WAIT_WORKERS)

    def send_from_faucet(self, outputs: list[tuple[str, int]]) -> str:
        """Pay on-chain ``outputs`` [(address, sat)] from the faucet; returns the txid."""
        txid, raw, change = self.faucet.build_funding_tx(self._utxos, outputs)
        spent = {(u.txid, u.vout) for u in self._utxos[: self._count_inputs(raw)]}
        self._utxos = [u for u in self._utxos if (u.txid, u.vout) not in spent]
        if change is not None:
            self._utxos.insert(0, change)
        self.chain.send_raw(raw)
        return txid

    def take_faucet_utxo(self) -> Utxo:
        """A mature coin of the faucet, no longer used for funding: for a test
        that builds and signs its own transactions (``self.faucet.sign``)."""
        if not self._utxos:
            raise LabError("the faucet has no coin left")
        return self._utxos.pop()

    @staticmethod
    def _count_inputs(raw_hex: str) -> int:
        from embit.transaction import Transaction

        return len(Transaction.parse(bytes.fromhex(raw_hex)).vin)

    def _open_declared_channels(self, progress: Progress) -> None:
        specs = self.topology.channels
        if not specs:
            return
        progress(f"connecting peers and opening {len(specs)} channel(s)")
        with self._phase("open channels"):
            pairs = sorted({(c.from_, c.to) for c in specs})
            _parallel(lambda ab: self.lightning_node(ab[0]).connect(self.lightning_node(ab[1])), pairs,
                      workers=WAIT_WORKERS)

            by_opener: dict[str, list[int]] = {}
            for i, c in enumerate(specs):
                by_opener.setdefault(c.from_, []).append(i)

            def open_all(opener: str) -> list[tuple[int, OpenedChannel]]:
                # Largest first: LND funds each open from its largest confirmed coins, and the
                # funding plan gives the opener one coin per channel (plus its free balance), so
                # in this order every open finds a coin big enough that no earlier open took.
                order = sorted(by_opener[opener], key=lambda i: -specs[i].capacity_sat)
                return [(i, OpenedChannel(specs[i], self._start_open(specs[i]))) for i in order]

            opened = dict(pair for per_opener in _parallel(open_all, list(by_opener), workers=WAIT_WORKERS)
                          for pair in per_opener)
            self.channels += [opened[i] for i in range(len(specs))]
            self.chain.wait_mempool(len(specs), timeout_s="CHANNEL_PENDING")
        progress("mining to announcement depth (channels active and settled before the last block)")
        with self._phase("mine/announce"):
            # Not waiting for all nodes to digest the announcing block here (with 50 nodes that is
            # LND validating 75 announcements, ~15 s): the waits below cover it, then wait_synced.
            self._mine_to_announce(self.channels, sync=False)
        progress("waiting for channels to become active")
        with self._phase("wait active"):
            _parallel(lambda oc: self._wait_active(oc.spec.from_, oc.spec.to, oc.channel_point), self.channels,
                      workers=WAIT_WORKERS)
        with self._phase("policies"):
            self._apply_declared_policies(self.channels)
        progress("waiting for every node's graph to hold every public channel")
        with self._phase("graph sync"):
            self.wait_graph_synced()
            self.wait_synced()

    def _start_open(self, c: Channel, **kw: Any) -> str:
        if c.from_ in self.ldk_nodes:
            return self.ldk(c.from_).open_channel(
                self.lightning_node(c.to), c.capacity_sat, push_sat=c.push_sat, announce=not c.private
            )
        a = self.node(c.from_)
        return a.ln.open_channel(
            self.lightning_node(c.to).pubkey,
            c.capacity_sat,
            push_sat=c.push_sat,
            private=c.private,
            base_fee_msat=c.policy.base_fee_msat,
            fee_rate_ppm=c.policy.fee_rate_ppm,
            anchors="--protocol.anchors" in self.topology.flags_for(self.topology.node(c.from_)),
            **kw,
        )

    def _apply_declared_policies(self, opened: list[OpenedChannel]) -> None:
        """Send a policy update where the declaration differs from what the
        channel got at open (fees are set at open; the CLTV delta and the peer
        side only by an update). An update is sent only once both ends hold
        the announced edge: a peer drops an update for an edge it does not
        know yet ("UpdateEdgePolicy: edge not found") and would not ask again.
        """
        default = Policy()
        todo: list[tuple[str, OpenedChannel, Policy]] = []
        for oc in opened:
            p = oc.spec.policy
            if p.cltv_delta != default.cltv_delta:
                todo.append((oc.spec.from_, oc, p))
            peer = oc.spec.peer_policy
            if peer is not None and peer != default:
                todo.append((oc.spec.to, oc, peer))

        by_node: dict[str, list[tuple[OpenedChannel, Policy]]] = {}
        for name, oc, p in todo:
            by_node.setdefault(name, []).append((oc, p))

        def apply(name: str) -> None:
            # One node's updates one after the other: LND serialises them anyway (one lock, then
            # its gossiper's loop). Sent side by side in a busy 50-node lab, one hung past the
            # RPC deadline once (cause not found; docs/BENCHMARKS.md, "lab bench scale").
            for oc, p in by_node[name]:
                if not oc.spec.private:
                    for end in (oc.spec.from_, oc.spec.to):
                        node = self.node(end)
                        wait_for(
                            lambda: node.describe_graph().edge(oc.channel_point) is not None,  # noqa: B023
                            what=f"{end} to hold the announced edge {oc.channel_point}",
                            timeout_s="GRAPH_SYNC",
                            log=node.config.log_path,
                        )
                self.node(name).ln.update_policy(
                    oc.channel_point, base_fee_msat=p.base_fee_msat, fee_rate_ppm=p.fee_rate_ppm,
                    cltv_delta=p.cltv_delta,
                )

        _parallel(apply, list(by_node), workers=WAIT_WORKERS)

    def _wait_active(self, a: str, b: str, channel_point: str) -> None:
        for name in (a, b):
            self.lightning_node(name).wait_can_send_over(channel_point)

    def _expected_public(self) -> list[tuple[OpenedChannel, Policy, Policy]]:
        return [(oc, oc.spec.policy, oc.spec.peer_policy or Policy()) for oc in self.channels if not oc.spec.private]

    def _graph_gaps(self, node: LndNode) -> list[tuple[OpenedChannel, str | None, str]]:
        """What ``node``'s graph lacks: (channel, side whose policy is wrong or
        None when the whole edge is absent, description)."""
        graph = node.describe_graph()
        gaps: list[tuple[OpenedChannel, str | None, str]] = []
        for oc, pol_from, pol_to in self._expected_public():
            edge = graph.edge(oc.channel_point)
            if edge is None:
                gaps.append((oc, None, f"{oc.spec.from_}->{oc.spec.to} absent"))
                continue
            for side, pol in ((oc.spec.from_, pol_from), (oc.spec.to, pol_to)):
                got = edge.policy_of(self.lightning_node(side).pubkey)
                want = (pol.base_fee_msat, pol.fee_rate_ppm, pol.cltv_delta)
                if side in self.ldk_nodes and got is not None:
                    continue  # ldk-node's own policy: present is all the lab asks of it
                if got is None or (got.base_fee_msat, got.fee_rate_ppm, got.cltv_delta) != want:
                    gaps.append((oc, side, f"{oc.spec.from_}->{oc.spec.to} policy of {side}: {got}"))
        return gaps

    def _reconnect(self, a: LightningNode, b: LightningNode) -> None:
        try:
            a.disconnect(b)
        except Exception:
            pass
        a.connect(b)

    def _repair_gossip(
        self, gaps: list[tuple[OpenedChannel, str | None, str]], observer: LndNode, round_: int
    ) -> None:
        """Nudge gossip that LND dropped in a race (see wait_graph_synced).

        First a missing edge gets its endpoints reconnected (LND re-sends
        pending announcement signatures then) and a missing policy is issued
        again. If that was not enough, later rounds also reconnect the
        endpoints for a policy gap and the observer with its channel peers,
        which restarts their gossip sync."""
        reconnected: set[frozenset[str]] = set()

        def reconnect(x: str, y: str) -> None:
            key = frozenset((x, y))
            if key not in reconnected:
                reconnected.add(key)
                self._reconnect(self.lightning_node(x), self.lightning_node(y))

        for oc, side, _ in gaps:
            if side is None or round_ >= 2:
                reconnect(oc.spec.from_, oc.spec.to)
            if side is not None and side in self.nodes:
                pol = oc.spec.policy if side == oc.spec.from_ else (oc.spec.peer_policy or Policy())
                self.node(side).ln.update_policy(
                    oc.channel_point, base_fee_msat=pol.base_fee_msat, fee_rate_ppm=pol.fee_rate_ppm,
                    cltv_delta=pol.cltv_delta,
                )
        if round_ >= 2:
            for oc in self.channels:
                ends = (oc.spec.from_, oc.spec.to)
                if observer.name in ends:
                    other = ends[1] if ends[0] == observer.name else ends[0]
                    reconnect(observer.name, other)

    def wait_graph_synced(self, *, timeout_s: str | float = "GRAPH_SYNC") -> None:
        """Every node sees every public channel with both declared policies.

        LND v0.21 keeps gossip that comes early (announcement signatures
        before the 6th block, a channel update before its edge) and replays
        it when it can, so a graph normally converges in well under a second.
        What it lost for good was two things, both fixed at their cause: a
        peer's channel_update that a node rejected while it re-keyed an
        option-scid-alias edge at the 6th confirmation (the star5 stall, see
        ``_mine_to_announce``), and updates relayed behind a passive gossip
        syncer (a node with more than three peers, see ``gossip_flags``).
        What is left is a safety net: after a short wait the lab re-sends
        what is still missing (reconnect for a missing edge, the declared
        policy again for a missing or stale one) and waits again, each round
        counted in ``repair_rounds``. A timeout
        names the gaps and any update a node rejected on the way ("Update
        edge for short_chan_id(N) got: ..."), which LND does not re-request
        and no re-send gets past.
        """
        # A node with no channel (a JIT client, a watchtower) has no peer to
        # learn the graph from.
        in_channels = {n for oc in self.channels for n in (oc.spec.from_, oc.spec.to)}
        limit = timeout(timeout_s)
        for node in self.nodes.values():
            if node.name not in in_channels:
                continue
            deadline = time.monotonic() + limit
            round_ = 0
            while True:
                # In real seconds (wait_for scales what it is given by LAB_TIMEOUT_FACTOR).
                chunk = max(min(timeout(REPAIR_AFTER_S), deadline - time.monotonic()), 0.5)
                try:
                    wait_for(
                        lambda: not self._graph_gaps(node),  # noqa: B023 - called before the loop moves on
                        what=f"{node.name}'s graph to hold all {len(self._expected_public())} public channel(s) "
                        f"with declared policies",
                        timeout_s=chunk / timeout(1.0),
                        describe=lambda: "; ".join(g[2] for g in self._graph_gaps(node)[:5]),  # noqa: B023
                    )
                    break
                except WaitTimeout as exc:
                    if time.monotonic() >= deadline:
                        rejected = self.rejected_updates()
                        if not rejected:
                            raise
                        raise WaitTimeout(
                            what=exc.what, seconds=limit, log_tail=exc.log_tail,
                            last_state=f"{exc.last_state}; updates LND rejected: {'; '.join(rejected[:5])}",
                        ) from None
                # Re-send what is still missing, as often as it takes: on a
                # loaded machine one nudge is not always enough.
                round_ += 1
                self.repair_rounds += 1
                self._repair_gossip(self._graph_gaps(node), node, round_)

    def rejected_updates(self) -> list[str]:
        """Channel updates LND's gossiper failed to write and so put in its reject cache
        (every later copy from the same peer is then dropped unseen), per node log."""
        found = []
        for n in self.nodes.values():
            try:
                with n.config.log_path.open("rb") as fh:
                    for raw in fh:
                        line = raw.decode("utf-8", "replace").rstrip()
                        if REJECTED_UPDATE in line:
                            found.append(f"{n.name}: {line[line.index(REJECTED_UPDATE):]}")
            except OSError:
                continue
        return found

    def _mine_to_announce(self, opened: list[OpenedChannel], *, sync: bool = True) -> None:
        """Mine the ``opened`` channels to announcement depth, settling them first.

        The order matters, because of what LND v0.21 does at the 6th
        confirmation of a channel that negotiated option-scid-alias (both ends
        run ``--protocol.option-scid-alias``, as star5 and every LSP topology
        do): each end deletes the channel's edge from its graph and adds it
        again under the confirmed SCID (funding.Manager.annAfterSixConfs:
        DeleteAliasEdge, then addToGraph), without the gossiper's or the graph
        builder's channel locks. A channel_update from the peer that was
        validated against the old edge but not yet written (graph writes are
        batched: ``--db.batch-commit-interval``) then fails with
        ErrEdgeNotFound ("UpdateEdgePolicy faild: edge not found", "Update edge
        for short_chan_id(N) got: unable to add channel: edge not found"), and
        the gossiper records the failure in its reject cache, keyed by
        (SCID, sending peer): every later update of that peer for that
        channel is dropped as "recently rejected" before it is even looked at.
        The cache is in memory, 10,000 entries, and nothing re-requests the
        update: the node never learns its peer's policy until it restarts
        (upstream: lnd#8777, "make reassignment of alias channel edge
        atomic", closed unmerged; lnd#9444).

        The update caught that way is the peer's first one, sent at
        channel_ready (first confirmation). The lab used to mine the 5th and
        6th blocks back to back, so that update was often still on its way
        into the graph when the 6th block deleted the edge: the star5 stall,
        in which the hub never held c3's policy however often c3 re-sent it
        (with LND's default 500 ms batch window 5 of 6 star5 bring-ups stalled
        that way, none of 8 after this change; with the lab's 10 ms window it
        was rare: docs/BENCHMARKS.md, "Gossip stall"). So: mine to one block
        short of announcement depth, wait
        until each channel is usable on both ends and each LND end holds its
        LND peer's policy (the channel_ready updates are in both graphs),
        and only then mine the block that announces. ``sync=False``: return
        without waiting for every node to process that block (the caller
        waits for what follows from it).
        """
        # Only where the channel opens before the announcing block and both ends are LND
        # (an LDK peer, or a fundee asking for 6 or more confirmations, opens at the 6th).
        settle = [oc for oc in opened if oc.spec.from_ in self.nodes and self._open_depth(oc.spec) < ANNOUNCE_CONFS]
        self.mine(ANNOUNCE_CONFS - 1)
        _parallel(lambda oc: self._wait_active(oc.spec.from_, oc.spec.to, oc.channel_point), settle,
                  workers=WAIT_WORKERS)
        self._wait_peer_policies(settle)
        self.mine(1, sync=sync)

    def _open_depth(self, spec: Channel) -> int:
        """Confirmations before ``spec`` opens: the fundee's ``--bitcoin.defaultchanconfs``
        (the lab's base flags, then the topology's; the last one counts, as in LND's parser)."""
        if spec.to not in self.nodes:
            return ANNOUNCE_CONFS  # ldk-node's own minimum depth
        depth = ANNOUNCE_CONFS
        for flag in [*BASE_FLAGS, *self.topology.flags_for(self.topology.node(spec.to))]:
            if flag.startswith(CHAN_CONFS_FLAG):
                depth = int(flag.removeprefix(CHAN_CONFS_FLAG))
        return depth

    def _wait_peer_policies(self, opened: list[OpenedChannel]) -> None:
        """Each LND end of each channel with an LND peer holds that peer's policy
        in its own graph (announced or not): the channel_ready updates are written."""
        ends: dict[str, list[tuple[str, str]]] = {}
        for oc in opened:
            a, b = oc.spec.from_, oc.spec.to
            if a in self.nodes and b in self.nodes:
                ends.setdefault(a, []).append((oc.channel_point, b))
                ends.setdefault(b, []).append((oc.channel_point, a))

        def missing(name: str) -> list[str]:
            graph = self.node(name).ln.describe_graph(include_unannounced=True)
            out = []
            for cp, peer in ends[name]:
                edge = graph.edge(cp)
                if edge is None or edge.policy_of(self.node(peer).pubkey) is None:
                    out.append(f"{peer}'s policy on {cp}")
            return out

        def settled(name: str) -> None:
            wait_for(
                lambda: not missing(name),
                what=f"{name}'s graph to hold its peers' channel_ready updates",
                timeout_s="CHANNEL_OPEN",
                log=self.node(name).config.log_path,
                describe=lambda: ", ".join(missing(name)[:5]),
            )

        _parallel(settled, list(ends), workers=WAIT_WORKERS)

    # -- chain -------------------------------------------------------------
    def mine(self, n: int = 1, *, sync: bool = True) -> list[str]:
        """Mine ``n`` blocks and (by default) wait until every running node has them."""
        hashes = self.chain.mine(n)
        if sync:
            self.wait_synced()
        return hashes

    def wait_synced(self) -> None:
        """Wait until every running node is synced to the chain's current tip."""
        tip = self.chain.tip()
        _parallel(lambda nd: nd.wait_synced(tip), [nd for nd in self.all_nodes() if nd.proc and nd.proc.is_running()],
                  workers=WAIT_WORKERS)

    # -- channel verbs -------------------------------------------------------
    def open_channel(
        self,
        a: str,
        b: str,
        capacity_sat: int,
        *,
        push_sat: int = 0,
        private: bool = False,
        policy: Policy | None = None,
    ) -> str:
        """Connect, open, confirm and wait until active on both ends (and in
        every graph, when public). Returns the channel point."""
        spec = Channel.model_validate(
            {"from": a, "to": b, "capacity_sat": capacity_sat, "push_sat": push_sat, "private": private,
             "policy": (policy or Policy()).model_dump()}
        )
        self.node(a).connect(self.node(b))
        cp = self._start_open(spec)
        self.chain.wait_for_tx(cp.split(":")[0])
        opened = OpenedChannel(spec, cp)
        self._mine_to_announce([opened])
        self._wait_active(a, b, cp)
        self.channels.append(opened)
        self._apply_declared_policies([self.channels[-1]])
        if not private:
            self.wait_graph_synced()
        return cp

    def close_channel(self, a: str, channel_point: str, *, force: bool = False) -> str:
        """Close (cooperatively, or force) and mine until it is closed on the
        closer's side; for a force close also until the CSV-delayed funds are
        swept back to the wallet. Returns the closing txid."""
        node = self.node(a)
        txid = node.ln.close_channel(channel_point, force=force)
        self.chain.wait_for_tx(txid)
        self.mine(1)
        wait_for(
            lambda: all(c.channel_point != channel_point for c in node.list_channels()),
            what=f"channel {channel_point} to leave {a}'s open channels",
            timeout_s="CHANNEL_CLOSE",
        )
        self.channels = [oc for oc in self.channels if oc.channel_point != channel_point]
        if force:
            self.mine_until_swept(a, channel_point)
        return txid

    def mine_until_swept(self, name: str, channel_point: str | None = None) -> None:
        """Mine until ``name`` has recorded the close of ``channel_point`` (any
        channel when None) and has nothing left in limbo: no waiting-close or
        force-closing channel whose outputs still need sweeping."""
        node = self.node(name)

        def done() -> bool:
            p = node.ln.pending_channels()
            closed = {c.channel_point for c in node.ln.closed_channels()}
            recorded = channel_point is None or channel_point in closed
            if recorded and not p.pending_force_closing_channels and not p.waiting_close_channels:
                return True
            self.mine(1)
            return False

        wait_for(
            done,
            what=f"{name} to record the close and sweep its funds",
            timeout_s="CHANNEL_CLOSE",
            interval=0.3,
            log=node.config.log_path,
            describe=lambda: str(node.ln.pending_channels()).replace("\n", " ")[:400],
        )

    # -- teardown ----------------------------------------------------------
    def stop(self) -> None:
        errors: list[str] = []

        def stop_node(n: LightningNode) -> None:
            try:
                n.stop()
            except Exception as exc:
                errors.append(f"{n.name}: {exc}")

        _parallel(stop_node, self.all_nodes())
        if self.backend is not None:
            try:
                self.backend.stop()
            except Exception as exc:
                errors.append(f"{self.backend.kind}: {exc}")
        if self.fee_proc is not None:
            self.fee_proc.stop()
        for port in self._claimed_ports:
            unclaim(port)
        self._claimed_ports = []
        if errors:
            raise NodeError("errors while stopping the network: " + "; ".join(errors))

    def pids(self) -> list[int]:
        procs = [n.proc for n in self.all_nodes()] + [self.backend.proc if self.backend else None, self.fee_proc]
        return [p.pid for p in procs if p is not None]

    def describe(self) -> dict[str, Any]:
        """What `lab up` prints and stores in the lab's state file."""
        return {
            "topology": self.topology.name,
            "lab_dir": str(self.lab_dir),
            "runtime": self.runtime.name,
            "lab_id": getattr(self.runtime, "lab_id", ""),
            "chain": self.chain.describe(),
            "feeservice": None if self.fee_proc is None else {
                "pid": self.fee_proc.pid,
                "url": self.fee_url,
                "file": str(self.fee_file),
                "argv": self.fee_proc.argv,
                "log": str(self.lab_dir / "feeservice.log"),
            },
            "nodes": {
                name: {
                    "pid": n.proc.pid if n.proc else 0,
                    "pubkey": n.pubkey,
                    "rpc": n.rpc_address,
                    "rest": f"127.0.0.1:{n.config.rest_port}",
                    "p2p": n.p2p_address,
                    "tls_cert": str(n.config.tls_cert),
                    "macaroon": str(n.config.macaroon),
                    "log": str(n.config.log_path),
                    "argv": n.proc.argv if n.proc else [],
                    "role": self.topology.node(name).role,
                }
                for name, n in self.nodes.items()
            },
            # Beside "nodes" (LND's: gRPC, macaroons), so tools reading LND entries are unchanged.
            "ldk_nodes": {
                name: {
                    "implementation": "ldk",
                    "pid": n.proc.pid if n.proc else 0,
                    "pubkey": n.pubkey,
                    "api": n.rpc_address,
                    "p2p": n.p2p_address,
                    "log": str(n.config.log_path),
                    "argv": n.proc.argv if n.proc else [],
                    "role": self.topology.node(name).role,
                    "lsp": self.topology.node(name).lsp,
                }
                for name, n in self.ldk_nodes.items()
            },
        }

    def write_state(self, path: Path) -> None:
        path.write_text(json.dumps(self.describe(), indent=2))
