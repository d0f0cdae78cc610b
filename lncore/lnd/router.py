"""routerrpc.Router: SendPaymentV2 / TrackPaymentV2, streamed until the payment is final."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypedDict

from typing_extensions import Unpack

from lncore.errors import LndError
from lncore.lnd.base import BidiStream, RpcBase
from lncore.lnd.types import PaymentOutcome

FINAL = ("SUCCEEDED", "FAILED")

if TYPE_CHECKING:
    from lnd_grpc import lightning_pb2 as ln



class SendOptions(TypedDict, total=False):
    """SendPaymentV2's options the LSP uses (all optional)."""

    fee_limit_sat: int | None
    fee_limit_msat: int | None
    amount_sat: int | None
    max_parts: int | None
    outgoing_chan_ids: list[int] | None
    last_hop_pubkey: str | None
    allow_self_payment: bool
    cltv_limit: int | None
    on_update: Callable[[PaymentOutcome], Awaitable[None]] | None


class RouterMixin(RpcBase):
    def outcome(self, payment: Any) -> PaymentOutcome:
        status = self.pb.ln.Payment.PaymentStatus.Name(payment.status)
        reason = None
        if status == "FAILED":
            reason = self.pb.ln.PaymentFailureReason.Name(payment.failure_reason)
        return PaymentOutcome(
            payment_hash=payment.payment_hash,
            status=status,
            fee_sat=payment.fee_msat // 1000 if payment.fee_msat else payment.fee_sat,
            fee_msat=payment.fee_msat,
            value_sat=payment.value_sat,
            preimage=payment.payment_preimage if status == "SUCCEEDED" else None,
            failure_reason=reason,
        )

    async def _until_final(
        self, updates: AsyncIterator[ln.Payment], on_update: Callable[[PaymentOutcome], Awaitable[None]] | None
    ) -> ln.Payment:
        """The first final ``lnrpc.Payment`` of a payment stream (the last update if none is final)."""
        last: ln.Payment | None = None
        async for payment in updates:
            last = payment
            status = self.pb.ln.Payment.PaymentStatus.Name(payment.status)
            if on_update is not None:
                await on_update(self.outcome(payment))
            if status in FINAL:
                return payment
        if last is None:
            raise LndError("the payment stream ended without any update", grpc_code="UNKNOWN", rpc="SendPaymentV2")
        return last

    async def send_payment_final(
        self, payment_request: str, *, timeout_s: int, **opts: Unpack[SendOptions]
    ) -> ln.Payment:
        """SendPaymentV2, streamed until the payment is final; LND's ``lnrpc.Payment`` (with its
        HTLC attempts). The one place the LSP sends a payment through LND.

        ``timeout_s`` is LND's payment timeout (it stops trying new routes after it);
        the stream itself gets a margin on top so LND, not grpc, decides the outcome."""
        on_update = opts.get("on_update")
        req = self.pb.router.SendPaymentRequest(
            payment_request=payment_request,
            timeout_seconds=timeout_s,
            # In-flight updates only matter to a caller that watches them; skipping them saves a
            # message (and a protobuf decode) per HTLC attempt on every payment.
            no_inflight_updates=on_update is None,
        )
        if opts.get("fee_limit_msat") is not None:
            req.fee_limit_msat = opts["fee_limit_msat"]
        elif opts.get("fee_limit_sat") is not None:
            req.fee_limit_sat = opts["fee_limit_sat"]
        if opts.get("amount_sat"):
            req.amt = opts["amount_sat"]
        if opts.get("max_parts"):
            req.max_parts = opts["max_parts"]
        # Circular rebalancing: leave through one of our channels, come back through another.
        if opts.get("outgoing_chan_ids"):
            req.outgoing_chan_ids.extend(opts["outgoing_chan_ids"])
        last_hop = opts.get("last_hop_pubkey")
        if last_hop:
            req.last_hop_pubkey = bytes.fromhex(last_hop)
        if opts.get("allow_self_payment"):
            req.allow_self_payment = True
        if opts.get("cltv_limit") is not None:
            req.cltv_limit = opts["cltv_limit"]
        stream = self._stream(self.router_stub.SendPaymentV2, req, rpc="SendPaymentV2", timeout=timeout_s + 60)
        return await self._until_final(stream, on_update)

    async def send_payment_v2(
        self, payment_request: str, *, timeout_s: int, **opts: Unpack[SendOptions]
    ) -> PaymentOutcome:
        """``send_payment_final``, as a PaymentOutcome (SUCCEEDED with preimage/fee, or FAILED with the reason)."""
        return self.outcome(await self.send_payment_final(payment_request, timeout_s=timeout_s, **opts))

    async def track_payment(
        self,
        payment_hash: str,
        *,
        on_update: Callable[[PaymentOutcome], Awaitable[None]] | None = None,
        timeout_s: float | None = None,
    ) -> PaymentOutcome:
        """TrackPaymentV2 until final: how a restarted LSP learns what happened to in-flight payments."""
        req = self.pb.router.TrackPaymentRequest(payment_hash=bytes.fromhex(payment_hash), no_inflight_updates=False)
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
