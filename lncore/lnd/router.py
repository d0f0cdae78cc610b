"""routerrpc.Router: SendPaymentV2 / TrackPaymentV2, streamed until the payment is final."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from typing_extensions import Unpack

from lncore.errors import LndError
from lncore.lnd import payments
from lncore.lnd.base import BidiStream, RpcBase
from lncore.lnd.payments import PaymentOptions
from lncore.lnd.types import PaymentOutcome

if TYPE_CHECKING:
    from lnd_grpc import lightning_pb2 as ln


OnUpdate = Callable[[PaymentOutcome], Awaitable[None]]


class RouterMixin(RpcBase):
    def outcome(self, payment: ln.Payment) -> PaymentOutcome:
        return payments.outcome(self.pb, payment)

    async def _until_final(
        self, updates: AsyncIterator[ln.Payment], on_update: OnUpdate | None
    ) -> ln.Payment:
        """The first final ``lnrpc.Payment`` of a payment stream (the last update if none is final)."""
        last: ln.Payment | None = None
        async for payment in updates:
            last = payment
            if on_update is not None:
                await on_update(self.outcome(payment))
            if payments.is_final(self.pb, payment):
                return payment
        if last is None:
            raise LndError("the payment stream ended without any update", grpc_code="UNKNOWN", rpc="SendPaymentV2")
        return last

    async def send_payment_final(
        self,
        payment_request: str,
        *,
        timeout_s: int,
        on_update: OnUpdate | None = None,
        **opts: Unpack[PaymentOptions],
    ) -> ln.Payment:
        """SendPaymentV2, streamed until the payment is final; LND's ``lnrpc.Payment`` (with its
        HTLC attempts). The one place the LSP sends a payment through LND.

        ``timeout_s`` is LND's payment timeout (it stops trying new routes after it); the stream
        gets ``payments.STREAM_MARGIN_S`` on top so LND, not grpc, decides the outcome."""
        req = payments.send_request(
            self.pb, payment_request=payment_request, timeout_s=timeout_s, watch_updates=on_update is not None, **opts
        )
        stream = self._stream(
            self.router_stub.SendPaymentV2, req, rpc="SendPaymentV2", timeout=timeout_s + payments.STREAM_MARGIN_S
        )
        return await self._until_final(stream, on_update)

    async def send_payment_v2(
        self,
        payment_request: str,
        *,
        timeout_s: int,
        on_update: OnUpdate | None = None,
        **opts: Unpack[PaymentOptions],
    ) -> PaymentOutcome:
        """``send_payment_final``, as a PaymentOutcome (SUCCEEDED with preimage/fee, or FAILED with the reason)."""
        final = await self.send_payment_final(payment_request, timeout_s=timeout_s, on_update=on_update, **opts)
        return self.outcome(final)

    async def track_payment(
        self,
        payment_hash: str,
        *,
        on_update: OnUpdate | None = None,
        timeout_s: float | None = None,
    ) -> PaymentOutcome:
        """TrackPaymentV2 until final: how a restarted LSP learns what happened to in-flight payments."""
        req = payments.track_request(self.pb, payment_hash, watch_updates=on_update is not None)
        stream = self._stream(self.router_stub.TrackPaymentV2, req, rpc="TrackPaymentV2", timeout=timeout_s)
        return self.outcome(await self._until_final(stream, on_update))

    # -- interception and aliases (LSPS2 JIT) ----------------------------------------
    def htlc_interceptor(self) -> BidiStream:
        call = self.router_stub.HtlcInterceptor(metadata=self._metadata)
        return BidiStream(call, "HtlcInterceptor")

    async def add_alias(self, base_scid: int, alias: int) -> None:
        """Route ``alias`` (a JIT SCID) onto the channel whose base SCID is ``base_scid``; idempotent."""
        req = self.pb.router.AddAliasesRequest(alias_maps=[self.pb.ln.AliasMap(base_scid=base_scid, aliases=[alias])])
        await self._unary(self.router_stub.XAddLocalChanAliases, req, rpc="XAddLocalChanAliases")

    async def pay_over(self, payment_request: str, *, outgoing_chan_id: int, timeout_s: int = 30) -> ln.Payment:
        """Pay an invoice through one given channel, fee-free (our own direct channel); LND's Payment."""
        return await self.send_payment_final(
            payment_request, timeout_s=timeout_s, fee_limit_msat=0, outgoing_chan_ids=[outgoing_chan_id]
        )
