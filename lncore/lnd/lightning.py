"""lnrpc.Lightning: node info, balances, peers, channels, graph, forwarding history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from lncore.errors import LndError
from lncore.lnd.base import RpcBase
from lncore.lnd.types import ChannelPointRef, OpenedChannel, txid_from_bytes, txid_to_bytes

if TYPE_CHECKING:  # protoc's .pyi types, once `lsp stubs` / `lab setup` generated them
    from lnd_grpc import lightning_pb2 as ln


class LightningMixin(RpcBase):
    async def get_info(self) -> ln.GetInfoResponse:
        resp: ln.GetInfoResponse = await self._unary(self.lightning_stub.GetInfo, self.pb.ln.GetInfoRequest(), rpc="GetInfo")
        return resp

    async def wallet_balance(self) -> ln.WalletBalanceResponse:
        resp: ln.WalletBalanceResponse = await self._unary(
            self.lightning_stub.WalletBalance, self.pb.ln.WalletBalanceRequest(), rpc="WalletBalance"
        )
        return resp

    async def channel_balance(self) -> ln.ChannelBalanceResponse:
        resp: ln.ChannelBalanceResponse = await self._unary(
            self.lightning_stub.ChannelBalance, self.pb.ln.ChannelBalanceRequest(), rpc="ChannelBalance"
        )
        return resp

    async def list_channels(self, *, active_only: bool = False, peer: str | None = None) -> list[ln.Channel]:
        req = self.pb.ln.ListChannelsRequest(active_only=active_only)
        if peer:
            req.peer = bytes.fromhex(peer)
        resp: ln.ListChannelsResponse = await self._unary(self.lightning_stub.ListChannels, req, rpc="ListChannels")
        return list(resp.channels)

    async def pending_channels(self) -> ln.PendingChannelsResponse:
        resp: ln.PendingChannelsResponse = await self._unary(
            self.lightning_stub.PendingChannels, self.pb.ln.PendingChannelsRequest(), rpc="PendingChannels"
        )
        return resp

    async def channel_points_by_memo(self) -> dict[str, str]:
        """Channel point of every open or pending-open channel LND stores a memo with (the LSP sets
        one on each channel it opens, so a restarted LSP can find the channel an earlier run opened)."""
        found: dict[str, str] = {}
        for c in await self.list_channels():
            if c.memo:
                found[c.memo] = str(c.channel_point)
        for p in (await self.pending_channels()).pending_open_channels:
            if p.channel.memo:
                found.setdefault(p.channel.memo, str(p.channel.channel_point))
        return found

    async def find_channel_by_memo(self, memo: str, *, look_s: float = 0.0) -> str | None:
        """The channel point of the open or pending channel stored with ``memo``, or None.

        A channel between pending and open can be in neither list for a moment (seen in CI after a
        restart mid-open), so with ``look_s`` a miss is retried for that long before it counts."""
        started = time.monotonic()
        while True:
            found = (await self.channel_points_by_memo()).get(memo)
            if found is not None or time.monotonic() - started >= look_s:
                return found
            await asyncio.sleep(0.2)

    async def closed_channels(self) -> list[ln.ChannelCloseSummary]:
        resp: ln.ClosedChannelsResponse = await self._unary(
            self.lightning_stub.ClosedChannels, self.pb.ln.ClosedChannelsRequest(), rpc="ClosedChannels"
        )
        return list(resp.channels)

    async def list_peers(self) -> list[ln.Peer]:
        req = self.pb.ln.ListPeersRequest()
        resp: ln.ListPeersResponse = await self._unary(self.lightning_stub.ListPeers, req, rpc="ListPeers")
        return list(resp.peers)

    async def connect_peer(self, pubkey: str, host: str, *, perm: bool = False, timeout_s: int = 30) -> bool:
        """Connect; returns False (not an error) if already connected."""
        req = self.pb.ln.ConnectPeerRequest(
            addr=self.pb.ln.LightningAddress(pubkey=pubkey, host=host), perm=perm, timeout=timeout_s
        )
        try:
            await self._unary(self.lightning_stub.ConnectPeer, req, rpc="ConnectPeer", timeout=timeout_s + 5)
        except LndError as exc:  # "already connected" is success for us
            if "already connected" in exc.message:
                return False
            raise
        return True

    async def open_channel(
        self,
        pubkey: str,
        local_funding_sat: int,
        *,
        push_sat: int = 0,
        private: bool = False,
        sat_per_vbyte: int | None = None,
        target_conf: int | None = None,
        min_confs: int = 1,
        memo: str = "",
    ) -> ChannelPointRef:
        """OpenChannelSync: returns once the funding transaction is broadcast (the channel is pending)."""
        req = self.pb.ln.OpenChannelRequest(
            node_pubkey=bytes.fromhex(pubkey),
            local_funding_amount=local_funding_sat,
            push_sat=push_sat,
            private=private,
            min_confs=min_confs,
            spend_unconfirmed=min_confs == 0,
            memo=memo,
        )
        if sat_per_vbyte:
            req.sat_per_vbyte = sat_per_vbyte
        elif target_conf:
            req.target_conf = target_conf
        cp = await self._unary(self.lightning_stub.OpenChannelSync, req, rpc="OpenChannelSync", timeout=120)
        txid = cp.funding_txid_str or txid_from_bytes(cp.funding_txid_bytes)
        return ChannelPointRef(txid, cp.output_index)

    async def batch_open_channels(
        self,
        pubkey: str,
        channels: list[tuple[int, int, bool]],
        *,
        memo: str = "",
        min_confs: int = 1,
        target_conf: int = 6,
    ) -> list[ChannelPointRef]:
        """BatchOpenChannel: open every (local_funding_sat, push_sat, private) channel to ``pubkey``
        in one funding transaction, atomically (all are pending once it returns, or none is)."""
        req = self.pb.ln.BatchOpenChannelRequest(
            channels=[
                self.pb.ln.BatchOpenChannel(
                    node_pubkey=bytes.fromhex(pubkey),
                    local_funding_amount=amount,
                    push_sat=push,
                    private=private,
                    memo=memo,
                )
                for amount, push, private in channels
            ],
            min_confs=min_confs,
            spend_unconfirmed=min_confs == 0,
            target_conf=target_conf,
        )
        resp = await self._unary(self.lightning_stub.BatchOpenChannel, req, rpc="BatchOpenChannel", timeout=120)
        return [ChannelPointRef(txid_from_bytes(p.txid), p.output_index) for p in resp.pending_channels]

    def _channel_point(self, cp: ChannelPointRef | str) -> ln.ChannelPoint:
        ref = ChannelPointRef.parse(cp) if isinstance(cp, str) else cp
        point: ln.ChannelPoint = self.pb.ln.ChannelPoint(
            funding_txid_bytes=txid_to_bytes(ref.funding_txid), output_index=ref.output_index
        )
        return point

    async def close_channel(
        self,
        channel_point: ChannelPointRef | str,
        *,
        force: bool = False,
        sat_per_vbyte: int | None = None,
        wait_for_confirmation: bool = False,
    ) -> str:
        """Close (cooperative unless ``force``); returns the closing txid once it is broadcast,
        or once it confirms when ``wait_for_confirmation``."""
        req = self.pb.ln.CloseChannelRequest(channel_point=self._channel_point(channel_point), force=force)
        if sat_per_vbyte:
            req.sat_per_vbyte = sat_per_vbyte
        closing_txid = ""
        async for update in self._stream(self.lightning_stub.CloseChannel, req, rpc="CloseChannel"):
            kind = update.WhichOneof("update")
            if kind == "close_pending":
                closing_txid = txid_from_bytes(update.close_pending.txid)
                if not wait_for_confirmation:
                    return closing_txid
            elif kind == "chan_close":
                return txid_from_bytes(update.chan_close.closing_txid)
        return closing_txid

    async def subscribe_channel_events(self) -> AsyncIterator[ln.ChannelEventUpdate]:
        req = self.pb.ln.ChannelEventSubscription()
        async for update in self._stream(self.lightning_stub.SubscribeChannelEvents, req, rpc="SubscribeChannelEvents"):
            yield update

    async def forwarding_history(
        self, *, start_time: int = 0, end_time: int = 0, index_offset: int = 0, max_events: int = 10_000
    ) -> Any:
        req = self.pb.ln.ForwardingHistoryRequest(
            start_time=start_time, end_time=end_time, index_offset=index_offset, num_max_events=max_events
        )
        return await self._unary(self.lightning_stub.ForwardingHistory, req, rpc="ForwardingHistory")

    async def describe_graph(self, *, include_unannounced: bool = False) -> ln.ChannelGraph:
        req = self.pb.ln.ChannelGraphRequest(include_unannounced=include_unannounced)
        graph: ln.ChannelGraph = await self._unary(self.lightning_stub.DescribeGraph, req, rpc="DescribeGraph", timeout=120)
        return graph

    async def decode_pay_req(self, payment_request: str) -> ln.PayReq:
        decoded: ln.PayReq = await self._unary(
            self.lightning_stub.DecodePayReq, self.pb.ln.PayReqString(pay_req=payment_request), rpc="DecodePayReq"
        )
        return decoded

    async def list_invoices(self, *, max_invoices: int = 10_000) -> list[ln.Invoice]:
        """The node's invoices, oldest first (each settled one with its ``settle_index``)."""
        req = self.pb.ln.ListInvoiceRequest(num_max_invoices=max_invoices)
        resp: ln.ListInvoiceResponse = await self._unary(self.lightning_stub.ListInvoices, req, rpc="ListInvoices")
        return list(resp.invoices)

    async def list_payments(
        self, *, include_incomplete: bool = True, max_payments: int = 10_000, index_offset: int = 0
    ) -> list[ln.Payment]:
        """The payments this node sent (one record per payment hash, with its HTLC attempts), oldest
        first; with ``index_offset``, only those after that payment index."""
        req = self.pb.ln.ListPaymentsRequest(
            include_incomplete=include_incomplete, max_payments=max_payments, index_offset=index_offset
        )
        resp: ln.ListPaymentsResponse = await self._unary(self.lightning_stub.ListPayments, req, rpc="ListPayments")
        return list(resp.payments)

    # -- custom peer messages (LSPS0 rides on them) --------------------------------
    async def send_custom_message(self, peer: str, data: bytes, msg_type: int) -> None:
        req = self.pb.ln.SendCustomMessageRequest(peer=bytes.fromhex(peer), type=msg_type, data=data)
        await self._unary(self.lightning_stub.SendCustomMessage, req, rpc="SendCustomMessage")

    async def custom_messages(self) -> AsyncIterator[ln.CustomMessage]:
        req = self.pb.ln.SubscribeCustomMessagesRequest()
        async for msg in self._stream(self.lightning_stub.SubscribeCustomMessages, req, rpc="SubscribeCustomMessages"):
            yield msg

    async def fee_report(self) -> list[ln.ChannelFeeReport]:
        """FeeReport: each channel's own forwarding policy (outbound and inbound fees)."""
        resp: ln.FeeReportResponse = await self._unary(
            self.lightning_stub.FeeReport, self.pb.ln.FeeReportRequest(), rpc="FeeReport"
        )
        return list(resp.channel_fees)

    async def get_chan_info(self, chan_id: int) -> ln.ChannelEdge:
        req = self.pb.ln.ChanInfoRequest(chan_id=chan_id)
        resp: ln.ChannelEdge = await self._unary(self.lightning_stub.GetChanInfo, req, rpc="GetChanInfo")
        return resp

    async def update_channel_policy(
        self,
        channel_point: str,
        *,
        base_fee_msat: int,
        fee_rate_ppm: int,
        time_lock_delta: int,
        inbound_base_fee_msat: int = 0,
        inbound_fee_rate_ppm: int = 0,
    ) -> None:
        """UpdateChannelPolicy for one channel, inbound fee included (negative: a discount)."""
        txid, index = channel_point.split(":")
        pb = self.pb.ln
        req = pb.PolicyUpdateRequest(
            chan_point=pb.ChannelPoint(funding_txid_str=txid, output_index=int(index)),
            base_fee_msat=base_fee_msat,
            fee_rate_ppm=fee_rate_ppm,
            time_lock_delta=time_lock_delta,
            inbound_fee=pb.InboundFee(base_fee_msat=inbound_base_fee_msat, fee_rate_ppm=inbound_fee_rate_ppm),
        )
        resp: ln.PolicyUpdateResponse = await self._unary(self.lightning_stub.UpdateChannelPolicy, req, rpc="UpdateChannelPolicy")
        if resp.failed_updates:
            raise LndError(
                f"policy update of {channel_point} failed: {resp.failed_updates[0].update_error}",
                rpc="UpdateChannelPolicy",
            )

    async def bake_macaroon(self, permissions: list[tuple[str, str]]) -> str:
        """BakeMacaroon: a new macaroon (hex) granting only ``permissions`` ((entity, action) pairs,
        e.g. ("invoices", "write")), under the node's default root key."""
        req = self.pb.ln.BakeMacaroonRequest(
            permissions=[self.pb.ln.MacaroonPermission(entity=e, action=a) for e, a in permissions]
        )
        resp: ln.BakeMacaroonResponse = await self._unary(self.lightning_stub.BakeMacaroon, req, rpc="BakeMacaroon")
        return str(resp.macaroon)

    async def send_all(
        self, address: str, *, label: str = "", target_conf: int = 6, sat_per_vbyte: int | None = None
    ) -> str:
        """SendCoins with send_all: the whole confirmed wallet, minus the miner fee (``sat_per_vbyte``,
        else LND's estimate for ``target_conf`` blocks), to ``address``; returns the txid."""
        req = self.pb.ln.SendCoinsRequest(addr=address, send_all=True, label=label)
        if sat_per_vbyte:
            req.sat_per_vbyte = sat_per_vbyte
        else:
            req.target_conf = target_conf
        resp: ln.SendCoinsResponse = await self._unary(self.lightning_stub.SendCoins, req, rpc="SendCoins", timeout=120)
        return str(resp.txid)

    async def sign_message(self, message: bytes) -> str:
        """SignMessage: the node key's signature of ``message`` as LND (and LSPS0's ln_signature)
        make it: over "Lightning Signed Message:" + message, double SHA-256, recoverable, zbase32."""
        resp: ln.SignMessageResponse = await self._unary(
            self.lightning_stub.SignMessage, self.pb.ln.SignMessageRequest(msg=message), rpc="SignMessage"
        )
        return str(resp.signature)

    async def peer_events(self) -> AsyncIterator[ln.PeerEvent]:
        """SubscribePeerEvents: a peer came online (PEER_ONLINE) or went offline (PEER_OFFLINE)."""
        req = self.pb.ln.PeerEventSubscription()
        async for ev in self._stream(self.lightning_stub.SubscribePeerEvents, req, rpc="SubscribePeerEvents"):
            yield ev

    async def list_aliases(self) -> list[ln.AliasMap]:
        req = self.pb.ln.ListAliasesRequest()
        resp: ln.ListAliasesResponse = await self._unary(self.lightning_stub.ListAliases, req, rpc="ListAliases")
        return list(resp.alias_maps)

    async def network(self) -> str:
        """LND's network: mainnet, testnet, signet or regtest."""
        info = await self.get_info()
        return str(info.chains[0].network) if info.chains else "mainnet"

    # -- zero-conf channels (LSPS2 JIT) --------------------------------------------
    async def open_zero_conf(
        self,
        peer: str,
        capacity_sat: int,
        *,
        timeout_s: float = 60,
        memo: str = "",
        on_pending: Callable[[str], None] | None = None,
    ) -> OpenedChannel:
        """Open a private zero-conf anchors channel with scid-alias and return once it is usable.

        Usable means: LND reported ``chan_open`` (channel_ready exchanged, no confirmation needed)
        and the channel is listed active with its alias, so a forward can be resumed onto it.
        ``memo`` is stored by LND with the channel (``find_channel_by_memo`` finds it after a restart).
        ``on_pending`` is called with the channel point once LND has published the funding."""
        ln = self.pb.ln
        req = ln.OpenChannelRequest(
            node_pubkey=bytes.fromhex(peer),
            local_funding_amount=capacity_sat,
            private=True,
            zero_conf=True,
            scid_alias=True,
            commitment_type=ln.CommitmentType.ANCHORS,
            spend_unconfirmed=False,
            # Zero forwarding fees on the JIT channel: the LSPS2 opening fee is the LSP's price, and
            # later payments through the zero-fee route hint must pass LND's policy check unchanged.
            base_fee=0,
            fee_rate=0,
            use_base_fee=True,
            use_fee_rate=True,
            memo=memo,
        )
        channel_point = ""
        async for update in self._stream(self.lightning_stub.OpenChannel, req, rpc="OpenChannel", timeout=timeout_s):
            kind = update.WhichOneof("update")
            if kind == "chan_pending":
                channel_point = f"{txid_from_bytes(update.chan_pending.txid)}:{update.chan_pending.output_index}"
                if on_pending is not None:
                    on_pending(channel_point)
            elif kind == "chan_open":
                cp = update.chan_open.channel_point
                channel_point = f"{txid_from_bytes(cp.funding_txid_bytes)}:{cp.output_index}"
                break
        if not channel_point:
            raise LndError("OpenChannel ended without a channel point", grpc_code="UNKNOWN", rpc="OpenChannel")
        return await self.wait_active(peer, channel_point, timeout_s=timeout_s)

    async def wait_active(self, peer: str, channel_point: str, *, timeout_s: float = 60) -> OpenedChannel:
        deadline = time.monotonic() + timeout_s
        while True:
            for ch in await self.list_channels(peer=peer):
                if ch.channel_point == channel_point and ch.active:
                    return OpenedChannel(channel_point, ch.chan_id, ch.chan_id)
            if time.monotonic() > deadline:
                raise LndError(
                    f"channel {channel_point} did not become active", grpc_code="DEADLINE_EXCEEDED", rpc="ListChannels"
                )
            await asyncio.sleep(0.05)
