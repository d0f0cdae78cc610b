"""Wrapped-invoice JIT mode: JIT channels for any stock client (no client-side support needed).

The client hands the LSP its own invoice for A msat. The LSP answers with a
hold invoice for the same payment hash and P msat, where P is the smallest
payment with P - opening_fee(P) == A (the LSPS2 fee formula). When the payer's
HTLC is ACCEPTED on the hold invoice, the LSP opens (or reuses) a zero-conf
channel to the client, pays the client's invoice through it, learns the
preimage and settles its hold invoice. If the open or the payment fails, the
hold invoice is cancelled and the payer's HTLC fails back: nobody loses funds.

The trade-off against spec LSPS2: the payer sees the LSP's invoice, not the
client's, and the LSP can see the payment hash (as in any hold-invoice scheme).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from lncore.lnd.client import LndClient
from lsp.errors import LndError
from lsp.lsps.interceptor import ChannelSizing
from lsp.lsps.jsonrpc import Caller, Dispatcher, RpcError, invalid_params
from lsp.lsps.lsps2 import INVALID_OPENING_FEE_PARAMS, Lsps2Config, OpeningFeeParams, check_payment_size, gross_for_net
from lsp.lsps.store import LspsStore

log = logging.getLogger("lsp.lsps.wrapped")

METHOD = "lab.jit_wrap_invoice"  # not an LSPS method: an extension of this LSP, outside the lspsN namespaces
LSP_CLTV_MARGIN = 144  # blocks between the payer's HTLC expiry and the payment to the client


class WrappedJit:
    def __init__(self, lnd: LndClient, store: LspsStore, config: Lsps2Config, *, sizing: ChannelSizing | None = None):
        self.lnd = lnd
        self.store = store
        self.config = config
        self.sizing = sizing or ChannelSizing()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._open_lock = asyncio.Lock()  # one JIT open per client at a time: a second payment reuses it

    def register(self, d: Dispatcher) -> None:
        d.register(
            METHOD, self.wrap, params={"invoice", "opening_fee_params"}, required={"invoice", "opening_fee_params"}
        )

    async def wrap(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        invoice = params["invoice"]
        if not isinstance(invoice, str) or not invoice:
            raise invalid_params("invoice must be a BOLT11 string", field_name="invoice")
        try:
            decoded = await self.lnd.decode_pay_req(invoice)
        except LndError:
            raise invalid_params(
                "invoice is not a valid BOLT11 invoice for this network", field_name="invoice"
            ) from None
        node = decoded.destination
        if caller.node_id and caller.node_id != node:
            raise invalid_params("the invoice is not payable to the calling node", field_name="invoice")
        amount = int(decoded.num_msat)
        if amount <= 0:
            raise invalid_params("the invoice must carry an amount", field_name="invoice")
        if decoded.timestamp + decoded.expiry <= time.time() + 60:
            raise invalid_params("the invoice is expired or about to expire", field_name="invoice")
        fee_params = OpeningFeeParams.from_json(params["opening_fee_params"])
        if not fee_params.promise_ok(self.config.secret, node):
            raise RpcError(INVALID_OPENING_FEE_PARAMS, "invalid promise: the params were not issued to this node")
        from datetime import UTC, datetime

        if fee_params.expired(datetime.now(UTC)):
            raise RpcError(INVALID_OPENING_FEE_PARAMS, "opening_fee_params expired (valid_until has passed)")
        gross = gross_for_net(amount, fee_params.min_fee_msat, fee_params.proportional)
        fee = check_payment_size(fee_params, gross)
        payment_hash = decoded.payment_hash
        if self.store.wrapped(payment_hash) is not None:
            raise invalid_params("this invoice was already wrapped", field_name="invoice")
        expiry = max(60, min(3600, int(decoded.timestamp + decoded.expiry - time.time()) - 30))
        lsp_invoice = await self.lnd.add_hold_invoice(
            payment_hash,
            value_msat=gross,
            memo=f"JIT channel to {node[:16]}: {amount} msat + {fee} msat opening fee",
            expiry_s=expiry,
            cltv_expiry=int(decoded.cltv_expiry) + LSP_CLTV_MARGIN,
        )
        self.store.add_wrapped(
            payment_hash=payment_hash,
            client_node_id=node,
            client_invoice=invoice,
            lsp_invoice=lsp_invoice,
            client_amount_msat=amount,
            fee_msat=fee,
            state="WAITING",
            expiry_s=expiry,
        )
        self.watch(payment_hash)
        return {"invoice": lsp_invoice, "payment_size_msat": str(gross), "opening_fee_msat": str(fee)}

    def watch(self, payment_hash: str) -> None:
        if payment_hash not in self._tasks:
            task = asyncio.create_task(self._follow(payment_hash))
            self._tasks[payment_hash] = task
            task.add_done_callback(functools.partial(self._forget, payment_hash))

    def _forget(self, payment_hash: str, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(payment_hash, None)

    def resume_all(self) -> None:
        """After a restart: follow every wrapped invoice not yet settled or cancelled."""
        for h in self.store.open_wrapped():
            self.watch(h)

    async def _follow(self, payment_hash: str) -> None:
        states = self.lnd.pb.ln.Invoice.InvoiceState
        try:
            async for inv in self.lnd.invoice_updates(payment_hash):
                if inv.state == states.ACCEPTED:
                    await self._deliver(payment_hash)
                    return
                if inv.state in (states.CANCELED, states.SETTLED):
                    self.store.update_wrapped(
                        payment_hash, state="SETTLED" if inv.state == states.SETTLED else "CANCELED"
                    )
                    return
        except LndError as exc:
            log.warning("wrapped invoice %s: subscription ended: %s", payment_hash[:16], exc.message)

    async def _channel_for(self, node: str, amount_msat: int) -> int:
        """An active channel to the client that can carry the payment, opening a JIT one if needed."""
        async with self._open_lock:
            for ch in await self.lnd.list_channels(active_only=True, peer=node):
                if (ch.local_balance - ch.local_chan_reserve_sat) * 1000 >= amount_msat + 1000 * len(ch.pending_htlcs):
                    return int(ch.chan_id)
            opened = await self.lnd.open_zero_conf(node, self.sizing.capacity_sat(amount_msat))
            return opened.chan_id

    async def _deliver(self, payment_hash: str) -> None:
        row = self.store.wrapped(payment_hash)
        if row is None:
            return
        preimage = row.preimage
        if row.state == "OPENING":
            # Resumed after a crash mid-delivery: the client may already be paid, and LND refuses
            # to pay the same hash twice. Ask LND first; never cancel a hold invoice whose
            # preimage we can still learn.
            preimage = await self._earlier_payment(payment_hash)
            if preimage:
                self.store.update_wrapped(payment_hash, state="PAID", preimage=preimage)
        if not preimage and row.state in ("ACCEPTED", "WAITING", "OPENING"):
            self.store.update_wrapped(payment_hash, state="OPENING")
            try:
                chan_id = await self._channel_for(row.client_node_id, row.client_amount_msat)
                payment = await self.lnd.pay_over(row.client_invoice, outgoing_chan_id=chan_id)
            except LndError as exc:
                await self._cancel(payment_hash, exc.message)
                return
            if payment is None or payment.status != self.lnd.pb.ln.Payment.SUCCEEDED:
                reason = self.lnd.pb.ln.PaymentFailureReason.Name(payment.failure_reason) if payment else "no result"
                await self._cancel(payment_hash, f"paying the client failed: {reason}")
                return
            preimage = payment.payment_preimage
            self.store.update_wrapped(payment_hash, state="PAID", preimage=preimage)
        if preimage:
            await self.lnd.settle_invoice(preimage)
            self.store.update_wrapped(payment_hash, state="SETTLED")
            log.info(
                "wrapped JIT %s settled: client got %d msat, fee %d msat",
                payment_hash[:16],
                row.client_amount_msat,
                row.fee_msat,
            )

    async def _earlier_payment(self, payment_hash: str) -> str | None:
        try:
            outcome = await self.lnd.track_payment(payment_hash, timeout_s=120)
        except LndError:
            return None  # no payment for this hash was ever started
        return outcome.preimage if outcome.status == "SUCCEEDED" else None

    async def _cancel(self, payment_hash: str, reason: str) -> None:
        log.warning("wrapped JIT %s cancelled: %s", payment_hash[:16], reason)
        try:
            await self.lnd.cancel_invoice(payment_hash)
        finally:
            self.store.update_wrapped(payment_hash, state="CANCELED", failure_reason=reason)

    async def close(self) -> None:
        for t in list(self._tasks.values()):
            t.cancel()
