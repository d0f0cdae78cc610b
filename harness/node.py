"""An LND node in a lab: its files, process and typed RPC handles.

The node object is the user's handle: ``lab.node("alice").pay_invoice(...)``.
Verbs here are single-node; verbs that need the chain or a peer (open a
channel and wait until it is usable, say) live on the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc

from harness.errors import NodeError, ProcessDied
from harness.rpc.base import open_channel
from harness.rpc.chain_notifier import ChainNotifierRpc
from harness.rpc.invoices import InvoicesRpc
from harness.rpc.lightning import Balances, ChannelInfo, Graph, Invoice, LightningRpc, NodeInfo
from harness.rpc.peers import PeersRpc
from harness.rpc.router import PaymentResult, RouterRpc
from harness.rpc.signer import SignerRpc
from harness.rpc.state import StateRpc
from harness.rpc.wallet import WalletRpc
from harness.runtime.base import NodeHandle, Runtime
from harness.runtime.ports import free_port
from harness.wait import wait_for

# The flags LND's own integration harness runs regtest nodes with (see
# docs/LAB_RECIPE.md): fast batching and gossip, no bootstrap, keysend on.
BASE_FLAGS = (
    "--bitcoin.regtest",
    "--bitcoin.defaultchanconfs=1",
    "--bitcoin.defaultremotedelay=4",
    "--accept-keysend",
    "--db.batch-commit-interval=10ms",
    "--trickledelay=50",
    "--gossip.sub-batch-delay=5ms",
    "--caches.rpc-graph-cache-duration=100ms",
    "--noseedbackup",
    "--nobootstrap",
    "--dev.unsafedisconnect",
    "--maxpendingchannels=20",
    # Poll the lab's fee service every second or two (default: minutes), so
    # a fee change is seen at once.
    "--fee.min-update-timeout=1s",
    "--fee.max-update-timeout=2s",
    "--debuglevel=info",
)


@dataclass
class LndConfig:
    name: str
    binary: Path
    lnddir: Path
    # How LND reaches the chain backend (``ChainBackend.lnd_flags()``: --bitcoin.node and its --btcd.* or --bitcoind.*).
    chain_flags: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    rpc_port: int = 0
    rest_port: int = 0
    p2p_port: int = 0
    # Where listeners bind (127.0.0.1 for processes, 0.0.0.0 in a container)
    # and the host name peers use to reach this node.
    listen_host: str = "127.0.0.1"
    advertise_host: str = "127.0.0.1"
    # Set for nodes with the ``watchtower`` role: where the tower listens.
    tower_port: int = 0

    def __post_init__(self) -> None:
        self.rpc_port = self.rpc_port or free_port()
        self.rest_port = self.rest_port or free_port()
        self.p2p_port = self.p2p_port or free_port()

    @property
    def tls_cert(self) -> Path:
        return self.lnddir / "tls.cert"

    @property
    def macaroon(self) -> Path:
        return self.lnddir / "data" / "chain" / "bitcoin" / "regtest" / "admin.macaroon"

    @property
    def log_path(self) -> Path:
        return self.lnddir / "logs" / "bitcoin" / "regtest" / "lnd.log"

    @property
    def stdout_path(self) -> Path:
        return self.lnddir / "stdout.log"

    @property
    def graph_dir(self) -> Path:
        return self.lnddir / "data" / "graph" / "regtest"

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            *BASE_FLAGS,
            f"--alias={self.name}",
            f"--lnddir={self.lnddir}",
            f"--rpclisten={self.listen_host}:{self.rpc_port}",
            f"--restlisten={self.listen_host}:{self.rest_port}",
            f"--listen={self.listen_host}:{self.p2p_port}",
            f"--externalip={self.advertise_host}:{self.p2p_port}",
            f"--tlsextradomain={self.name}",
            *(
                ["--watchtower.active", f"--watchtower.listen={self.listen_host}:{self.tower_port}"]
                if self.tower_port
                else []
            ),
            *self.chain_flags,
            *self.flags,
        ]


class LightningNode(Protocol):
    """What every lab node offers, whichever implementation runs it (``LndNode``, ``harness.ldk.LdkNode``).

    Network verbs (fund, connect, open, pay across implementations) use only
    these; implementation-specific handles (``node.ln`` for LND's gRPC,
    ``node.jit_invoice`` for LDK's LSPS2 client) stay on the concrete classes.
    """

    name: str
    implementation: str
    proc: NodeHandle | None

    @property
    def pubkey(self) -> str: ...
    @property
    def p2p_address(self) -> str: ...
    @property
    def rpc_address(self) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    def wait_ready(self, chain_tip: tuple[int, str] | None = None) -> NodeInfo: ...
    def wait_synced(self, chain_tip: tuple[int, str] | None = None) -> NodeInfo: ...
    def get_info(self) -> NodeInfo: ...
    def new_address(self, kind: str = "p2wkh") -> str: ...
    def balances(self) -> Balances: ...
    def add_invoice(self, amount_sat: int = 0, *, memo: str = "", expiry_s: int = 3600, amount_msat: int = 0) -> Invoice: ...
    def pay_invoice(
        self, payment_request: str, *, fee_limit_sat: int = 100, timeout_s: int = 60,
        amount_sat: int | None = None, wait_settled: bool = True,
    ) -> PaymentResult: ...
    def keysend(
        self, dest: Any, amount_sat: int, *, fee_limit_sat: int = 100, timeout_s: int = 60, wait_settled: bool = True
    ) -> PaymentResult: ...
    def connected_peers(self) -> list[str]: ...
    def connect(self, peer: Any) -> None: ...
    def disconnect(self, peer: Any) -> None: ...
    def wait_no_pending_htlcs(self, *, timeout_s: str | float = "HTLC_RESOLVE") -> None: ...
    def wait_can_send_over(self, channel_point: str, *, timeout_s: str | float = "CHANNEL_OPEN") -> None: ...


class LndNode:
    """A live LND node: typed RPC handles per service plus everyday verbs.

    There is no ``open_channel`` / ``close_channel`` here: doing either whole
    (mine the funding or closing transaction, wait until both ends and every
    graph agree, sweep a force close) needs the chain and the peer, and a node
    holds neither: ``harness.network`` imports this module and owns both. Use
    ``lab.open_channel("alice", "bob", 500_000, push_sat=...)`` and
    ``lab.close_channel("alice", channel_point, force=...)`` on
    ``LightningTestHarness`` (``Network`` has the same verbs). The bare RPCs,
    which only start the open or close and return, are
    ``node.ln.open_channel(peer_pubkey, capacity_sat, ...)`` and
    ``node.ln.close_channel(channel_point, ...)``.
    """

    implementation = "lnd"

    def __init__(self, config: LndConfig, runtime: Runtime):
        self.config = config
        self.name = config.name
        self.runtime = runtime
        self.proc: NodeHandle | None = None
        self._channel: grpc.Channel | None = None
        self._pubkey: str | None = None
        self._rpcs: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"LndNode({self.name!r}, rpc=127.0.0.1:{self.config.rpc_port})"

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self.config.lnddir.mkdir(parents=True, exist_ok=True)
        self.proc = self.runtime.start(
            self.name,
            self.config.argv(),
            log_path=self.config.stdout_path,
            publish=[self.config.rpc_port, self.config.rest_port],
        )

    def _alive(self) -> None:
        if self.proc is not None and not self.proc.is_running():
            raise ProcessDied(
                f"lnd {self.name!r} exited with code {self.proc.returncode()}; see {self.config.stdout_path} "
                f"and {self.config.log_path}"
            )

    def wait_ready(self, chain_tip: tuple[int, str] | None = None) -> NodeInfo:
        """Until the RPC server is active, then until synced (to ``chain_tip``)."""

        def server_active() -> bool:
            self._alive()
            if not self.config.tls_cert.exists():
                return False
            try:
                return self.state.state() == "SERVER_ACTIVE"
            except Exception:
                # The channel may hold a certificate read while LND was still
                # writing it: start over with a fresh read next time.
                self.close_rpc()
                raise

        wait_for(server_active, what=f"{self.name} to reach SERVER_ACTIVE", timeout_s="LND_READY", log=self.config.log_path)
        return self.wait_synced(chain_tip)

    def wait_synced(self, chain_tip: tuple[int, str] | None = None) -> NodeInfo:
        def synced() -> NodeInfo | None:
            self._alive()
            info = self.ln.get_info()
            if not info.synced_to_chain:
                return None
            if chain_tip is not None and info.block_hash != chain_tip[1]:
                return None
            return info

        info: NodeInfo = wait_for(
            synced,
            what=f"{self.name} to sync to the chain tip {chain_tip[0] if chain_tip else ''}",
            timeout_s="LND_SYNC",
            log=self.config.log_path,
            describe=lambda: f"height {self.ln.get_info().block_height}",
        )
        self._pubkey = info.pubkey
        return info

    def stop(self) -> None:
        self.close_rpc()
        if self.proc is not None:
            self.proc.stop()

    def kill(self) -> None:
        self.close_rpc()
        if self.proc is not None:
            self.proc.kill()

    def close_rpc(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._rpcs.clear()

    # -- rpc handles -------------------------------------------------------
    def _grpc(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = open_channel("127.0.0.1", self.config.rpc_port, self.config.tls_cert, self.config.macaroon)
        return self._channel

    def _rpc(self, cls: type) -> object:
        key = cls.__name__
        if key not in self._rpcs:
            self._rpcs[key] = cls(self.name, self._grpc())
        return self._rpcs[key]

    def _rpc_stub(self, stub_cls: type) -> Any:
        """A raw generated stub on this node's channel, for services without a wrapper."""
        return stub_cls(self._grpc())

    @property
    def ln(self) -> LightningRpc:
        return self._rpc(LightningRpc)  # type: ignore[return-value]

    @property
    def router(self) -> RouterRpc:
        return self._rpc(RouterRpc)  # type: ignore[return-value]

    @property
    def invoices(self) -> InvoicesRpc:
        return self._rpc(InvoicesRpc)  # type: ignore[return-value]

    @property
    def wallet(self) -> WalletRpc:
        return self._rpc(WalletRpc)  # type: ignore[return-value]

    @property
    def signer(self) -> SignerRpc:
        return self._rpc(SignerRpc)  # type: ignore[return-value]

    @property
    def chain_notifier(self) -> ChainNotifierRpc:
        return self._rpc(ChainNotifierRpc)  # type: ignore[return-value]

    @property
    def peers_rpc(self) -> PeersRpc:
        return self._rpc(PeersRpc)  # type: ignore[return-value]

    @property
    def state(self) -> StateRpc:
        return self._rpc(StateRpc)  # type: ignore[return-value]

    # -- identity ----------------------------------------------------------
    @property
    def pubkey(self) -> str:
        if self._pubkey is None:
            self._pubkey = self.ln.get_info().pubkey
        return self._pubkey

    @property
    def p2p_address(self) -> str:
        """Where peers connect to this node (``127.0.0.1:port`` or ``name:port`` in Docker)."""
        return f"{self.config.advertise_host}:{self.config.p2p_port}"

    @property
    def rpc_address(self) -> str:
        return f"127.0.0.1:{self.config.rpc_port}"

    def tower_uri(self) -> str:
        """``TOWER_PUBKEY@HOST:PORT`` of this node's watchtower (a node with role watchtower), as a
        watchtower client (``AddTower``, ``LSP_WATCHTOWERS``) takes it."""
        if not self.config.tower_port:
            raise NodeError(f"{self.name} runs no watchtower (give it role: watchtower in the topology)")
        s = self.ln.s
        info = self._rpc_stub(s.watchtower_grpc.WatchtowerStub).GetInfo(s.watchtower.GetInfoRequest(), timeout=10)
        return f"{info.pubkey.hex()}@{self.config.advertise_host}:{self.config.tower_port}"

    # -- everyday verbs (single node) ---------------------------------------
    def get_info(self) -> NodeInfo:
        return self.ln.get_info()

    def new_address(self, kind: str = "p2wkh") -> str:
        return self.ln.new_address(kind)

    def balances(self) -> Balances:
        return self.ln.balances()

    def add_invoice(self, amount_sat: int = 0, *, memo: str = "", expiry_s: int = 3600, amount_msat: int = 0) -> Invoice:
        return self.ln.add_invoice(amount_sat, memo=memo, expiry_s=expiry_s, amount_msat=amount_msat)

    def pay_invoice(
        self,
        payment_request: str,
        *,
        fee_limit_sat: int = 100,
        timeout_s: int = 60,
        amount_sat: int | None = None,
        wait_settled: bool = True,
    ) -> PaymentResult:
        """Pay through the router. With ``wait_settled`` (the default) a
        successful payment also waits until this node's channels hold no
        HTLC, so balances read right after reflect the payment."""
        res = self.router.pay_invoice(payment_request, fee_limit_sat=fee_limit_sat, timeout_s=timeout_s, amount_sat=amount_sat)
        if wait_settled and res.succeeded:
            self.wait_no_pending_htlcs()
        return res

    def keysend(
        self,
        dest: LightningNode | str,
        amount_sat: int,
        *,
        fee_limit_sat: int = 100,
        timeout_s: int = 60,
        wait_settled: bool = True,
    ) -> PaymentResult:
        pub = dest if isinstance(dest, str) else dest.pubkey
        res = self.router.keysend(pub, amount_sat, fee_limit_sat=fee_limit_sat, timeout_s=timeout_s)
        if wait_settled and res.succeeded:
            self.wait_no_pending_htlcs()
        return res

    def wait_no_pending_htlcs(self, *, timeout_s: str | float = "HTLC_RESOLVE") -> None:
        wait_for(
            lambda: not any(c.pending_htlcs for c in self.list_channels()),
            what=f"{self.name}'s channels to hold no pending HTLC",
            timeout_s=timeout_s,
            log=self.config.log_path,
        )

    def list_channels(self, *, active_only: bool = False) -> list[ChannelInfo]:
        return self.ln.list_channels(active_only=active_only)

    def connected_peers(self) -> list[str]:
        return list(self.ln.peers())

    def connect(self, peer: LightningNode) -> None:
        """Connect to ``peer`` (any lab node) and wait until both sides list each other."""
        if peer.pubkey in self.ln.peers():
            return
        try:
            self.ln.connect(peer.pubkey, peer.p2p_address)
        except Exception as exc:
            if "already connected" not in str(exc):
                raise
        wait_for(
            lambda: peer.pubkey in self.ln.peers() and self.pubkey in peer.connected_peers(),
            what=f"{self.name} and {peer.name} to list each other as peers",
            timeout_s="PEER_CONNECT",
            log=self.config.log_path,
        )

    def disconnect(self, peer: LightningNode) -> None:
        self.ln.disconnect(peer.pubkey)
        wait_for(
            lambda: peer.pubkey not in self.ln.peers(),
            what=f"{self.name} to drop peer {peer.name}",
            timeout_s="PEER_CONNECT",
        )

    def describe_graph(self) -> Graph:
        return self.ln.describe_graph()

    def can_send_over(self, channel_point: str) -> bool:
        """True when this node's pathfinding can use its channel: LND lists it
        active *and* its own graph (announced or not) holds the edge with this
        node's outgoing policy. LND counts local balance only over such edges,
        so between the link going active and the edge reaching its graph a
        payment fails at once with FAILURE_REASON_INSUFFICIENT_BALANCE."""
        if not any(c.channel_point == channel_point for c in self.list_channels(active_only=True)):
            return False
        edge = self.ln.describe_graph(include_unannounced=True).edge(channel_point)
        return edge is not None and edge.policy_of(self.pubkey) is not None

    def wait_can_send_over(self, channel_point: str, *, timeout_s: str | float = "CHANNEL_OPEN") -> None:
        wait_for(
            lambda: self.can_send_over(channel_point),
            what=f"channel {channel_point} to be usable for sending from {self.name} (active, own edge in its graph)",
            timeout_s=timeout_s,
            log=self.config.log_path,
        )

    def channel_with(self, peer: LndNode) -> ChannelInfo:
        for ch in self.list_channels():
            if ch.remote_pubkey == peer.pubkey:
                return ch
        raise NodeError(f"{self.name} has no channel with {peer.name}")
