"""invoicesrpc hold invoices: add with a given hash, watch one invoice, settle with the preimage, cancel.

Composition over an ``LndClient`` connection: ``HoldInvoices(lnd)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from lsp.lnd.base import RpcBase


class HoldInvoices:
    def __init__(self, lnd: RpcBase):
        self._lnd = lnd
        self._pb = lnd.pb
        self._stub = lnd.invoices_stub

    async def add(self, payment_hash: str, value_sat: int, *, memo: str, expiry_s: int, cltv_expiry: int) -> str:
        """AddHoldInvoice; returns the payment request. ``cltv_expiry`` is the final CLTV delta."""
        req = self._pb.invoices.AddHoldInvoiceRequest(
            hash=bytes.fromhex(payment_hash), value=value_sat, memo=memo, expiry=expiry_s, cltv_expiry=cltv_expiry
        )
        resp: Any = await self._lnd._unary(self._stub.AddHoldInvoice, req, rpc="AddHoldInvoice")
        return str(resp.payment_request)

    async def subscribe(self, payment_hash: str) -> AsyncIterator[Any]:
        """SubscribeSingleInvoice: the invoice now, then on every change (lnrpc.Invoice)."""
        req = self._pb.invoices.SubscribeSingleInvoiceRequest(r_hash=bytes.fromhex(payment_hash))
        async for inv in self._lnd._stream(self._stub.SubscribeSingleInvoice, req, rpc="SubscribeSingleInvoice"):
            yield inv

    def state_name(self, inv: Any) -> str:
        return str(self._pb.ln.Invoice.InvoiceState.Name(inv.state))

    async def settle(self, preimage: str) -> None:
        req = self._pb.invoices.SettleInvoiceMsg(preimage=bytes.fromhex(preimage))
        await self._lnd._unary(self._stub.SettleInvoice, req, rpc="SettleInvoice")

    async def cancel(self, payment_hash: str) -> None:
        req = self._pb.invoices.CancelInvoiceMsg(payment_hash=bytes.fromhex(payment_hash))
        await self._lnd._unary(self._stub.CancelInvoice, req, rpc="CancelInvoice")
