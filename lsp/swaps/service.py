"""The LSP side of submarine swaps: quotes, creation, and the loop that drives every swap to a final state.

Each non-final swap gets one asyncio task (``drive``) that reads the swap's
persisted state, does the one thing that state needs (wait for a lockup, pay,
claim, lock, settle, refund) and persists the next state before doing the next
thing. Anything with an outside effect is persisted first (the state that says
"paying", the signed claim transaction) so a restarted LSP resumes it instead
of repeating or forgetting it. ``resume_all`` starts a task per non-final swap
at start-up. See docs/SWAPS.md.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from embit import compact
from embit import script as escript
from embit.transaction import Transaction
from sqlalchemy import select
from sqlalchemy.orm import Session

from lncore.lnd.chainnotifier import ChainNotifier
from lncore.lnd.client import LndClient
from lncore.lnd.types import PaymentOutcome
from lncore.lnd.walletkit import WalletKit
from lsp.compliance import audit, kyc
from lsp.context import AppContext
from lsp.db.base import session_scope
from lsp.db.models import new_id
from lsp.db.models_swaps import Swap, SwapEvent
from lsp.errors import Forbidden, LndError, NotFound, ValidationFailed
from lsp.faults import crash_point
from lsp.services.events import Event
from lsp.swaps import keys, scripts, tx
from lsp.swaps.config import SwapSettings
from lsp.swaps.state import Kind, S, check_transition, is_final

log = logging.getLogger("lsp.swaps")
T = TypeVar("T")

# vsize of the LSP's reverse lockup: one P2WPKH input, the P2WSH output and a P2WPKH change output.
LOCKUP_VSIZE = 11 + 68 + 43 + 31
# Blocks of CLTV a swap-in payment may spend on its route besides the invoice's final delta.
ROUTE_CLTV_ALLOWANCE = 40
P2WPKH_DUMMY = bytes(escript.p2wpkh(keys.derive("quote", "quote").get_public_key()).data)


@dataclass(frozen=True)
class Quote:
    kind: Kind
    invoice_amount_sat: int
    onchain_amount_sat: int
    service_fee_sat: int
    miner_fee_sat: int
    sat_per_vbyte: float


def _script_for_quote() -> bytes:
    pub = keys.derive("quote", "quote").get_public_key().sec()
    return scripts.swap_script(b"\x00" * 32, pub, pub, 1_000_000)


def swap_data(swap: Swap, old: str | None, detail: str) -> dict[str, Any]:
    """The ``swap_updated`` payload (also the ``swap.state`` audit entry's)."""
    return {"swapId": swap.id, "kind": swap.kind, "from": old, "state": swap.state, "detail": detail}


def hash_taken(db: Session, payment_hash: str) -> bool:
    """A swap with this payment hash exists (one hash, one swap)."""
    return db.scalar(select(Swap.id).where(Swap.payment_hash == payment_hash)) is not None


class SwapService:
    def __init__(self, ctx: AppContext, lnd: LndClient, settings: SwapSettings):
        self.ctx = ctx
        self.lnd = lnd
        self.settings = settings
        self.chain = ChainNotifier(lnd)
        self.wallet = WalletKit(lnd)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._secret = ctx.settings.secret_key.get_secret_value()

    # ------------------------------------------------------------------ quotes and creation

    async def tip(self) -> int:
        return int((await self.lnd.get_info()).block_height)

    async def fee_rate_vb(self) -> float:
        return tx.sat_per_kw_to_vb(await self.wallet.estimate_fee_sat_per_kw(self.settings.fee_conf_target))

    def _check_amount(self, amount: int, field: str) -> None:
        s = self.settings
        if not s.min_amount <= amount <= s.max_amount:
            raise ValidationFailed(f"amount {amount} sat is outside {s.min_amount}..{s.max_amount}", field=field)

    async def quote(self, kind: Kind, amount_sat: int, *, field: str = "amount") -> Quote:
        self._check_amount(amount_sat, field)
        rate = await self.fee_rate_vb()
        service = self.settings.service_fee(amount_sat)
        if kind == Kind.SUBMARINE:
            miner = tx.fee_for(tx.spend_vsize(_script_for_quote(), P2WPKH_DUMMY, claim=True), rate)
            onchain = amount_sat + service + miner
        else:
            miner = tx.fee_for(LOCKUP_VSIZE, rate)
            onchain = amount_sat - service - miner
            if onchain < tx.DUST_LIMIT_SAT * 10:
                raise ValidationFailed(f"amount {amount_sat} sat does not cover the fees", field=field)
        return Quote(kind, amount_sat, onchain, service, miner, rate)

    async def _hash_taken(self, payment_hash: str) -> bool:
        def check() -> bool:
            with session_scope(self.ctx.sessions) as db:
                return hash_taken(db, payment_hash)

        return await asyncio.to_thread(check)

    async def add(self, swap: Swap, client_id: str, *, volume_field: str | None) -> None:
        """Record a new swap (from ``create_submarine``/``create_reverse``) with its audit entry in one
        transaction off the event loop, announce it, and follow it. ``volume_field``: enforce the KYC
        swap volume with the swap's amount (known only once the invoice is decoded), naming that field
        when refused."""

        def save() -> None:
            with session_scope(self.ctx.sessions) as db:
                if hash_taken(db, swap.payment_hash):  # again, inside the transaction that inserts
                    raise ValidationFailed(
                        "a swap with this payment hash exists", field=volume_field or "body.paymentHash"
                    )
                if volume_field is not None:
                    kyc.enforce_swap(db, self.ctx.settings, client_id, swap.invoice_amount_sat, volume_field)
                db.add(swap)
                db.flush()
                audit.record(
                    db,
                    actor=f"client:{client_id}",
                    action="swap.create",
                    target=f"swap:{swap.id}",
                    after={"kind": swap.kind, "invoiceAmountSat": swap.invoice_amount_sat},
                )

        await asyncio.to_thread(save)
        self.publish(swap, None, "created")
        self.follow(swap.id)

    async def create_submarine(self, client_id: str, invoice: str, refund_pubkey: str) -> Swap:
        """A new swap-in, not yet recorded (``add`` records it)."""
        _check_pubkey_hex(refund_pubkey, "body.refundPublicKey")
        if not _looks_like_bolt11(invoice):  # checked here: LND logs every undecodable invoice as an error
            raise ValidationFailed("not a BOLT 11 invoice", field="body.invoice")
        try:
            pr = await self.lnd.decode_pay_req(invoice)
        except LndError as exc:
            raise ValidationFailed(f"invoice: {exc.message}", field="body.invoice") from None
        amount = int(pr.num_satoshis)
        if amount <= 0:
            raise ValidationFailed("invoice must carry an amount", field="body.invoice")
        if int(pr.timestamp) + int(pr.expiry) < time.time() + 600:
            raise ValidationFailed("invoice expires in under 10 minutes", field="body.invoice")
        if await self._hash_taken(pr.payment_hash):
            raise ValidationFailed("a swap for this invoice's payment hash exists", field="body.invoice")
        q = await self.quote(Kind.SUBMARINE, amount, field="body.invoice")
        height = await self.tip()
        swap_id = new_id()
        key = keys.derive(self._secret, swap_id)
        # The LSP's payment must be able to time out (final CLTV + route) before the client could refund,
        # with the claim margin to spare; a short configured timeout is stretched to fit the invoice.
        blocks = max(
            self.settings.submarine_timeout_blocks,
            int(pr.cltv_expiry) + ROUTE_CLTV_ALLOWANCE + self.settings.claim_margin_blocks,
        )
        timeout = height + blocks
        ws = scripts.swap_script(
            bytes.fromhex(pr.payment_hash), key.get_public_key().sec(), bytes.fromhex(refund_pubkey), timeout
        )
        swap = self._new_row(
            swap_id,
            client_id,
            Kind.SUBMARINE,
            q,
            pr.payment_hash,
            invoice,
            keys.pubkey_hex(key),
            refund_pubkey,
            timeout,
            height,
            ws,
        )
        return swap

    async def create_reverse(self, client_id: str, amount_sat: int, payment_hash: str, claim_pubkey: str) -> Swap:
        """A new reverse swap, its hold invoice on LND, not yet recorded (``add`` records it)."""
        _check_pubkey_hex(claim_pubkey, "body.claimPublicKey")
        if len(payment_hash) != 64 or not _is_hex(payment_hash):
            raise ValidationFailed("paymentHash must be 32 bytes of hex", field="body.paymentHash")
        if await self._hash_taken(payment_hash):
            raise ValidationFailed("a swap with this payment hash exists", field="body.paymentHash")
        q = await self.quote(Kind.REVERSE, amount_sat, field="body.amount")
        height = await self.tip()
        swap_id = new_id()
        key = keys.derive(self._secret, swap_id)
        timeout = height + self.settings.reverse_timeout_blocks
        ws = scripts.swap_script(
            bytes.fromhex(payment_hash), bytes.fromhex(claim_pubkey), key.get_public_key().sec(), timeout
        )
        invoice = await self.lnd.add_hold_invoice(
            payment_hash,
            value_sat=amount_sat,
            memo=f"reverse swap {swap_id}",
            expiry_s=self.settings.invoice_expiry_s,
            cltv_expiry=self.settings.reverse_timeout_blocks + self.settings.invoice_cltv_margin_blocks,
        )
        swap = self._new_row(
            swap_id,
            client_id,
            Kind.REVERSE,
            q,
            payment_hash,
            invoice,
            keys.pubkey_hex(key),
            claim_pubkey,
            timeout,
            height,
            ws,
        )
        return swap

    def _new_row(
        self, swap_id: str, client_id: str, kind: Kind, q: Quote, payment_hash: str, invoice: str,
        lsp_pub: str, client_pub: str, timeout: int, height: int, ws: bytes,
    ) -> Swap:  # fmt: skip
        return Swap(
            id=swap_id,
            client_id=client_id,
            kind=kind.value,
            state=S.CREATED.value,
            invoice_amount_sat=q.invoice_amount_sat,
            onchain_amount_sat=q.onchain_amount_sat,
            service_fee_sat=q.service_fee_sat,
            miner_fee_sat=q.miner_fee_sat,
            payment_hash=payment_hash,
            invoice=invoice,
            lsp_pubkey=lsp_pub,
            client_pubkey=client_pub,
            timeout_height=timeout,
            created_height=height,
            confirmations=self.settings.confirmations,
            witness_script=ws.hex(),
            address=scripts.p2wsh_address(ws, self.ctx.settings.network),
            script_pubkey=scripts.p2wsh_script_pubkey(ws).hex(),
        )

    # ------------------------------------------------------------------ persistence

    def load(self, swap_id: str) -> Swap:
        with session_scope(self.ctx.sessions) as s:
            swap = s.get(Swap, swap_id)
            if swap is None:
                raise NotFound(f"swap {swap_id} not found")
            s.expunge(swap)
            return swap

    def move(self, swap_id: str, new: S, *, detail: str = "", **fields: Any) -> Swap:
        """Persist a state change (checked against the state machine) with its fields and event, then publish."""
        with session_scope(self.ctx.sessions) as s:
            swap = s.get(Swap, swap_id, with_for_update=True)
            if swap is None:
                raise NotFound(f"swap {swap_id} not found")
            old = swap.state
            check_transition(swap.kind, old, new)
            crash_point(f"swap.enter.{new.value}")
            swap.state = new.value
            for k, v in fields.items():
                setattr(swap, k, v)
            s.add(SwapEvent(swap_id=swap_id, from_state=old, to_state=new.value, detail=detail))
            # Audited with the change: a crash between the commit and the event cannot lose it.
            audit.record_system(s, "swap.state", swap.client_id, swap_id, swap_data(swap, old, detail))
            s.flush()
            s.expunge(swap)
        log.info("swap %s (%s): %s -> %s %s", swap_id, swap.kind, old, new.value, detail)
        self.publish(swap, old, detail)
        return swap

    def publish(self, swap: Swap, old: str | None, detail: str) -> None:
        """``swap_updated`` for the swap's current state; ``old`` None for its creation (the caller
        publishes that once the row is committed)."""
        self.ctx.bus.publish(Event("swap_updated", swap.client_id, swap_data(swap, old, detail)))

    def set_fields(self, swap_id: str, **fields: Any) -> None:
        with session_scope(self.ctx.sessions) as s:
            swap = s.get(Swap, swap_id)
            assert swap is not None
            for k, v in fields.items():
                setattr(swap, k, v)

    # ------------------------------------------------------------------ the loop

    def non_final_ids(self) -> list[str]:
        with session_scope(self.ctx.sessions) as s:
            rows = s.execute(select(Swap.id, Swap.kind, Swap.state)).all()
        return [r.id for r in rows if not is_final(r.kind, r.state)]

    def follow(self, swap_id: str) -> None:
        """Drive the swap now if the swap loop runs (otherwise the loop finds it when it starts)."""
        if self.ctx.swaps_task is not None:
            self.start(swap_id)

    def start(self, swap_id: str) -> None:
        task = self._tasks.get(swap_id)
        if task is None or task.done():
            self._tasks[swap_id] = asyncio.create_task(self._drive_logged(swap_id), name=f"swap-{swap_id}")

    async def run(self) -> None:
        """Resume every non-final swap, then keep checking for swaps without a task (created, rescanned)."""
        try:
            while True:
                for swap_id in self.non_final_ids():
                    self.start(swap_id)
                await asyncio.sleep(self.settings.poll_s * 5)
        finally:
            for t in self._tasks.values():
                t.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _drive_logged(self, swap_id: str) -> None:
        try:
            await self.drive(swap_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The run loop restarts the task within a few poll intervals; the state on disk is the truth.
            log.exception("swap %s: step failed; will retry", swap_id)
            await asyncio.sleep(self.settings.poll_s)

    async def drive(self, swap_id: str) -> None:
        while True:
            swap = self.load(swap_id)
            if is_final(swap.kind, swap.state) or swap.state == self.settings.halt_at_state:
                return
            step = (self._submarine_step if swap.kind == Kind.SUBMARINE else self._reverse_step)(swap)
            await step

    async def _until(self, swap: Swap, waiter: Awaitable[T], *, deadline: int | None) -> tuple[str, T | None]:
        """Wait for ``waiter``; give up when the tip reaches ``deadline`` ("deadline") or the swap's state
        changes under us (a rescan, another process: "moved"). Returns ("done", result) otherwise."""
        task = asyncio.ensure_future(waiter)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.settings.poll_s)
                if done:
                    return "done", task.result()
                if deadline is not None and await self.tip() >= deadline:
                    return "deadline", None
                if self.load(swap.id).state != swap.state:
                    return "moved", None
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _first_conf(self, spk: bytes, confs: int, hint: int, txid: str | None = None) -> _Conf:
        async for conf in self.chain.confirmations(spk, num_confs=confs, height_hint=hint, txid=txid):
            if conf is not None:
                return _Conf(tx.parse(conf.raw_tx), conf.block_height)
        raise LndError("confirmation stream ended", rpc="RegisterConfirmationsNtfn")

    # ------------------------------------------------------------------ swap-in (chain -> Lightning)

    async def _submarine_step(self, swap: Swap) -> None:
        st = S(swap.state)
        pay_deadline = swap.timeout_height - self.settings.claim_margin_blocks
        spk = bytes.fromhex(swap.script_pubkey)
        if st == S.LOCKUP_MEMPOOL and swap.confirmations == 0:
            # A 0-conf lockup the client submitted and the LSP accepted (see submit_lockup).
            if await self.tip() >= pay_deadline:
                self.move(swap.id, S.EXPIRED, detail="too close to the timeout to pay safely; refundable")
            elif (refusal := self._kyc_refusal(swap)) is not None:
                self.move(swap.id, S.LOCKUP_FAILED, failure_reason=refusal)
            else:
                self.move(swap.id, S.INVOICE_PENDING, detail="0-conf lockup accepted")
        elif st in (S.CREATED, S.LOCKUP_MEMPOOL):
            confs = max(swap.confirmations, 1)
            outcome, conf = await self._until(
                swap, self._first_conf(spk, confs, swap.created_height, swap.lockup_txid), deadline=pay_deadline
            )
            if outcome == "deadline":
                self.move(swap.id, S.EXPIRED, detail=f"no confirmed lockup before height {pay_deadline}")
            elif outcome == "done":
                assert isinstance(conf, _Conf)
                self.record_lockup(swap, conf.tx, conf.height)
        elif st == S.LOCKUP_CONFIRMED:
            if await self.tip() >= pay_deadline:
                self.move(swap.id, S.EXPIRED, detail="too close to the timeout to pay safely; refundable")
                return
            if (refusal := self._kyc_refusal(swap)) is not None:
                self.move(swap.id, S.LOCKUP_FAILED, failure_reason=refusal)
                return
            self.move(swap.id, S.INVOICE_PENDING)
        elif st == S.INVOICE_PENDING:
            result = await self._pay(swap)
            if result.status == "SUCCEEDED" and result.preimage:
                self.move(swap.id, S.INVOICE_PAID, preimage=result.preimage, payment_fee_sat=result.fee_sat)
            elif result.status == "FAILED":
                self.move(swap.id, S.INVOICE_FAILED, failure_reason=result.failure_reason, detail="refundable")
        elif st == S.INVOICE_PAID:
            assert swap.preimage and swap.lockup_txid is not None and swap.lockup_vout is not None
            key = keys.derive(self._secret, swap.id, expected_pubkey=swap.lsp_pubkey)
            dest = escript.address_to_scriptpubkey(await self.wallet.new_address()).data
            signed = tx.build_spend(
                lockup_txid=swap.lockup_txid,
                lockup_vout=swap.lockup_vout,
                lockup_value_sat=int(swap.lockup_value_sat or 0),
                witness_script=bytes.fromhex(swap.witness_script),
                key=key,
                dest_script_pubkey=bytes(dest),
                sat_per_vb=await self.fee_rate_vb(),
                preimage=bytes.fromhex(swap.preimage),
            )
            # Persisted before it is broadcast: a restart rebroadcasts this exact tx, never a second claim.
            self.move(
                swap.id, S.CLAIM_PENDING, spend_txid=signed.txid, spend_tx_hex=signed.hex, spend_fee_sat=signed.fee_sat
            )
        elif st == S.CLAIM_PENDING:
            assert swap.spend_tx_hex and swap.spend_txid
            await self.wallet.publish(swap.spend_tx_hex, label=f"swap {swap.id} claim")
            claim = tx.parse(swap.spend_tx_hex)
            out_spk = bytes(claim.vout[0].script_pubkey.data)
            outcome, _ = await self._until(
                swap,
                self._first_conf(out_spk, 1, int(swap.lockup_height or swap.created_height), swap.spend_txid),
                deadline=None,
            )
            if outcome == "done":
                self.move(swap.id, S.CLAIMED, detail=f"claim {swap.spend_txid} confirmed")

    def record_lockup(self, swap: Swap, lockup: Transaction, height: int | None) -> Swap:
        """A transaction paying the swap address was found: check its amount and move the swap."""
        outs = tx.outputs_to(lockup, bytes.fromhex(swap.script_pubkey))
        vout, value = outs[0]
        fields = {
            "lockup_txid": lockup.txid().hex(),
            "lockup_vout": vout,
            "lockup_value_sat": value,
            "lockup_height": height,
            "lockup_tx_hex": lockup.serialize().hex(),
        }
        if value != swap.onchain_amount_sat:
            return self.move(
                swap.id, S.LOCKUP_FAILED,
                failure_reason=(
                    f"lockup holds {value} sat, expected {swap.onchain_amount_sat}; "
                    f"refund after height {swap.timeout_height}"
                ),
                **fields,
            )  # fmt: skip
        if swap.state == S.EXPIRED:
            return self.move(
                swap.id, S.LOCKUP_FAILED,
                failure_reason=f"lockup found after the swap expired; refund after height {swap.timeout_height}",
                **fields,
            )  # fmt: skip
        return self.move(swap.id, S.LOCKUP_CONFIRMED, detail=f"{fields['lockup_txid']}:{vout}", **fields)

    async def submit_lockup(self, swap_id: str, client_id: str, raw_hex: str) -> Swap:
        """The client hands over its lockup transaction: the LSP publishes it through its own node (so it is
        known to be in that mempool) and, for a small enough amount without RBF, pays without waiting."""
        swap = self.load(swap_id)
        if swap.client_id != client_id:
            raise NotFound(f"swap {swap_id} not found")
        if swap.kind != Kind.SUBMARINE or swap.state != S.CREATED:
            raise ValidationFailed(
                f"swap is {swap.kind} in state {swap.state}; expected a created swap-in", field="path.swapId"
            )
        try:
            lockup = tx.parse(raw_hex)
        except Exception:
            raise ValidationFailed("not a serialized transaction", field="body.transaction") from None
        if not tx.outputs_to(lockup, bytes.fromhex(swap.script_pubkey)):
            raise ValidationFailed(f"transaction pays nothing to {swap.address}", field="body.transaction")
        try:
            await self.wallet.publish(raw_hex, label=f"swap {swap.id} client lockup")
        except LndError as exc:
            raise ValidationFailed(f"transaction rejected: {exc.message}", field="body.transaction") from None
        vout, value = tx.outputs_to(lockup, bytes.fromhex(swap.script_pubkey))[0]
        if value != swap.onchain_amount_sat:
            return self.record_lockup(swap, lockup, None)
        zero_conf = 0 < swap.onchain_amount_sat <= self.settings.zero_conf_max_amount and not tx.signals_rbf(lockup)
        return self.move(
            swap.id, S.LOCKUP_MEMPOOL,
            detail="accepted at 0-conf" if zero_conf else "waiting for confirmations",
            lockup_txid=lockup.txid().hex(), lockup_vout=vout, lockup_value_sat=value, lockup_tx_hex=raw_hex,
            confirmations=0 if zero_conf else swap.confirmations,
        )  # fmt: skip

    def _kyc_refusal(self, swap: Swap) -> str | None:
        """Why the LSP must not pay this swap-in's invoice now (the client was suspended or rejected
        after creating it), or None. The lockup stays the client's: it refunds after the timeout."""
        try:
            kyc.check(self.ctx.sessions, kyc.enforce_approved, self.ctx.settings, swap.client_id)
        except Forbidden as exc:
            return f"not paid: {exc.message}; refund after height {swap.timeout_height}"
        return None

    async def _pay(self, swap: Swap) -> PaymentOutcome:
        """Pay the client's invoice, or (after a restart) follow the payment already made."""
        if swap.payment_fee_sat is not None:  # marked before a send: a restart follows that payment
            try:
                return await self.lnd.track_payment(swap.payment_hash)
            except LndError as exc:
                if exc.grpc_code != "NOT_FOUND":  # "payment isn't initiated": it never left, send it now
                    raise
        self.set_fields(swap.id, payment_fee_sat=0)
        room = swap.timeout_height - await self.tip() - self.settings.claim_margin_blocks
        max_fee = max(10, swap.service_fee_sat // 2)
        return await self.lnd.send_payment_v2(
            swap.invoice, fee_limit_sat=max_fee, timeout_s=60, cltv_limit=max(room, 1)
        )

    # ------------------------------------------------------------------ reverse (Lightning -> chain)

    async def _reverse_step(self, swap: Swap) -> None:
        st = S(swap.state)
        spk = bytes.fromhex(swap.script_pubkey)
        if st == S.CREATED:
            outcome, state = await self._until(swap, self._hold_state(swap.payment_hash), deadline=None)
            if outcome != "done":
                return
            if state == "ACCEPTED":
                lock_deadline = swap.timeout_height - self.settings.claim_margin_blocks * 2
                if await self.tip() >= lock_deadline:
                    await self._cancel_quietly(swap.payment_hash)
                    self.move(swap.id, S.INVOICE_ACCEPTED)
                    self.move(swap.id, S.LOCKUP_FAILED, failure_reason="paid too close to the timeout; canceled")
                    return
                self.move(swap.id, S.INVOICE_ACCEPTED)
            elif state == "CANCELED":
                self.move(swap.id, S.INVOICE_EXPIRED)
            else:  # SETTLED without a lockup: only someone else holding the preimage could; never lock for it
                log.error("swap %s: hold invoice settled before any lockup; not locking funds", swap.id)
                self.set_fields(swap.id, failure_reason="hold invoice settled outside the swap")
                await asyncio.sleep(self.settings.poll_s * 10)
        elif st == S.INVOICE_ACCEPTED:
            label = f"swap {swap.id} lockup"
            rate_kw = await self.wallet.estimate_fee_sat_per_kw(self.settings.fee_conf_target)
            try:
                # A lockup sent just before a crash (its txid not yet persisted) is found by its label,
                # never sent twice.
                raw = await self.wallet.find_labeled(label, start_height=swap.created_height)
                if raw is None:
                    raw = await self.wallet.send_outputs(
                        [(spk, swap.onchain_amount_sat)], sat_per_kw=rate_kw, label=label
                    )
            except LndError as exc:
                await self._cancel_quietly(swap.payment_hash)
                self.move(swap.id, S.LOCKUP_FAILED, failure_reason=f"could not fund the lockup: {exc.message}")
                return
            lockup = tx.parse(raw)
            vout, value = tx.outputs_to(lockup, spk)[0]
            self.move(
                swap.id, S.LOCKUP_MEMPOOL,
                lockup_txid=lockup.txid().hex(), lockup_vout=vout, lockup_value_sat=value, lockup_tx_hex=raw.hex(),
            )  # fmt: skip
        elif st in (S.LOCKUP_MEMPOOL, S.LOCKUP_CONFIRMED, S.REFUND_PENDING):
            await self._watch_reverse_lockup(swap)
        elif st == S.CLAIMED:
            assert swap.preimage
            try:
                await self.lnd.settle_invoice(swap.preimage)
            except LndError as exc:
                if "already settled" not in exc.message.lower():
                    raise
            self.move(swap.id, S.INVOICE_SETTLED)

    async def _watch_reverse_lockup(self, swap: Swap) -> None:
        """One spend notification for the whole life of the lockup (LND logs a canceled RegisterSpendNtfn as an
        error, so it is not restarted per state): meanwhile note the confirmation, refund at the timeout."""
        assert swap.lockup_txid is not None and swap.lockup_vout is not None
        spk = bytes.fromhex(swap.script_pubkey)
        if swap.state == S.REFUND_PENDING:
            assert swap.spend_tx_hex
            await self.wallet.publish(swap.spend_tx_hex, label=f"swap {swap.id} refund")
        watch = asyncio.ensure_future(
            self.chain.spend(swap.lockup_txid, swap.lockup_vout, spk, height_hint=swap.created_height)
        )
        try:
            while True:
                done, _ = await asyncio.wait({watch}, timeout=self.settings.poll_s)
                if done:
                    break
                cur = self.load(swap.id)
                if cur.state not in (S.LOCKUP_MEMPOOL, S.LOCKUP_CONFIRMED, S.REFUND_PENDING):
                    return
                if cur.state == S.LOCKUP_MEMPOOL:
                    height = await self.wallet.confirmed_height(swap.lockup_txid, start_height=swap.created_height)
                    if height is not None:
                        self.move(swap.id, S.LOCKUP_CONFIRMED, lockup_height=height)
                if cur.state != S.REFUND_PENDING and await self.tip() >= swap.timeout_height:
                    await self._start_refund(cur)
                    refund = self.load(swap.id)
                    assert refund.spend_tx_hex
                    await self.wallet.publish(refund.spend_tx_hex, label=f"swap {swap.id} refund")
        finally:
            if not watch.done():
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
        spend = watch.result()
        spending = tx.parse(spend.raw_spending_tx)
        preimage = tx.witness_preimage(spending, spend.spending_input_index)
        if preimage is not None and scripts.preimage_matches(preimage, bytes.fromhex(swap.payment_hash)):
            self.move(swap.id, S.CLAIMED, preimage=preimage.hex(), detail=f"client claimed in {spend.spending_txid}")
        elif self.load(swap.id).state == S.REFUND_PENDING:
            await self._cancel_quietly(swap.payment_hash)
            self.move(swap.id, S.REFUNDED, detail=f"refund {spend.spending_txid} confirmed; invoice canceled")
        else:
            log.error("swap %s: lockup spent by %s without the preimage", swap.id, spend.spending_txid)
            self.set_fields(swap.id, failure_reason=f"lockup spent by {spend.spending_txid} without a preimage")
            await asyncio.sleep(self.settings.poll_s * 10)

    async def _hold_state(self, payment_hash: str) -> str:
        # Polled, not subscribed: LND logs every client-side end of SubscribeSingleInvoice as an error.
        while True:
            state = self.lnd.invoice_state(await self.lnd.lookup_invoice(payment_hash))
            if state in ("ACCEPTED", "CANCELED", "SETTLED"):
                return state
            await asyncio.sleep(self.settings.poll_s)

    async def _cancel_quietly(self, payment_hash: str) -> None:
        try:
            await self.lnd.cancel_invoice(payment_hash)
        except LndError as exc:
            log.warning("cancel invoice %s: %s", payment_hash, exc.message)

    async def _start_refund(self, swap: Swap) -> None:
        assert swap.lockup_txid is not None and swap.lockup_vout is not None
        key = keys.derive(self._secret, swap.id, expected_pubkey=swap.lsp_pubkey)
        dest = escript.address_to_scriptpubkey(await self.wallet.new_address()).data
        signed = tx.build_spend(
            lockup_txid=swap.lockup_txid,
            lockup_vout=swap.lockup_vout,
            lockup_value_sat=int(swap.lockup_value_sat or 0),
            witness_script=bytes.fromhex(swap.witness_script),
            key=key,
            dest_script_pubkey=bytes(dest),
            sat_per_vb=await self.fee_rate_vb(),
            timeout_height=swap.timeout_height,
        )
        self.move(
            swap.id, S.REFUND_PENDING, spend_txid=signed.txid, spend_tx_hex=signed.hex, spend_fee_sat=signed.fee_sat
        )

    # ------------------------------------------------------------------ rescan

    async def rescan(self, from_height: int, to_height: int | None = None) -> list[Swap]:
        """Scan blocks for outputs paying a swap-in address whose lockup the LSP has not recorded."""
        with session_scope(self.ctx.sessions) as s:
            waiting = list(
                s.scalars(
                    select(Swap).where(
                        Swap.kind == Kind.SUBMARINE.value,
                        Swap.lockup_txid.is_(None),
                        Swap.state.in_([S.CREATED.value, S.LOCKUP_MEMPOOL.value, S.EXPIRED.value]),
                    )
                )
            )
            for w in waiting:
                s.expunge(w)
        by_spk = {bytes.fromhex(w.script_pubkey): w for w in waiting}
        if not by_spk:
            return []
        _, tip = await self.chain.best_block()
        found: list[Swap] = []
        for height in range(from_height, (to_height or tip) + 1):
            raw = await self.chain.raw_block(await self.chain.block_hash(height))
            for t in iter_block_txs(raw):
                for out in t.vout:
                    spk = bytes(out.script_pubkey.data)
                    hit = by_spk.get(spk)
                    # A lockup with too few confirmations is left for the loop's own notification.
                    if hit is not None and (tip - height + 1 >= hit.confirmations or hit.state == S.EXPIRED):
                        del by_spk[spk]
                        found.append(self.record_lockup(hit, t, height))
            if not by_spk:
                break
        return found


@dataclass(frozen=True)
class _Conf:
    tx: Transaction
    height: int


def iter_block_txs(raw_block: bytes) -> list[Transaction]:
    """The transactions of a serialized block (80-byte header, count, transactions)."""
    stream = io.BytesIO(raw_block)
    stream.seek(80)
    n = compact.read_from(stream)
    return [Transaction.read_from(stream) for _ in range(n)]


BECH32_CHARSET = set("qpzry9x8gf2tvdw0s3jn54khce6mua7l")


def _looks_like_bolt11(invoice: str) -> bool:
    inv = invoice.strip().lower()
    hrp, sep, data = inv.rpartition("1")
    return inv.startswith("ln") and bool(sep) and len(data) > 6 and set(data) <= BECH32_CHARSET and bool(hrp)


def _is_hex(s: str) -> bool:
    try:
        bytes.fromhex(s)
    except ValueError:
        return False
    return True


def _check_pubkey_hex(pub: str, field: str) -> None:
    if len(pub) != 66 or not _is_hex(pub) or pub[:2] not in ("02", "03"):
        raise ValidationFailed("must be a 33-byte compressed public key in hex", field=field)
