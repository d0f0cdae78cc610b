"""The LND calls the LSPS protocols need beyond the core client, on the same async connection.

Kept apart from ``lsp/lnd/`` so the core client stays as it is: this wraps an
``LndClient`` and reuses its channel, macaroon and error mapping. Bidirectional
streams (HtlcInterceptor) are exposed as ``BidiStream`` objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from lsp.errors import LndError
from lsp.lnd.base import to_lnd_error
from lsp.lnd.client import LndClient
from lsp.lnd.types import txid_from_bytes

LSPS0_MESSAGE_TYPE = 37913


@dataclass(frozen=True)
class OpenedChannel:
    channel_point: str
    chan_id: int  # LND's chan_id: for a zero-conf channel, its base alias
    base_scid: int


class BidiStream:
    """One bidirectional gRPC call: ``await write(msg)``, ``async for msg in stream``."""

    def __init__(self, call: Any, rpc: str):
        self.call = call
        self.rpc = rpc

    async def write(self, msg: Any) -> None:
        try:
            await self.call.write(msg)
        except grpc.aio.AioRpcError as exc:
            raise to_lnd_error(exc, self.rpc) from None

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for msg in self.call:
                yield msg
        except grpc.aio.AioRpcError as exc:
            raise to_lnd_error(exc, self.rpc) from None

    def cancel(self) -> None:
        self.call.cancel()


class LspsLnd:
    def __init__(self, lnd: LndClient):
        self.lnd = lnd
        self.pb = lnd.pb

    # -- custom peer messages (LSPS0) ---------------------------------------
    async def send_custom_message(self, peer: str, data: bytes, msg_type: int = LSPS0_MESSAGE_TYPE) -> None:
        req = self.pb.ln.SendCustomMessageRequest(peer=bytes.fromhex(peer), type=msg_type, data=data)
        await self.lnd._unary(self.lnd.lightning_stub.SendCustomMessage, req, rpc="SendCustomMessage")

    async def custom_messages(self) -> AsyncIterator[Any]:
        req = self.pb.ln.SubscribeCustomMessagesRequest()
        async for msg in self.lnd._stream(
            self.lnd.lightning_stub.SubscribeCustomMessages, req, rpc="SubscribeCustomMessages"
        ):
            yield msg

    # -- interception and aliases -------------------------------------------
    def htlc_interceptor(self) -> BidiStream:
        call = self.lnd.router_stub.HtlcInterceptor(metadata=self.lnd._metadata)
        return BidiStream(call, "HtlcInterceptor")

    async def list_aliases(self) -> list[Any]:
        resp = await self.lnd._unary(
            self.lnd.lightning_stub.ListAliases, self.pb.ln.ListAliasesRequest(), rpc="ListAliases"
        )
        return list(resp.alias_maps)

    async def add_alias(self, base_scid: int, alias: int) -> None:
        """Route ``alias`` (a JIT SCID) onto the channel whose base SCID is ``base_scid``; idempotent."""
        req = self.pb.router.AddAliasesRequest(alias_maps=[self.pb.ln.AliasMap(base_scid=base_scid, aliases=[alias])])
        await self.lnd._unary(self.lnd.router_stub.XAddLocalChanAliases, req, rpc="XAddLocalChanAliases")

    # -- zero-conf channel ----------------------------------------------------
    async def open_zero_conf(
        self, peer: str, capacity_sat: int, *, timeout_s: float = 60, memo: str = ""
    ) -> OpenedChannel:
        """Open a private zero-conf anchors channel with scid-alias and return once it is usable.

        Usable means: LND reported ``chan_open`` (channel_ready exchanged, no confirmation needed)
        and the channel is listed active with its alias, so a forward can be resumed onto it.
        ``memo`` is stored by LND with the channel (``find_by_memo`` finds it after a restart)."""
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
        async for update in self.lnd._stream(
            self.lnd.lightning_stub.OpenChannel, req, rpc="OpenChannel", timeout=timeout_s
        ):
            kind = update.WhichOneof("update")
            if kind == "chan_pending":
                channel_point = f"{txid_from_bytes(update.chan_pending.txid)}:{update.chan_pending.output_index}"
            elif kind == "chan_open":
                cp = update.chan_open.channel_point
                channel_point = f"{txid_from_bytes(cp.funding_txid_bytes)}:{cp.output_index}"
                break
        if not channel_point:
            raise LndError("OpenChannel ended without a channel point", grpc_code="UNKNOWN", rpc="OpenChannel")
        return await self.wait_active(peer, channel_point, timeout_s=timeout_s)

    async def wait_active(self, peer: str, channel_point: str, *, timeout_s: float = 60) -> OpenedChannel:
        import asyncio
        import time

        deadline = time.monotonic() + timeout_s
        while True:
            for ch in await self.lnd.list_channels(peer=peer):
                if ch.channel_point == channel_point and ch.active:
                    return OpenedChannel(channel_point, ch.chan_id, ch.chan_id)
            if time.monotonic() > deadline:
                raise LndError(
                    f"channel {channel_point} did not become active", grpc_code="DEADLINE_EXCEEDED", rpc="ListChannels"
                )
            await asyncio.sleep(0.05)

    # -- the on-chain wallet (LSPS1 on-chain payments) --------------------------
    async def network(self) -> str:
        """LND's network: mainnet, testnet, signet or regtest."""
        info = await self.lnd.get_info()
        return str(info.chains[0].network) if info.chains else "mainnet"

    # -- hold invoices and payments (wrapped mode) -----------------------------
    async def add_hold_invoice(
        self, payment_hash: str, value_msat: int, *, memo: str, expiry_s: int, cltv_expiry: int
    ) -> str:
        req = self.pb.invoices.AddHoldInvoiceRequest(
            hash=bytes.fromhex(payment_hash), value_msat=value_msat, memo=memo, expiry=expiry_s, cltv_expiry=cltv_expiry
        )
        resp = await self.lnd._unary(self.lnd.invoices_stub.AddHoldInvoice, req, rpc="AddHoldInvoice")
        return str(resp.payment_request)

    async def invoice_updates(self, payment_hash: str) -> AsyncIterator[Any]:
        req = self.pb.invoices.SubscribeSingleInvoiceRequest(r_hash=bytes.fromhex(payment_hash))
        async for inv in self.lnd._stream(
            self.lnd.invoices_stub.SubscribeSingleInvoice, req, rpc="SubscribeSingleInvoice"
        ):
            yield inv

    async def settle_invoice(self, preimage: str) -> None:
        req = self.pb.invoices.SettleInvoiceMsg(preimage=bytes.fromhex(preimage))
        await self.lnd._unary(self.lnd.invoices_stub.SettleInvoice, req, rpc="SettleInvoice")

    async def pay_over(self, payment_request: str, *, outgoing_chan_id: int, timeout_s: int = 30) -> Any:
        """Pay an invoice through one given channel, fee-free (it is our own direct channel)."""
        return await self.lnd.send_payment_final(
            payment_request, timeout_s=timeout_s, fee_limit_msat=0, outgoing_chan_ids=[outgoing_chan_id]
        )


def preimage_matches(preimage_hex: str, payment_hash: str) -> bool:
    return hashlib.sha256(bytes.fromhex(preimage_hex)).hexdigest() == payment_hash
