"""``invoicesrpc.Invoices``: hold invoices (used by swaps and LSPS1 orders)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.rpc.base import Service, Stream

if TYPE_CHECKING:
    from lnd_grpc import lightning_pb2 as ln


class InvoicesRpc(Service):
    stub_factory = staticmethod(lambda s: s.invoices_grpc.InvoicesStub)

    def add_hold_invoice(self, payment_hash: str, amount_sat: int, *, memo: str = "", expiry_s: int = 3600) -> str:
        req = self.s.invoices.AddHoldInvoiceRequest(
            hash=bytes.fromhex(payment_hash), value=amount_sat, memo=memo, expiry=expiry_s
        )
        return str(self._call("AddHoldInvoice", req).payment_request)

    def settle(self, preimage: str) -> None:
        self._call("SettleInvoice", self.s.invoices.SettleInvoiceMsg(preimage=bytes.fromhex(preimage)))

    def cancel(self, payment_hash: str) -> None:
        self._call("CancelInvoice", self.s.invoices.CancelInvoiceMsg(payment_hash=bytes.fromhex(payment_hash)))

    def subscribe_single(self, payment_hash: str) -> Stream[ln.Invoice]:
        req = self.s.invoices.SubscribeSingleInvoiceRequest(r_hash=bytes.fromhex(payment_hash))
        return self._stream("SubscribeSingleInvoice", req)

    def state(self, payment_hash: str) -> str:
        req = self.s.invoices.LookupInvoiceMsg(payment_hash=bytes.fromhex(payment_hash))
        inv = self._call("LookupInvoiceV2", req)
        return str(self.s.ln.Invoice.InvoiceState.Name(inv.state))
