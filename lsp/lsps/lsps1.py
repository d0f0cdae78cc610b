"""LSPS1 (bLIP-51): buy a channel. ``lsps1.get_info``, ``lsps1.create_order``, ``lsps1.get_order``.

Payment is a hold invoice whose preimage only the LSP knows: when the payer's
HTLC is ACCEPTED the LSP opens the channel to the client, and settles the
invoice once the funding transaction is published; if the open fails, it
cancels the invoice, which fails the HTLC back (REFUNDED). Orders persist, and
``resume_all`` follows the unfinished ones after a restart. On-chain payment
is not offered (``payment.onchain`` is null, which the bLIP allows).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from lsp.db.base import session_scope, utcnow
from lsp.db.models_lsps import Lsps1Order
from lsp.errors import LndError
from lsp.lsps.jsonrpc import Caller, Dispatcher, RpcError, invalid_params
from lsp.lsps.lnd_ext import LspsLnd
from lsp.lsps.lsps2 import format_datetime

OPTION_MISMATCH = 100
NOT_FOUND = 101
UNRECOGNIZED_TOKEN = 102

log = logging.getLogger("lsp.lsps.lsps1")

ORDER_FIELDS = {
    "lsp_balance_sat",
    "client_balance_sat",
    "required_channel_confirmations",
    "funding_confirms_within_blocks",
    "channel_expiry_blocks",
    "token",
    "refund_onchain_address",
    "announce_channel",
}


@dataclass
class Lsps1Config:
    min_channel_balance_sat: int = 100_000
    max_channel_balance_sat: int = 10_000_000
    max_channel_expiry_blocks: int = 20_160
    min_funding_confirms_within_blocks: int = 6
    min_required_channel_confirmations: int = 0
    base_fee_sat: int = 2_000
    fee_ppm: int = 5_000  # of the LSP's balance
    order_expiry: timedelta = timedelta(hours=1)


def _sat(value: Any, name: str) -> int:
    if not isinstance(value, str) or not value.isdigit():
        raise invalid_params(f"{name} must be a decimal string of satoshis", field_name=name)
    return int(value)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_params(f"{name} must be a non-negative integer", field_name=name)
    return value


class Lsps1Methods:
    def __init__(self, lnd: LspsLnd, sessions: Any, config: Lsps1Config | None = None):
        self.lnd = lnd
        self.sessions = sessions
        self.config = config or Lsps1Config()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def register(self, d: Dispatcher) -> None:
        d.register("lsps1.get_info", self.get_info)
        d.register(
            "lsps1.create_order",
            self.create_order,
            params=ORDER_FIELDS,
            required=ORDER_FIELDS - {"token", "refund_onchain_address"},
        )
        d.register("lsps1.get_order", self.get_order, params={"order_id"}, required={"order_id"})

    async def get_info(self, _params: dict[str, Any], _caller: Caller) -> dict[str, Any]:
        c = self.config
        return {
            "min_required_channel_confirmations": c.min_required_channel_confirmations,
            "min_funding_confirms_within_blocks": c.min_funding_confirms_within_blocks,
            "supports_zero_channel_reserve": False,
            "max_channel_expiry_blocks": c.max_channel_expiry_blocks,
            "min_initial_client_balance_sat": "0",
            "max_initial_client_balance_sat": "0",
            "min_initial_lsp_balance_sat": str(c.min_channel_balance_sat),
            "max_initial_lsp_balance_sat": str(c.max_channel_balance_sat),
            "min_channel_balance_sat": str(c.min_channel_balance_sat),
            "max_channel_balance_sat": str(c.max_channel_balance_sat),
        }

    def fee_sat(self, lsp_balance_sat: int) -> int:
        return self.config.base_fee_sat + (lsp_balance_sat * self.config.fee_ppm + 999_999) // 1_000_000

    def _mismatch(self, prop: str, why: str) -> RpcError:
        return RpcError(OPTION_MISMATCH, f"option mismatch: {why}", {"property": prop})

    async def create_order(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        c = self.config
        lsp_sat = _sat(params["lsp_balance_sat"], "lsp_balance_sat")
        client_sat = _sat(params["client_balance_sat"], "client_balance_sat")
        confs = _int(params["required_channel_confirmations"], "required_channel_confirmations")
        within = _int(params["funding_confirms_within_blocks"], "funding_confirms_within_blocks")
        expiry = _int(params["channel_expiry_blocks"], "channel_expiry_blocks")
        if not isinstance(params["announce_channel"], bool):
            raise invalid_params("announce_channel must be a boolean", field_name="announce_channel")
        if params.get("token") not in (None, ""):
            raise RpcError(UNRECOGNIZED_TOKEN, "unrecognized token")
        if not c.min_channel_balance_sat <= lsp_sat <= c.max_channel_balance_sat:
            raise self._mismatch(
                "lsp_balance_sat", f"must be within [{c.min_channel_balance_sat}, {c.max_channel_balance_sat}]"
            )
        if client_sat != 0:
            raise self._mismatch("client_balance_sat", "this LSP sells channels with no client balance")
        if confs < c.min_required_channel_confirmations:
            raise self._mismatch("required_channel_confirmations", "below the minimum")
        if within < c.min_funding_confirms_within_blocks:
            raise self._mismatch("funding_confirms_within_blocks", "below the minimum")
        if expiry > c.max_channel_expiry_blocks:
            raise self._mismatch("channel_expiry_blocks", f"above {c.max_channel_expiry_blocks}")
        if not caller.node_id:
            raise invalid_params("the caller's node id is unknown", field_name="node_id")
        fee = self.fee_sat(lsp_sat)
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        expires = datetime.now(UTC) + c.order_expiry
        invoice = await self.lnd.add_hold_invoice(
            payment_hash,
            fee * 1000,
            memo=f"LSPS1 channel of {lsp_sat} sat",
            expiry_s=int(c.order_expiry.total_seconds()),
            cltv_expiry=144,
        )
        with session_scope(self.sessions) as s:
            row = Lsps1Order(
                client_node_id=caller.node_id,
                request=json.dumps({k: params[k] for k in sorted(params)}),
                payment_hash=payment_hash,
                preimage=preimage.hex(),
                invoice=invoice,
                fee_total_sat=fee,
                order_total_sat=fee + client_sat,
                expires_at=expires,
            )
            s.add(row)
            s.flush()
            order_id = row.id
        self.watch(order_id, payment_hash)
        return await self.get_order({"order_id": order_id}, caller)

    async def get_order(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        order_id = params["order_id"]
        if not isinstance(order_id, str):
            raise invalid_params("order_id must be a string", field_name="order_id")
        with session_scope(self.sessions) as s:
            row = s.get(Lsps1Order, order_id)
            # Another node's order is indistinguishable from a missing one.
            if row is None or (caller.node_id and row.client_node_id != caller.node_id):
                raise RpcError(NOT_FOUND, "order not found")
            req = json.loads(row.request)
            return {
                "order_id": row.id,
                "lsp_balance_sat": req["lsp_balance_sat"],
                "client_balance_sat": req["client_balance_sat"],
                "required_channel_confirmations": req["required_channel_confirmations"],
                "funding_confirms_within_blocks": req["funding_confirms_within_blocks"],
                "channel_expiry_blocks": req["channel_expiry_blocks"],
                "token": req.get("token") or "",
                "announce_channel": req["announce_channel"],
                "created_at": format_datetime(row.created_at),
                "order_state": row.order_state,
                "payment": {
                    "bolt11": {
                        "state": row.payment_state,
                        "expires_at": format_datetime(row.expires_at),
                        "fee_total_sat": str(row.fee_total_sat),
                        "order_total_sat": str(row.order_total_sat),
                        "invoice": row.invoice,
                    },
                    "onchain": None,
                },
                "channel": None
                if row.channel_point is None or row.funded_at is None
                else {
                    "funded_at": format_datetime(row.funded_at),
                    "funding_outpoint": row.channel_point,
                    "expires_at": format_datetime(
                        row.funded_at + timedelta(minutes=10 * int(req["channel_expiry_blocks"]))
                    ),
                },
            }

    # -- payment -> channel -> settle/refund -----------------------------------------
    def watch(self, order_id: str, payment_hash: str) -> None:
        if order_id not in self._tasks:
            task = asyncio.create_task(self._follow(order_id, payment_hash))
            self._tasks[order_id] = task
            task.add_done_callback(lambda _t: self._tasks.pop(order_id, None))

    def resume_all(self) -> None:
        with session_scope(self.sessions) as s:
            rows = s.execute(
                select(Lsps1Order.id, Lsps1Order.payment_hash).where(Lsps1Order.order_state == "CREATED")
            ).all()
        for order_id, payment_hash in rows:
            self.watch(order_id, payment_hash)

    def _update(self, order_id: str, **fields: Any) -> None:
        with session_scope(self.sessions) as s:
            row = s.get(Lsps1Order, order_id)
            if row is not None:
                for k, v in fields.items():
                    setattr(row, k, v)

    async def _follow(self, order_id: str, payment_hash: str) -> None:
        states = self.lnd.pb.ln.Invoice.InvoiceState
        try:
            async for inv in self.lnd.invoice_updates(payment_hash):
                if inv.state == states.ACCEPTED:
                    self._update(order_id, payment_state="HOLD")
                    await self._open_and_settle(order_id)
                    return
                if inv.state == states.CANCELED:
                    self._update(order_id, order_state="FAILED", payment_state="REFUNDED")
                    return
                if inv.state == states.SETTLED:
                    self._update(order_id, order_state="COMPLETED", payment_state="PAID")
                    return
        except LndError as exc:
            log.warning("LSPS1 order %s: invoice subscription ended: %s", order_id, exc.message)

    async def _open_and_settle(self, order_id: str) -> None:
        with session_scope(self.sessions) as s:
            row = s.get(Lsps1Order, order_id)
            assert row is not None
            req = json.loads(row.request)
            node, preimage, payment_hash, opened = row.client_node_id, row.preimage, row.payment_hash, row.channel_point
        if opened is None:
            try:
                cp = await self.lnd.lnd.open_channel(
                    str(node), int(req["lsp_balance_sat"]), private=not req["announce_channel"]
                )
            except LndError as exc:
                log.warning("LSPS1 order %s: channel open failed: %s; refunding", order_id, exc.message)
                await self.lnd.lnd.cancel_invoice(payment_hash)
                self._update(order_id, order_state="FAILED", payment_state="REFUNDED", failure_reason=exc.message)
                return
            # Recorded before settling: a crash in between settles on resume instead of reopening.
            self._update(order_id, channel_point=str(cp), funded_at=utcnow())
        await self.lnd.settle_invoice(preimage)
        self._update(order_id, order_state="COMPLETED", payment_state="PAID")

    async def close(self) -> None:
        for t in list(self._tasks.values()):
            t.cancel()
