"""Invoices: lnrpc.Lightning's AddInvoice/LookupInvoice/SubscribeInvoices, and invoicesrpc's hold invoices
(add with a given hash, watch one, settle with the preimage, cancel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from lncore.lnd.base import RpcBase

if TYPE_CHECKING:
    from lnd_grpc import lightning_pb2 as ln


class InvoicesMixin(RpcBase):
    async def add_invoice(
        self, value_sat: int, memo: str = "", *, expiry_s: int = 3600, private: bool = False
    ) -> ln.AddInvoiceResponse:
        """r_hash (bytes), payment_request, add_index, payment_addr."""
        req = self.pb.ln.Invoice(value=value_sat, memo=memo, expiry=expiry_s, private=private)
        resp: ln.AddInvoiceResponse = await self._unary(self.lightning_stub.AddInvoice, req, rpc="AddInvoice")
        return resp

    async def lookup_invoice(self, payment_hash: str) -> ln.Invoice:
        req = self.pb.ln.PaymentHash(r_hash=bytes.fromhex(payment_hash))
        inv: ln.Invoice = await self._unary(self.lightning_stub.LookupInvoice, req, rpc="LookupInvoice")
        return inv

    async def subscribe_invoices(self, *, add_index: int = 0, settle_index: int = 0) -> AsyncIterator[ln.Invoice]:
        """Every invoice added or settled after the given indexes (replays what was missed since then)."""
        req = self.pb.ln.InvoiceSubscription(add_index=add_index, settle_index=settle_index)
        async for inv in self._stream(self.lightning_stub.SubscribeInvoices, req, rpc="SubscribeInvoices"):
            yield inv

    async def cancel_invoice(self, payment_hash: str) -> None:
        req = self.pb.invoices.CancelInvoiceMsg(payment_hash=bytes.fromhex(payment_hash))
        await self._unary(self.invoices_stub.CancelInvoice, req, rpc="CancelInvoice")

    async def add_hold_invoice(
        self,
        payment_hash: str,
        *,
        memo: str,
        expiry_s: int,
        cltv_expiry: int,
        value_sat: int = 0,
        value_msat: int = 0,
    ) -> str:
        """AddHoldInvoice; returns the payment request. ``cltv_expiry`` is the final CLTV delta."""
        req = self.pb.invoices.AddHoldInvoiceRequest(
            hash=bytes.fromhex(payment_hash), memo=memo, expiry=expiry_s, cltv_expiry=cltv_expiry
        )
        if value_msat:
            req.value_msat = value_msat
        else:
            req.value = value_sat
        resp = await self._unary(self.invoices_stub.AddHoldInvoice, req, rpc="AddHoldInvoice")
        return str(resp.payment_request)

    async def invoice_updates(self, payment_hash: str) -> AsyncIterator[ln.Invoice]:
        """SubscribeSingleInvoice: the invoice now, then on every change (lnrpc.Invoice)."""
        req = self.pb.invoices.SubscribeSingleInvoiceRequest(r_hash=bytes.fromhex(payment_hash))
        async for inv in self._stream(self.invoices_stub.SubscribeSingleInvoice, req, rpc="SubscribeSingleInvoice"):
            yield inv

    def invoice_state(self, inv: Any) -> str:
        """OPEN, SETTLED, CANCELED or ACCEPTED."""
        return str(self.pb.ln.Invoice.InvoiceState.Name(inv.state))

    async def settle_invoice(self, preimage: str) -> None:
        req = self.pb.invoices.SettleInvoiceMsg(preimage=bytes.fromhex(preimage))
        await self._unary(self.invoices_stub.SettleInvoice, req, rpc="SettleInvoice")
