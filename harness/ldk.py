"""An LDK node in a lab: ``lab-ldk`` (interop/ldk, one ldk-node instance) and its control API.

``LdkNode`` offers the verbs ``LndNode`` offers where they make sense (the
``LightningNode`` protocol in ``harness.node``): identity, addresses, balances,
invoices, payments, peers. On top it has what only LDK has here: the LSPS1 and
LSPS2 clients of ``lightning-liquidity`` (``jit_invoice``, ``lsps1_request``),
which talk to the LSP node named by the topology's ``lsp:`` field.

The driver answers ``POST /<method>`` with ``{"result": ...}`` or
``{"error": {"kind", "message"}}``; an error becomes ``LdkError`` naming the
node, the method and ldk-node's own words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.errors import NodeError, ProcessDied
from harness.rpc.lightning import Balances, Invoice, NodeInfo
from harness.rpc.router import PaymentResult
from harness.runtime.base import NodeHandle, Runtime
from harness.runtime.ports import free_port
from harness.wait import wait_for


class LdkError(NodeError):
    """ldk-node refused a call (``kind`` is the driver's error kind, ``message`` ldk-node's words)."""

    def __init__(self, node: str, method: str, kind: str, message: str):
        super().__init__(f"{node}: ldk {method} failed ({kind}): {message}")
        self.kind = kind
        self.message = message


@dataclass
class LdkConfig:
    name: str
    binary: Path
    datadir: Path
    # How ldk-node reaches Bitcoin Core's RPC (host as the node sees it).
    bitcoind_rpc: tuple[str, int, str, str]
    api_port: int = 0
    p2p_port: int = 0
    listen_host: str = "127.0.0.1"
    advertise_host: str = "127.0.0.1"
    # The LSP this node buys liquidity from (LSPS1 and LSPS2): (pubkey, host:port).
    lsp: tuple[str, str] | None = None
    # Trust the LSP for the anchor reserve (ldk-node's trusted_peers_no_reserve): a wallet
    # without on-chain funds can then accept the LSP's anchor channel.
    trust_lsp_reserve: bool = False
    extra_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.api_port = self.api_port or free_port()
        self.p2p_port = self.p2p_port or free_port()

    @property
    def stdout_path(self) -> Path:
        return self.datadir / "stdout.log"

    @property
    def log_path(self) -> Path:
        """ldk-node's own log (debug level)."""
        return self.datadir / "ldk_node.log"

    def argv(self) -> list[str]:
        host, port, user, password = self.bitcoind_rpc
        argv = [
            str(self.binary),
            f"--storage-dir={self.datadir}",
            f"--listen={self.listen_host}:{self.p2p_port}",
            f"--api={self.listen_host}:{self.api_port}",
            f"--alias={self.name}",
            f"--bitcoind-rpc={host}:{port}",
            f"--rpc-user={user}",
            f"--rpc-password={password}",
        ]
        if self.advertise_host != self.listen_host:
            argv.append(f"--announce={self.advertise_host}:{self.p2p_port}")
        if self.lsp is not None:
            peer = f"{self.lsp[0]}@{self.lsp[1]}"
            argv += [f"--lsps1={peer}", f"--lsps2={peer}"]
            if self.trust_lsp_reserve:
                argv.append("--trust-lsp-reserve")
        return argv + self.extra_args


@dataclass(frozen=True)
class LdkChannel:
    """One of an LDK node's channels, as ldk-node's ChannelDetails reports it."""

    channel_id: str
    user_channel_id: str
    counterparty_node_id: str
    channel_point: str | None  # funding outpoint "txid:vout", as LND names it
    short_channel_id: int | None
    capacity_sat: int
    outbound_capacity_msat: int
    inbound_capacity_msat: int
    is_outbound: bool
    is_channel_ready: bool
    is_usable: bool
    is_announced: bool
    confirmations: int | None
    confirmations_required: int | None

    @classmethod
    def from_json(cls, c: dict[str, Any]) -> LdkChannel:
        return cls(
            channel_id=c["channel_id"],
            user_channel_id=c["user_channel_id"],
            counterparty_node_id=c["counterparty_node_id"],
            channel_point=c["funding_txo"],
            short_channel_id=c["short_channel_id"],
            capacity_sat=c["channel_value_sats"],
            outbound_capacity_msat=c["outbound_capacity_msat"],
            inbound_capacity_msat=c["inbound_capacity_msat"],
            is_outbound=c["is_outbound"],
            is_channel_ready=c["is_channel_ready"],
            is_usable=c["is_usable"],
            is_announced=c["is_announced"],
            confirmations=c["confirmations"],
            confirmations_required=c["confirmations_required"],
        )


@dataclass(frozen=True)
class LdkPayment:
    id: str
    kind: str
    direction: str
    status: str
    amount_msat: int | None
    fee_paid_msat: int | None
    payment_hash: str | None
    preimage: str | None
    # JIT receipts: what the LSP kept (bLIP-52's opening fee, skimmed from the forwarded HTLC).
    counterparty_skimmed_fee_msat: int | None = None

    @classmethod
    def from_json(cls, p: dict[str, Any]) -> LdkPayment:
        return cls(
            id=p["id"], kind=p["kind"], direction=p["direction"], status=p["status"],
            amount_msat=p["amount_msat"], fee_paid_msat=p["fee_paid_msat"], payment_hash=p.get("payment_hash"),
            preimage=p.get("preimage"), counterparty_skimmed_fee_msat=p.get("counterparty_skimmed_fee_msat"),
        )


class LdkNode:
    """A live ldk-node behind the lab's driver."""

    implementation = "ldk"

    def __init__(self, config: LdkConfig, runtime: Runtime):
        self.config = config
        self.name = config.name
        self.runtime = runtime
        self.proc: NodeHandle | None = None
        self._pubkey: str | None = None
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{config.api_port}", timeout=60)

    def __repr__(self) -> str:
        return f"LdkNode({self.name!r}, api=127.0.0.1:{self.config.api_port})"

    # -- the driver's API ---------------------------------------------------
    def call(self, method: str, timeout_s: float = 60, **params: Any) -> Any:
        """One API call; ``LdkError`` when ldk-node refuses, ``NodeError`` when the driver is unreachable."""
        body = {k: v for k, v in params.items() if v is not None}
        try:
            resp = self._http.post(f"/{method}", json=body, timeout=timeout_s)
        except httpx.HTTPError as exc:
            self._alive()
            raise NodeError(f"{self.name}: the LDK driver did not answer {method}: {exc}") from exc
        try:
            data = resp.json()
        except ValueError:
            raise NodeError(f"{self.name}: the LDK driver answered {method} with HTTP {resp.status_code}: "
                            f"{resp.text[:200]!r}") from None
        if "error" in data:
            raise LdkError(self.name, method, data["error"]["kind"], data["error"]["message"])
        return data["result"]

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self.config.datadir.mkdir(parents=True, exist_ok=True)
        self.proc = self.runtime.start(
            self.name, self.config.argv(), log_path=self.config.stdout_path, publish=[self.config.api_port]
        )

    def _alive(self) -> None:
        if self.proc is not None and not self.proc.is_running():
            raise ProcessDied(
                f"lab-ldk {self.name!r} exited with code {self.proc.returncode()}; see {self.config.stdout_path} "
                f"and {self.config.log_path}"
            )

    def wait_ready(self, chain_tip: tuple[int, str] | None = None) -> NodeInfo:
        def answering() -> bool:
            self._alive()
            try:
                self.call("getinfo", timeout_s=5)
            except NodeError:
                return False
            return True

        wait_for(answering, what=f"{self.name}'s LDK driver to answer", timeout_s="LND_READY",
                 log=self.config.stdout_path)
        return self.wait_synced(chain_tip)

    def wait_synced(self, chain_tip: tuple[int, str] | None = None) -> NodeInfo:
        """Until ldk-node's best block is ``chain_tip`` (it polls bitcoind every 2 s)."""

        def synced() -> bool:
            self._alive()
            return chain_tip is None or self.call("getinfo")["block_hash"] == chain_tip[1]

        wait_for(
            synced,
            what=f"{self.name} to sync to the chain tip {chain_tip[0] if chain_tip else ''}",
            timeout_s="LND_SYNC",
            log=self.config.log_path,
            describe=lambda: f"height {self.call('getinfo')['block_height']}",
        )
        return self.get_info()

    def stop(self) -> None:
        if self.proc is not None and self.proc.is_running():
            try:
                self.call("stop", timeout_s=20)
            except NodeError:
                pass
            self.proc.stop()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()

    # -- identity ----------------------------------------------------------
    @property
    def pubkey(self) -> str:
        if self._pubkey is None:
            self._pubkey = str(self.call("getinfo")["node_id"])
        return self._pubkey

    @property
    def p2p_address(self) -> str:
        return f"{self.config.advertise_host}:{self.config.p2p_port}"

    @property
    def rpc_address(self) -> str:
        return f"127.0.0.1:{self.config.api_port}"

    # -- everyday verbs ------------------------------------------------------
    def get_info(self) -> NodeInfo:
        i = self.call("getinfo")
        chans = self.list_channels()
        return NodeInfo(
            pubkey=i["node_id"], alias=self.name, block_height=i["block_height"], block_hash=i["block_hash"],
            synced_to_chain=i["latest_onchain_wallet_sync_timestamp"] is not None,
            synced_to_graph=True, num_active_channels=sum(c.is_usable for c in chans),
            num_peers=len(self.connected_peers()), version=f"ldk-node {i['ldk_node_version']}",
        )

    def new_address(self, kind: str = "p2wkh") -> str:
        if kind not in ("p2wkh",):
            raise NodeError(f"{self.name}: ldk-node gives only p2wkh addresses, not {kind!r}")
        return str(self.call("newaddress")["address"])

    def sync(self) -> None:
        """Make ldk-node poll the chain now (it does every 2 s by itself)."""
        self.call("sync")

    def balances(self) -> Balances:
        b = self.call("balances")
        chans = self.list_channels()
        return Balances(
            onchain_confirmed_sat=b["total_onchain_balance_sats"],
            onchain_unconfirmed_sat=0,
            channel_local_sat=b["total_lightning_balance_sats"],
            channel_remote_sat=sum(c.inbound_capacity_msat for c in chans) // 1000,
            pending_open_local_sat=0,
        )

    def spendable_onchain_sat(self) -> int:
        """On-chain funds minus the anchor reserve ldk-node keeps for its channels."""
        return int(self.call("balances")["spendable_onchain_balance_sats"])

    def add_invoice(self, amount_sat: int = 0, *, memo: str = "", expiry_s: int = 3600, amount_msat: int = 0) -> Invoice:
        msat = amount_msat or amount_sat * 1000 or None
        r = self.call("invoice", amount_msat=msat, description=memo, expiry_secs=expiry_s)
        return Invoice(payment_request=r["invoice"], payment_hash=r["payment_hash"], add_index=0, payment_addr="")

    def jit_invoice(
        self,
        amount_msat: int | None,
        *,
        memo: str = "",
        expiry_s: int = 3600,
        max_total_lsp_fee_msat: int | None = None,
        max_proportional_lsp_fee_ppm: int | None = None,
    ) -> Invoice:
        """An invoice paid through a JIT channel from the LSP (LDK's LSPS2 client:
        ``get_info``, then ``buy`` with the cheapest offer within the limit).
        ``amount_msat=None`` asks for a variable-amount invoice."""
        r = self.call(
            "jitinvoice", timeout_s=30, amount_msat=amount_msat, description=memo, expiry_secs=expiry_s,
            max_total_lsp_fee_limit_msat=max_total_lsp_fee_msat,
            max_proportional_lsp_fee_limit_ppm_msat=max_proportional_lsp_fee_ppm,
        )
        return Invoice(payment_request=r["invoice"], payment_hash=r["payment_hash"], add_index=0, payment_addr="")

    def pay_invoice(
        self,
        payment_request: str,
        *,
        fee_limit_sat: int = 100,
        timeout_s: int = 60,
        amount_sat: int | None = None,
        wait_settled: bool = True,
    ) -> PaymentResult:
        r = self.call("pay", invoice=payment_request, amount_msat=None if amount_sat is None else amount_sat * 1000,
                      max_fee_msat=fee_limit_sat * 1000)
        return self._settled(self.wait_payment(r["payment_id"], timeout_s=timeout_s), wait_settled)

    def _settled(self, res: PaymentResult, wait_settled: bool) -> PaymentResult:
        """As LndNode: a success also waits until this node's channels hold no HTLC."""
        if wait_settled and res.succeeded:
            self.wait_no_pending_htlcs()
        return res

    def keysend(
        self,
        dest: Any,
        amount_sat: int,
        *,
        fee_limit_sat: int = 100,
        timeout_s: int = 60,
        wait_settled: bool = True,
    ) -> PaymentResult:
        pub = dest if isinstance(dest, str) else dest.pubkey
        r = self.call("keysend", node_id=pub, amount_msat=amount_sat * 1000, max_fee_msat=fee_limit_sat * 1000)
        return self._settled(self.wait_payment(r["payment_id"], timeout_s=timeout_s), wait_settled)

    def wait_payment(self, payment_id: str, *, timeout_s: float = 60) -> PaymentResult:
        """Until the outbound payment ``payment_id`` succeeded or failed, as a ``PaymentResult``."""

        def final() -> LdkPayment | None:
            p = self.payment(payment_id)
            return p if p is not None and p.status != "pending" else None

        p: LdkPayment = wait_for(final, what=f"{self.name}'s payment {payment_id[:16]} to succeed or fail",
                                 timeout_s=timeout_s, log=self.config.log_path)
        reason = "FAILURE_REASON_NONE"
        if p.status == "failed":
            reasons = [e.get("reason") for e in self.events() if e["type"] == "PaymentFailed"
                       and e.get("payment_id") == payment_id]
            reason = str(reasons[-1]) if reasons else "unknown"
        fee = p.fee_paid_msat or 0
        return PaymentResult(
            status="SUCCEEDED" if p.status == "succeeded" else "FAILED",
            payment_hash=p.payment_hash or "", preimage=p.preimage or "",
            value_sat=(p.amount_msat or 0) // 1000, fee_sat=fee // 1000, fee_msat=fee,
            failure_reason=reason, route=(), attempts=0,
        )

    def payments(self) -> list[LdkPayment]:
        return [LdkPayment.from_json(p) for p in self.call("listpayments")]

    def payment(self, payment_id: str) -> LdkPayment | None:
        return next((p for p in self.payments() if p.id == payment_id), None)

    def received(self, payment_hash: str) -> LdkPayment | None:
        """The inbound payment for ``payment_hash`` once it succeeded (None before)."""
        for p in self.payments():
            if p.direction == "inbound" and p.payment_hash == payment_hash and p.status == "succeeded":
                return p
        return None

    def wait_received(self, payment_hash: str, *, timeout_s: str | float = "PAYMENT") -> LdkPayment:
        p: LdkPayment = wait_for(lambda: self.received(payment_hash),
                                 what=f"{self.name} to receive payment {payment_hash[:16]}",
                                 timeout_s=timeout_s, log=self.config.log_path)
        return p

    def pending_htlc_msat(self) -> int:
        """HTLCs in flight on this node's open channels, either direction (0 when all settled)."""
        return int(self.call("balances")["pending_htlc_msat"])

    def wait_no_pending_htlcs(self, *, timeout_s: str | float = "HTLC_RESOLVE") -> None:
        wait_for(lambda: self.pending_htlc_msat() == 0, what=f"{self.name}'s channels to hold no pending HTLC",
                 timeout_s=timeout_s, log=self.config.log_path)

    def list_channels(self) -> list[LdkChannel]:
        return [LdkChannel.from_json(c) for c in self.call("listchannels")]

    def channel(self, channel_point: str) -> LdkChannel | None:
        return next((c for c in self.list_channels() if c.channel_point == channel_point), None)

    def connected_peers(self) -> list[str]:
        return [p["node_id"] for p in self.call("listpeers") if p["is_connected"]]

    def connect(self, peer: Any) -> None:
        """Connect to ``peer`` (any lab node) for good and wait until both sides list each other."""
        if peer.pubkey in self.connected_peers():
            return
        self.call("connect", node_id=peer.pubkey, address=peer.p2p_address, persist=True)
        wait_for(
            lambda: peer.pubkey in self.connected_peers() and self.pubkey in peer.connected_peers(),
            what=f"{self.name} and {peer.name} to list each other as peers",
            timeout_s="PEER_CONNECT",
            log=self.config.log_path,
        )

    def disconnect(self, peer: Any) -> None:
        self.call("disconnect", node_id=peer.pubkey)
        wait_for(lambda: peer.pubkey not in self.connected_peers(), what=f"{self.name} to drop peer {peer.name}",
                 timeout_s="PEER_CONNECT")

    def open_channel(self, peer: Any, capacity_sat: int, *, push_sat: int = 0, announce: bool = True) -> str:
        """Open a channel to ``peer`` and return its channel point once ldk-node has broadcast the
        funding (its ChannelPending event); confirming it is the caller's business."""
        seen = len(self.events())
        r = self.call("openchannel", node_id=peer.pubkey, address=peer.p2p_address, amount_sat=capacity_sat,
                      push_msat=push_sat * 1000 or None, announce=announce)
        ev = self.wait_event("ChannelPending", after=seen, user_channel_id=str(r["user_channel_id"]))
        return str(ev["funding_txo"])

    def wait_can_send_over(self, channel_point: str, *, timeout_s: str | float = "CHANNEL_OPEN") -> None:
        """Until ldk-node lists the channel as usable (``is_usable``: ready, peer connected)."""
        wait_for(
            lambda: (ch := self.channel(channel_point)) is not None and ch.is_usable,
            what=f"channel {channel_point} to be usable on {self.name} (ldk)",
            timeout_s=timeout_s,
            log=self.config.log_path,
        )

    def close_channel(self, channel: LdkChannel, *, force: bool = False) -> None:
        self.call("closechannel", user_channel_id=channel.user_channel_id,
                  node_id=channel.counterparty_node_id, force=force)

    # -- events and LSPS1 --------------------------------------------------------
    def events(self, after: int = 0) -> list[dict[str, Any]]:
        """ldk-node's events since the driver started, in order (each with its ``seq``)."""
        return list(self.call("events", after=after))

    def wait_event(self, kind: str, *, timeout_s: str | float = "CHANNEL_PENDING", after: int = 0,
                   **match: Any) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            for e in self.events(after):
                if e["type"] == kind and all(e.get(k) == v for k, v in match.items()):
                    return e
            return None

        ev: dict[str, Any] = wait_for(found, what=f"{self.name} to see {kind} {match or ''}", timeout_s=timeout_s,
                                      log=self.config.log_path)
        return ev

    def lsps1_request(self, lsp_balance_sat: int, client_balance_sat: int, *, channel_expiry_blocks: int = 144,
                      announce_channel: bool = False) -> dict[str, Any]:
        """Order a channel from the LSP with LDK's LSPS1 client (get_info, then create_order)."""
        r: dict[str, Any] = self.call(
            "lsps1_request", timeout_s=30, lsp_balance_sat=lsp_balance_sat, client_balance_sat=client_balance_sat,
            channel_expiry_blocks=channel_expiry_blocks, announce_channel=announce_channel,
        )
        return r

    def lsps1_status(self, order_id: str) -> dict[str, Any]:
        r: dict[str, Any] = self.call("lsps1_status", timeout_s=30, order_id=order_id)
        return r
