"""LSPS1 (bLIP-51): buy a channel. ``lsps1.get_info``, ``lsps1.create_order``, ``lsps1.get_order``.

Two ways to pay, whichever comes first:

* ``payment.bolt11``: a hold invoice whose preimage only the LSP knows. When the
  payer's HTLC is ACCEPTED (HOLD) the LSP opens the channel to the client and
  settles the invoice once the funding transaction is published (PAID); if the
  open fails it cancels the invoice, which fails the HTLC back (REFUNDED).
* ``payment.onchain`` (only when the client gave ``refund_onchain_address``, as the
  bLIP requires): a fresh address of the LSP's wallet. Once outputs paying it add
  up to the order total with ``min_onchain_payment_confirmations`` the order is
  PAID and the channel is opened; if the open fails, or the order expires with
  less than the total received, exactly the received outputs are swept back to
  the refund address, minus the miner fee (REFUNDED).

Which option paid is claimed once in the database (``paid_via``), so the other
is withdrawn (the invoice is cancelled). Orders persist; ``resume_all`` follows
the unfinished ones after a restart, and a daemon calls it periodically so
orders created by another process (the HTTPS API) are followed too
(``follow=False`` there).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from lncore.lnd.client import LndClient
from lncore.lnd.walletkit import WalletKit
from lsp.db.base import session_scope, utcnow
from lsp.db.models_lsps import Lsps1Order
from lsp.errors import LndError, LndUnavailable
from lsp.faults import crash_point
from lsp.lsps.config import Lsps1Settings
from lsp.lsps.interceptor import RESUME_FIND_S
from lsp.lsps.jsonrpc import Caller, Dispatcher, RpcError, invalid_params
from lsp.lsps.lsps2 import format_datetime

OPTION_MISMATCH = 100
NOT_FOUND = 101
UNRECOGNIZED_TOKEN = 102
# Bitcoin Core's default minimum relay fee (1 sat/vB) in sat per 1000 weight units, as LND floors it.
MIN_RELAY_SAT_PER_KW = 253

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


REFUND_LABEL = "lsps1 refund {order_id}"


class UnspentSnapshot:
    """One ListUnspent for every order waiting on chain. Each order's loop asks for its own
    address; the wallet itself is asked at most once per ``max_age_s``, however many orders wait
    (before: one ListUnspent per waiting order per poll)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[tuple[str, int, str]]]],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self.max_age_s = max_age_s
        self._clock = clock
        self._utxos: list[tuple[str, int, str]] = []
        self._at: float | None = None
        self._lock = asyncio.Lock()

    async def received(self, address: str) -> list[tuple[str, int]]:
        """("txid:vout", sat) of the wallet's unspent outputs paying ``address``."""
        async with self._lock:  # callers arriving during a fetch wait for it instead of fetching again
            if self._at is None or self._clock() - self._at >= self.max_age_s:
                self._utxos = await self._fetch()
                self._at = self._clock()
        return [(op, sat) for op, sat, addr in self._utxos if addr == address]


def _sat(value: Any, name: str) -> int:
    if not isinstance(value, str) or not value.isdigit():
        raise invalid_params(f"{name} must be a decimal string of satoshis", field_name=name)
    return int(value)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_params(f"{name} must be a non-negative integer", field_name=name)
    return value


class Lsps1Methods:
    def __init__(
        self, lnd: LndClient | None, sessions: Any, config: Lsps1Settings | None = None, *, follow: bool = True
    ):
        """``lnd`` None: only ``get_info`` works (an API without a node). ``follow`` False: orders
        are created and read here, and followed by the daemon (see the module docstring)."""
        self._lnd = lnd
        self.sessions = sessions
        self.config = config or Lsps1Settings()
        self.follow = follow
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._network: str | None = None
        self._unspent: UnspentSnapshot | None = None

    @property
    def lnd(self) -> LndClient:
        if self._lnd is None:
            raise LndUnavailable("the LSP is not connected to its Lightning node", grpc_code="CONFIG")
        return self._lnd

    @property
    def wallet(self) -> WalletKit:
        return WalletKit(self.lnd)

    def _received(self, address: str) -> Awaitable[list[tuple[str, int]]]:
        if self._unspent is None:
            wallet, confs = self.wallet, self.config.min_onchain_payment_confirmations
            self._unspent = UnspentSnapshot(lambda: wallet.unspent(min_confs=confs), self.config.onchain_poll_s)
        return self._unspent.received(address)

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
        refund = params.get("refund_onchain_address")
        if refund is not None:
            await self._check_address(refund)
        fee = self.fee_sat(lsp_sat)
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        expires = datetime.now(UTC) + c.order_expiry
        invoice = await self.lnd.add_hold_invoice(
            payment_hash,
            value_msat=fee * 1000,
            memo=f"LSPS1 channel of {lsp_sat} sat",
            expiry_s=int(c.order_expiry.total_seconds()),
            cltv_expiry=144,
        )
        onchain = refund is not None and self.config.onchain
        address = await self.wallet.new_address() if onchain else None
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
                onchain_address=address,
                refund_onchain_address=refund,
                onchain_state="EXPECT_PAYMENT" if onchain else None,
            )
            s.add(row)
            s.flush()
            order_id = row.id
        if self.follow:
            self.watch(order_id, payment_hash)
        return await self.get_order({"order_id": order_id}, caller)

    async def _check_address(self, address: Any) -> None:
        """A refund address must be one the LSP's network can pay (-32602 naming the field)."""
        from embit import script as escript
        from embit.networks import NETWORKS

        if not isinstance(address, str) or not 14 <= len(address) <= 100:
            raise invalid_params("refund_onchain_address must be an address string", field_name="refund_onchain_address")
        if self._network is None:
            self._network = await self.lnd.network()
        net = NETWORKS[{"mainnet": "main", "testnet": "test"}.get(self._network, self._network)]
        try:
            ok = escript.address_to_scriptpubkey(address).address(net) == address
        except Exception:
            ok = False
        if not ok:
            raise invalid_params(
                f"refund_onchain_address is not a valid {self._network} address", field_name="refund_onchain_address"
            )

    async def _min_fee_for_0conf(self) -> int:
        """bLIP-51 types ``min_fee_for_0conf`` as a number (LDK's client rejects an order
        carrying null): LND's estimate in sat/kw, at least the 253 sat/kw relay floor."""
        try:
            rate = await self.wallet.estimate_fee_sat_per_kw(self.config.zero_conf_fee_target_blocks)
        except (LndError, LndUnavailable) as exc:
            log.warning("fee estimate for min_fee_for_0conf failed (%s); answering the relay floor", exc)
            rate = 0
        return max(int(rate), MIN_RELAY_SAT_PER_KW)

    async def get_order(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        order_id = params["order_id"]
        if not isinstance(order_id, str):
            raise invalid_params("order_id must be a string", field_name="order_id")
        with session_scope(self.sessions) as s:
            row = s.get(Lsps1Order, order_id)
            # Another node's order is indistinguishable from a missing one.
            if row is None or (caller.node_id and row.client_node_id != caller.node_id):
                raise RpcError(NOT_FOUND, "order not found")
            onchain = row.onchain_address is not None
        min_fee_for_0conf = await self._min_fee_for_0conf() if onchain else 0
        with session_scope(self.sessions) as s:
            row = s.get(Lsps1Order, order_id)
            assert row is not None  # orders are never deleted
            req = json.loads(row.request)
            return {
                "order_id": row.id,
                "lsp_balance_sat": req["lsp_balance_sat"],
                "client_balance_sat": req["client_balance_sat"],
                "required_channel_confirmations": req["required_channel_confirmations"],
                "funding_confirms_within_blocks": req["funding_confirms_within_blocks"],
                "channel_expiry_blocks": req["channel_expiry_blocks"],
                # Echoed exactly as the client sent it (LDK's client compares every order field
                # with its request and aborts on a difference, "" vs null included).
                **({"token": req["token"]} if "token" in req else {}),
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
                    **(
                        {
                            "onchain": {
                                "state": row.onchain_state,
                                "expires_at": format_datetime(row.expires_at),
                                "fee_total_sat": str(row.fee_total_sat),
                                "order_total_sat": str(row.order_total_sat),
                                "address": row.onchain_address,
                                "min_onchain_payment_confirmations": self.config.min_onchain_payment_confirmations,
                                "min_fee_for_0conf": min_fee_for_0conf,
                                "refund_onchain_address": row.refund_onchain_address,
                            }
                        }
                        if row.onchain_address is not None
                        else {}
                    ),
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
        """Follow every unfinished order not yet followed (after a restart, or created elsewhere)."""
        with session_scope(self.sessions) as s:
            rows = s.execute(
                select(Lsps1Order.id, Lsps1Order.payment_hash).where(Lsps1Order.order_state == "CREATED")
            ).all()
        for order_id, payment_hash in rows:
            self.watch(order_id, payment_hash)

    async def poll_new_orders(self, every_s: float = 2.0) -> None:
        """Pick up orders another process created (``follow=False`` there), until cancelled."""
        while True:
            try:
                self.resume_all()
            except Exception:
                log.exception("LSPS1: looking for new orders failed")
            await asyncio.sleep(every_s)

    def _update(self, order_id: str, **fields: Any) -> None:
        with session_scope(self.sessions) as s:
            row = s.get(Lsps1Order, order_id)
            if row is not None:
                for k, v in fields.items():
                    setattr(row, k, v)

    def _load(self, order_id: str) -> Lsps1Order:
        with session_scope(self.sessions) as s:
            row = s.get(Lsps1Order, order_id)
            assert row is not None
            s.expunge(row)
            return row

    def _claim(self, order_id: str, via: str) -> bool:
        """Record which payment option paid the order; False if the other one already did."""
        with session_scope(self.sessions) as s:
            done = s.execute(
                update(Lsps1Order)
                .where(Lsps1Order.id == order_id, or_(Lsps1Order.paid_via.is_(None), Lsps1Order.paid_via == via))
                .values(paid_via=via)
            )
            return bool(getattr(done, "rowcount", 0))

    async def _follow(self, order_id: str, payment_hash: str) -> None:
        """Whichever option pays first wins; the order's expiry ends both waits."""
        row = self._load(order_id)
        watchers = [asyncio.create_task(self._follow_invoice(order_id, payment_hash))]
        if row.onchain_address is not None:
            watchers.append(asyncio.create_task(self._follow_onchain(order_id)))
        try:
            # The invoice watcher ends when the invoice does (settled, cancelled: bolt11's outcome or
            # the on-chain option's withdrawal of it); the on-chain one when its option is decided.
            await asyncio.gather(*watchers)
        except Exception:  # (cancellation is not an Exception: it propagates)
            log.exception("LSPS1 order %s: following it failed", order_id)
        finally:
            for w in watchers:
                w.cancel()

    async def _follow_invoice(self, order_id: str, payment_hash: str) -> None:
        states = self.lnd.pb.ln.Invoice.InvoiceState
        try:
            async for inv in self.lnd.invoice_updates(payment_hash):
                if inv.state == states.ACCEPTED:
                    if not self._claim(order_id, "bolt11"):  # paid on chain meanwhile: give the HTLC back
                        await self.lnd.cancel_invoice(payment_hash)
                        continue
                    # HOLD already: an earlier run took this payment and may have opened the channel.
                    resumed = self._load(order_id).payment_state == "HOLD"
                    self._update(order_id, payment_state="HOLD")
                    await self._open_and_settle(order_id, resumed=resumed)
                    return
                if inv.state == states.CANCELED:
                    row = self._load(order_id)
                    if row.paid_via == "bolt11" or (row.paid_via is None and row.onchain_address is None):
                        self._update(order_id, order_state="FAILED", payment_state="REFUNDED")
                    else:
                        # Withdrawn (paid on chain), or expired while the on-chain watcher decides
                        # the order (and refunds what arrived there).
                        self._update(order_id, payment_state="REFUNDED")
                    return
                if inv.state == states.SETTLED:
                    self._update(order_id, order_state="COMPLETED", payment_state="PAID")
                    return
        except LndError as exc:
            log.warning("LSPS1 order %s: invoice subscription ended: %s", order_id, exc.message)

    async def _follow_onchain(self, order_id: str) -> None:
        c = self.config
        while True:
            row = self._load(order_id)
            if row.order_state != "CREATED" or row.onchain_state not in ("EXPECT_PAYMENT", "PAID"):
                return
            if row.onchain_state == "PAID":  # paid before a restart: open (or find the open) now
                await self._open_paid_onchain(order_id, resumed=True)
                return
            assert row.onchain_address is not None
            got = await self._received(row.onchain_address)
            total = sum(sat for _op, sat in got)
            if total >= row.order_total_sat and row.paid_via in (None, "onchain") and self._claim(order_id, "onchain"):
                self._update(
                    order_id,
                    onchain_state="PAID",
                    onchain_paid_sat=total,
                    onchain_outpoints=",".join(op for op, _sat in got),
                )
                if row.payment_state == "EXPECT_PAYMENT":  # withdraw the Lightning option
                    try:
                        await self.lnd.cancel_invoice(row.payment_hash)
                    except LndError as exc:
                        log.warning("LSPS1 order %s: could not cancel the invoice: %s", order_id, exc.message)
                await self._open_paid_onchain(order_id, resumed=False)
                return
            if row.paid_via == "bolt11":
                return  # paid by Lightning: nothing to watch here
            if datetime.now(UTC) >= row.expires_at:
                # Claimed so a Lightning payment arriving late cannot open a channel for a dead order.
                if not self._claim(order_id, "onchain" if got else "expired"):
                    return  # paid by Lightning at the last moment: that path completes the order
                try:
                    await self.lnd.cancel_invoice(row.payment_hash)
                except LndError as exc:
                    log.info("LSPS1 order %s: invoice already gone: %s", order_id, exc.message)
                reason = f"order expired with {total} of {row.order_total_sat} sat received on chain"
                if got:
                    self._update(order_id, onchain_paid_sat=total, onchain_outpoints=",".join(op for op, _ in got))
                    await self._refund_onchain(order_id, reason)
                else:
                    self._update(order_id, order_state="FAILED", failure_reason=reason)
                return
            await asyncio.sleep(c.onchain_poll_s)

    async def _open(self, order_id: str, *, resumed: bool) -> str | None:
        """Open the order's channel once; the funding outpoint, or None with the order's failure recorded.

        LND stores the order's id as the channel's memo: a run that died between LND's answer and
        recording it (``resumed``: the payment was already taken when this run picked the order up)
        finds that channel instead of opening a second one."""
        row = self._load(order_id)
        if row.channel_point is not None:  # opened and recorded before a restart: never reopen
            return row.channel_point
        req = json.loads(row.request)
        memo = f"lsps1 order {order_id}"
        earlier = await self.lnd.find_channel_by_memo(memo, look_s=RESUME_FIND_S if resumed else 0.0)
        if earlier is not None:
            log.info("LSPS1 order %s: resuming with the channel %s an earlier run opened", order_id, earlier)
            cp = earlier
        else:
            try:
                cp = str(
                    await self.lnd.open_channel(
                        str(row.client_node_id),
                        int(req["lsp_balance_sat"]),
                        private=not req["announce_channel"],
                        memo=memo,
                    )
                )
            except LndError as exc:
                log.warning("LSPS1 order %s: channel open failed: %s; refunding", order_id, exc.message)
                self._update(order_id, failure_reason=exc.message)
                return None
            crash_point("lsps1.channel_opening")
        # Recorded before the payment is taken: a crash in between takes it on resume instead of reopening.
        self._update(order_id, channel_point=cp, funded_at=utcnow())
        return cp

    async def _open_and_settle(self, order_id: str, *, resumed: bool) -> None:
        row = self._load(order_id)
        crash_point("lsps1.paid")
        if await self._open(order_id, resumed=resumed) is None:
            crash_point("lsps1.refund")
            await self.lnd.cancel_invoice(row.payment_hash)
            self._update(order_id, order_state="FAILED", payment_state="REFUNDED")
            return
        crash_point("lsps1.before_settle")
        await self.lnd.settle_invoice(row.preimage)
        self._update(order_id, order_state="COMPLETED", payment_state="PAID")

    async def _open_paid_onchain(self, order_id: str, *, resumed: bool) -> None:
        if await self._open(order_id, resumed=resumed) is None:
            row = self._load(order_id)
            await self._refund_onchain(order_id, row.failure_reason or "channel open failed")
            return
        self._update(order_id, order_state="COMPLETED")

    async def _refund_onchain(self, order_id: str, reason: str) -> None:
        """Sweep exactly the outputs received for the order back to the client's refund address."""
        row = self._load(order_id)
        label = REFUND_LABEL.format(order_id=order_id)
        txid = row.refund_txid or await self.wallet.labeled_txid(label)  # swept before a restart?
        if txid is None:
            assert row.refund_onchain_address is not None and row.onchain_outpoints
            try:
                txid = await self.wallet.sweep_to(row.refund_onchain_address, row.onchain_outpoints.split(","), label=label)
            except LndError as exc:
                log.error("LSPS1 order %s: refund failed (operator must refund by hand): %s", order_id, exc.message)
                self._update(order_id, order_state="FAILED", failure_reason=f"{reason}; refund failed: {exc.message}")
                return
        log.info("LSPS1 order %s: refunded on chain in %s (%s)", order_id, txid, reason)
        self._update(order_id, order_state="FAILED", onchain_state="REFUNDED", refund_txid=txid, failure_reason=reason)

    async def close(self) -> None:
        for t in list(self._tasks.values()):
            t.cancel()
