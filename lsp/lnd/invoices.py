"""Invoices: lnrpc.Lightning's AddInvoice/LookupInvoice/SubscribeInvoices (+ invoicesrpc for cancel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from lsp.lnd.base import RpcBase


class InvoicesMixin(RpcBase):
    async def add_invoice(self, value_sat: int, memo: str = "", *, expiry_s: int = 3600, private: bool = False) -> Any:
        """Returns AddInvoiceResponse (r_hash bytes, payment_request, add_index, payment_addr)."""
        req = self.pb.ln.Invoice(value=value_sat, memo=memo, expiry=expiry_s, private=private)
        return await self._unary(self.lightning_stub.AddInvoice, req, rpc="AddInvoice")

    async def lookup_invoice(self, payment_hash: str) -> Any:
        req = self.pb.ln.PaymentHash(r_hash=bytes.fromhex(payment_hash))
        return await self._unary(self.lightning_stub.LookupInvoice, req, rpc="LookupInvoice")

    async def subscribe_invoices(self, *, add_index: int = 0, settle_index: int = 0) -> AsyncIterator[Any]:
        """Every invoice added or settled after the given indexes (replays what was missed since then)."""
        req = self.pb.ln.InvoiceSubscription(add_index=add_index, settle_index=settle_index)
        async for inv in self._stream(self.lightning_stub.SubscribeInvoices, req, rpc="SubscribeInvoices"):
            yield inv

    async def cancel_invoice(self, payment_hash: str) -> None:
        req = self.pb.invoices.CancelInvoiceMsg(payment_hash=bytes.fromhex(payment_hash))
        await self._unary(self.invoices_stub.CancelInvoice, req, rpc="CancelInvoice")
