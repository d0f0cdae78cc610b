"""The main ``lnrpc.Lightning`` service: info, wallet, peers, channels, graph, invoices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.rpc.base import Service, txid_from_bytes

if TYPE_CHECKING:  # protoc's .pyi types, once `lab setup` generated them
    from lnd_grpc import lightning_pb2 as ln


@dataclass(frozen=True)
class NodeInfo:
    pubkey: str
    alias: str
    block_height: int
    block_hash: str
    synced_to_chain: bool
    synced_to_graph: bool
    num_active_channels: int
    num_peers: int
    version: str


@dataclass(frozen=True)
class Balances:
    onchain_confirmed_sat: int
    onchain_unconfirmed_sat: int
    channel_local_sat: int
    channel_remote_sat: int
    pending_open_local_sat: int


@dataclass(frozen=True)
class Htlc:
    incoming: bool
    amount_sat: int
    hash_hex: str
    expiration_height: int


@dataclass(frozen=True)
class ChannelInfo:
    chan_id: int
    channel_point: str
    remote_pubkey: str
    capacity_sat: int
    local_balance_sat: int
    remote_balance_sat: int
    active: bool
    private: bool
    initiator: bool
    pending_htlcs: tuple[Htlc, ...] = field(default_factory=tuple)
    local_reserve_sat: int = 0  # the channel reserve the peer requires of us: local balance it cannot send


@dataclass(frozen=True)
class Invoice:
    payment_request: str
    payment_hash: str
    add_index: int
    payment_addr: str


@dataclass(frozen=True)
class PolicyView:
    base_fee_msat: int
    fee_rate_ppm: int
    cltv_delta: int
    disabled: bool
    inbound_base_fee_msat: int = 0  # inbound fees (negative: a discount on HTLCs arriving over the channel)
    inbound_fee_rate_ppm: int = 0


@dataclass(frozen=True)
class GraphEdge:
    chan_id: int
    channel_point: str
    node1: str
    node2: str
    capacity_sat: int
    node1_policy: PolicyView | None
    node2_policy: PolicyView | None

    def policy_of(self, pubkey: str) -> PolicyView | None:
        if pubkey == self.node1:
            return self.node1_policy
        if pubkey == self.node2:
            return self.node2_policy
        raise KeyError(pubkey)


@dataclass(frozen=True)
class Graph:
    nodes: tuple[str, ...]
    edges: tuple[GraphEdge, ...]

    def edge(self, channel_point: str) -> GraphEdge | None:
        for e in self.edges:
            if e.channel_point == channel_point:
                return e
        return None


def _policy(p: Any) -> PolicyView | None:
    if p is None or not p.ByteSize():
        return None
    return PolicyView(
        int(p.fee_base_msat),
        int(p.fee_rate_milli_msat),
        int(p.time_lock_delta),
        bool(p.disabled),
        int(p.inbound_fee_base_msat),
        int(p.inbound_fee_rate_milli_msat),
    )


class LightningRpc(Service):
    stub_factory = staticmethod(lambda s: s.lnrpc.LightningStub)

    def get_info(self) -> NodeInfo:
        r = self._call("GetInfo", self.s.ln.GetInfoRequest())
        return NodeInfo(
            pubkey=r.identity_pubkey,
            alias=r.alias,
            block_height=r.block_height,
            block_hash=r.block_hash,
            synced_to_chain=r.synced_to_chain,
            synced_to_graph=r.synced_to_graph,
            num_active_channels=r.num_active_channels,
            num_peers=r.num_peers,
            version=r.version,
        )

    def new_address(self, kind: str = "p2wkh") -> str:
        types = {
            "p2wkh": self.s.ln.WITNESS_PUBKEY_HASH,
            "np2wkh": self.s.ln.NESTED_PUBKEY_HASH,
            "p2tr": self.s.ln.TAPROOT_PUBKEY,
        }
        return str(self._call("NewAddress", self.s.ln.NewAddressRequest(type=types[kind])).address)

    def balances(self) -> Balances:
        w = self._call("WalletBalance", self.s.ln.WalletBalanceRequest())
        c = self._call("ChannelBalance", self.s.ln.ChannelBalanceRequest())
        return Balances(
            onchain_confirmed_sat=int(w.confirmed_balance),
            onchain_unconfirmed_sat=int(w.unconfirmed_balance),
            channel_local_sat=int(c.local_balance.sat),
            channel_remote_sat=int(c.remote_balance.sat),
            pending_open_local_sat=int(c.pending_open_local_balance.sat),
        )

    def connect(self, pubkey: str, host: str, *, timeout_s: int = 20) -> None:
        addr = self.s.ln.LightningAddress(pubkey=pubkey, host=host)
        self._call("ConnectPeer", self.s.ln.ConnectPeerRequest(addr=addr, perm=True, timeout=timeout_s))

    def disconnect(self, pubkey: str) -> None:
        self._call("DisconnectPeer", self.s.ln.DisconnectPeerRequest(pub_key=pubkey))

    def peers(self) -> list[str]:
        return [p.pub_key for p in self._call("ListPeers", self.s.ln.ListPeersRequest()).peers]

    def list_aliases(self) -> dict[int, set[int]]:
        """ListAliases: base SCID -> the SCID aliases LND routes onto that channel."""
        r = self._call("ListAliases", self.s.ln.ListAliasesRequest())
        return {int(m.base_scid): {int(a) for a in m.aliases} for m in r.alias_maps}

    def list_channels(self, *, active_only: bool = False) -> list[ChannelInfo]:
        r = self._call("ListChannels", self.s.ln.ListChannelsRequest(active_only=active_only))
        return [
            ChannelInfo(
                chan_id=int(c.chan_id),
                channel_point=c.channel_point,
                remote_pubkey=c.remote_pubkey,
                capacity_sat=int(c.capacity),
                local_balance_sat=int(c.local_balance),
                remote_balance_sat=int(c.remote_balance),
                active=bool(c.active),
                private=bool(c.private),
                initiator=bool(c.initiator),
                pending_htlcs=tuple(
                    Htlc(h.incoming, int(h.amount), h.hash_lock.hex(), int(h.expiration_height)) for h in c.pending_htlcs
                ),
                local_reserve_sat=int(c.local_constraints.chan_reserve_sat),
            )
            for c in r.channels
        ]

    def pending_channels(self) -> ln.PendingChannelsResponse:
        resp: ln.PendingChannelsResponse = self._call("PendingChannels", self.s.ln.PendingChannelsRequest())
        return resp

    def closed_channels(self) -> list[Any]:
        return list(self._call("ClosedChannels", self.s.ln.ClosedChannelsRequest()).channels)

    def open_channel(
        self,
        pubkey: str,
        capacity_sat: int,
        *,
        push_sat: int = 0,
        private: bool = False,
        base_fee_msat: int | None = None,
        fee_rate_ppm: int | None = None,
        sat_per_vbyte: int = 2,
        zero_conf: bool = False,
        scid_alias: bool = False,
        anchors: bool = False,
    ) -> str:
        """Start a channel open; returns the funding outpoint ``txid:index``."""
        req = self.s.ln.OpenChannelRequest(
            node_pubkey=bytes.fromhex(pubkey),
            local_funding_amount=capacity_sat,
            push_sat=push_sat,
            private=private,
            sat_per_vbyte=sat_per_vbyte,
            zero_conf=zero_conf,
            scid_alias=scid_alias,
        )
        if anchors or zero_conf:
            req.commitment_type = self.s.ln.ANCHORS
        if base_fee_msat is not None:
            req.base_fee, req.use_base_fee = base_fee_msat, True
        if fee_rate_ppm is not None:
            req.fee_rate, req.use_fee_rate = fee_rate_ppm, True
        cp = self._call("OpenChannelSync", req, timeout=60)
        return f"{txid_from_bytes(cp.funding_txid_bytes)}:{cp.output_index}"

    def close_channel(self, channel_point: str, *, force: bool = False, sat_per_vbyte: int = 2) -> str:
        """Start closing; returns the closing txid once LND has broadcast it."""
        txid, idx = channel_point.split(":")
        cp = self.s.ln.ChannelPoint(funding_txid_str=txid, output_index=int(idx))
        req = self.s.ln.CloseChannelRequest(channel_point=cp, force=force)
        if not force:
            req.sat_per_vbyte = sat_per_vbyte
        stream = self._stream("CloseChannel", req, timeout=60)
        for update in stream:
            if update.HasField("close_pending"):
                stream.cancel()
                return txid_from_bytes(update.close_pending.txid)
            if update.HasField("chan_close"):
                return txid_from_bytes(update.chan_close.closing_txid)
        raise RuntimeError("CloseChannel stream ended without a closing transaction")

    def update_policy(self, channel_point: str, *, base_fee_msat: int, fee_rate_ppm: int, cltv_delta: int) -> None:
        txid, idx = channel_point.split(":")
        cp = self.s.ln.ChannelPoint(funding_txid_str=txid, output_index=int(idx))
        req = self.s.ln.PolicyUpdateRequest(
            chan_point=cp, base_fee_msat=base_fee_msat, fee_rate_ppm=fee_rate_ppm, time_lock_delta=cltv_delta
        )
        r = self._call("UpdateChannelPolicy", req)
        if r.failed_updates:
            raise RuntimeError(f"policy update failed: {r.failed_updates[0].update_error}")

    def describe_graph(self, *, include_unannounced: bool = False) -> Graph:
        r = self._call("DescribeGraph", self.s.ln.ChannelGraphRequest(include_unannounced=include_unannounced))
        edges = tuple(
            GraphEdge(
                chan_id=int(e.channel_id),
                channel_point=e.chan_point,
                node1=e.node1_pub,
                node2=e.node2_pub,
                capacity_sat=int(e.capacity),
                node1_policy=_policy(e.node1_policy) if e.HasField("node1_policy") else None,
                node2_policy=_policy(e.node2_policy) if e.HasField("node2_policy") else None,
            )
            for e in r.edges
        )
        return Graph(nodes=tuple(n.pub_key for n in r.nodes), edges=edges)

    def add_invoice(self, amount_sat: int = 0, *, memo: str = "", expiry_s: int = 3600, amount_msat: int = 0) -> Invoice:
        req = self.s.ln.Invoice(memo=memo, expiry=expiry_s)
        if amount_msat:
            req.value_msat = amount_msat
        else:
            req.value = amount_sat
        r = self._call("AddInvoice", req)
        return Invoice(r.payment_request, r.r_hash.hex(), int(r.add_index), r.payment_addr.hex())

    def lookup_invoice(self, payment_hash: str) -> ln.Invoice:
        inv: ln.Invoice = self._call("LookupInvoice", self.s.ln.PaymentHash(r_hash=bytes.fromhex(payment_hash)))
        return inv

    def decode_invoice(self, payment_request: str) -> ln.PayReq:
        req: ln.PayReq = self._call("DecodePayReq", self.s.ln.PayReqString(pay_req=payment_request))
        return req

    def list_payments(self) -> list[Any]:
        return list(self._call("ListPayments", self.s.ln.ListPaymentsRequest(include_incomplete=True)).payments)

    def transactions(self) -> list[ln.Transaction]:
        """Every on-chain transaction of the node's wallet (GetTransactions), with labels and fees."""
        req = self.s.ln.GetTransactionsRequest(start_height=0, end_height=-1)
        return list(self._call("GetTransactions", req).transactions)

    def forwarding_history(self) -> list[Any]:
        req = self.s.ln.ForwardingHistoryRequest(start_time=0, num_max_events=50000)
        return list(self._call("ForwardingHistory", req).forwarding_events)

