"""The LSPS2 HTLC interceptor: hold HTLCs for JIT SCIDs, open the channel, forward minus the fee.

One ``Router.HtlcInterceptor`` stream on the LSP's node (run LND with
``--requireinterceptor`` so HTLCs stay held while this process is away).
For each intercepted forward:

- outgoing SCID outside the alias range -> RESUME (ordinary routing);
- a JIT SCID nobody bought, or a failed/expired buy -> unknown_next_peer (by resuming
  onto the unmapped SCID: LND's interceptor cannot emit that code itself);
- a JIT SCID whose channel is open -> RESUME (the alias maps it onto the channel);
- otherwise the part is recorded (by circuit key) and held with the other parts
  of the buy; once their sum reaches the payment size (variable mode: the first
  part), a private zero-conf anchors channel with scid-alias is opened, the JIT
  SCID is added as a local alias of it, and every part is resumed with
  ``out_amount_msat`` reduced by its share of the fee and the ``extra_fee``
  record (65537, u64 big-endian). If the parts do not add up within
  ``mpp_timeout_s`` (bLIP-52: at least 90 s) they all fail with
  temporary_channel_failure; if the open fails they all fail at once with
  temporary_channel_failure.

Decisions are stored per circuit key before they are sent, so when LND
replays a held HTLC (after our restart or its own) it gets the same answer.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lncore.lnd.client import LndClient
from lsp.errors import LndError
from lsp.faults import crash_point
from lsp.lsps.lsps2 import Buy, FeeOverflow, is_jit_scid
from lsp.lsps.store import LspsStore

if TYPE_CHECKING:
    from lsp.lsps.lsps5 import Lsps5Service

log = logging.getLogger("lsp.lsps.interceptor")

EXTRA_FEE_TLV = 65537
MPP_TIMEOUT_S = 90.0
RESUME_FIND_S = 15.0  # how long a resumed OPENING buy looks for its channel before opening one

CircuitKey = tuple[int, int]


def split_fee(amounts: list[int], fee_msat: int) -> list[int]:
    """Take ``fee_msat`` from the parts in order, leaving every part at least 1 msat.

    bLIP-52 lets the LSP deduct the fee from any parts; in order is deterministic, which makes
    replays answer identically. Raises ValueError if the parts cannot carry the fee."""
    shares: list[int] = []
    remaining = fee_msat
    for amt in amounts:
        take = min(remaining, max(amt - 1, 0))
        shares.append(take)
        remaining -= take
    if remaining:
        raise ValueError(f"the parts ({sum(amounts)} msat) cannot carry the opening fee of {fee_msat} msat")
    return shares


@dataclass
class Part:
    key: CircuitKey
    payment_hash: str
    amount_msat: int  # the onion's outgoing amount


@dataclass
class Group:
    buy: Buy
    parts: dict[CircuitKey, Part] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    timer: asyncio.Task[None] | None = None
    opening: bool = False


@dataclass
class ChannelSizing:
    """How big a JIT channel is: room for the payment plus headroom for the client's next ones."""

    min_capacity_sat: int = 1_000_000
    headroom_factor: int = 2

    def capacity_sat(self, payment_msat: int) -> int:
        return max(self.min_capacity_sat, math.ceil(payment_msat / 1000) * self.headroom_factor + 20_000)


class JitInterceptor:
    def __init__(
        self,
        lnd: LndClient,
        store: LspsStore,
        *,
        sizing: ChannelSizing | None = None,
        mpp_timeout_s: float = MPP_TIMEOUT_S,
        now: Callable[[], Any] | None = None,
        lsps5: Lsps5Service | None = None,
    ):
        self.lnd = lnd
        self.lsps5 = lsps5  # wakes offline clients that registered webhooks (LSPS5)
        self.store = store
        self.sizing = sizing or ChannelSizing()
        self.mpp_timeout_s = mpp_timeout_s
        self.groups: dict[str, Group] = {}
        self._stream: Any = None
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Event()
        from datetime import UTC, datetime

        self._now = now or (lambda: datetime.now(UTC))
        ln = lnd.pb.ln
        self.TEMPORARY_CHANNEL_FAILURE = ln.Failure.FailureCode.TEMPORARY_CHANNEL_FAILURE
        self.UNKNOWN_NEXT_PEER = ln.Failure.FailureCode.UNKNOWN_NEXT_PEER

    # -- the stream ---------------------------------------------------------------
    async def run(self) -> None:
        """Serve the interceptor stream until cancelled, reconnecting after LND restarts."""
        while True:
            stream = self.lnd.htlc_interceptor()
            self._stream = stream
            try:
                await self.restore_aliases()
                self.connected.set()
                async for req in stream:
                    await self.on_htlc(req)
            except LndError as exc:
                log.warning("HtlcInterceptor stream ended: %s; reconnecting", exc.message)
            finally:
                self.connected.clear()
                stream.cancel()
            await asyncio.sleep(1.0)

    async def restore_aliases(self) -> int:
        """Add back the JIT SCID aliases LND forgot: ``XAddLocalChanAliases`` lives in LND's memory
        only, so after LND restarts a payment through a bought JIT SCID would fail with
        unknown_next_peer although its channel is open. Run at every (re)connection of the
        interceptor stream, i.e. after our restart and after LND's. Returns how many were re-added."""
        wanted = self.store.opened_aliases()
        if not wanted:
            return 0
        have = {(int(m.base_scid), int(a)) for m in await self.lnd.list_aliases() for a in m.aliases}
        added = 0
        for buy_id, base, jit in wanted:
            if (base, jit) in have:
                continue
            try:
                await self.lnd.add_alias(base, jit)
                added += 1
            except LndError as exc:  # its channel closed meanwhile: nothing left to route onto
                log.info("JIT buy %s: alias not restored (%s)", buy_id, exc.message)
        log.log(
            logging.WARNING if added else logging.INFO,
            "JIT SCID aliases: %d of %d were missing in LND and re-added", added, len(wanted),
        )
        return added

    async def _send(self, **fields: Any) -> None:
        router = self.lnd.pb.router
        msg = router.ForwardHtlcInterceptResponse(**fields)
        async with self._write_lock:
            if self._stream is not None:
                await self._stream.write(msg)

    async def resume(self, key: CircuitKey) -> None:
        ck = self.lnd.pb.router.CircuitKey(chan_id=key[0], htlc_id=key[1])
        await self._send(incoming_circuit_key=ck, action=self.lnd.pb.router.RESUME)

    async def fail(self, key: CircuitKey, code: int) -> None:
        """Fail back. LND's interceptor only builds temporary_channel_failure (and onion errors)
        itself; unknown_next_peer is obtained by RESUMING an HTLC whose JIT SCID is not (yet)
        mapped to any channel: the switch then fails it with exactly that error, as bLIP-52
        asks. Only call it with UNKNOWN_NEXT_PEER before the alias is added."""
        ck = self.lnd.pb.router.CircuitKey(chan_id=key[0], htlc_id=key[1])
        if code == self.UNKNOWN_NEXT_PEER:
            await self._send(incoming_circuit_key=ck, action=self.lnd.pb.router.RESUME)
            return
        await self._send(incoming_circuit_key=ck, action=self.lnd.pb.router.FAIL, failure_code=code)

    async def resume_minus_fee(self, key: CircuitKey, amount_msat: int, fee_msat: int) -> None:
        ck = self.lnd.pb.router.CircuitKey(chan_id=key[0], htlc_id=key[1])
        fields: dict[str, Any] = {"incoming_circuit_key": ck, "action": self.lnd.pb.router.RESUME_MODIFIED}
        if fee_msat:
            fields["out_amount_msat"] = amount_msat - fee_msat
            fields["out_wire_custom_records"] = {EXTRA_FEE_TLV: fee_msat.to_bytes(8, "big")}
        await self._send(**fields)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one intercepted HTLC ---------------------------------------------------------
    async def on_htlc(self, req: Any) -> None:
        key = (req.incoming_circuit_key.chan_id, req.incoming_circuit_key.htlc_id)
        scid = req.outgoing_requested_chan_id
        if not is_jit_scid(scid):
            peer = await self._sleeping_peer(scid)
            if peer is None:
                await self.resume(key)
            else:  # held while its webhooks wake it (LSPS5), then forwarded (LND fails it if still offline)
                self._spawn(self._resume_after_wake(key, peer))
            return
        buy = self.store.buy_by_scid(scid)
        if buy is None or buy.state == "FAILED":
            await self.fail(key, self.UNKNOWN_NEXT_PEER)
            return
        payment_hash = req.payment_hash.hex()
        held = self.store.record_htlc(buy.id, key[0], key[1], payment_hash, req.outgoing_amount_msat)
        # A replay of a part we already decided: repeat the decision.
        if held.state == "FORWARDED":
            await self.resume_minus_fee(key, held.amount_msat, held.fee_msat)
            return
        if held.state == "FAILED":
            await self.fail(
                key, self.UNKNOWN_NEXT_PEER if held.failure == "unknown_next_peer" else self.TEMPORARY_CHANNEL_FAILURE
            )
            return
        if buy.state == "OPENED":
            # The channel exists: later payments through the JIT SCID are plain forwards (no fee).
            self.store.resolve_htlc(key[0], key[1], "FORWARDED", fee_msat=0)
            await self.resume(key)
            return
        group = self.groups.get(buy.id)
        if group is None:
            if buy.params.expired(self._now()):
                await self._fail_parts([Part(key, payment_hash, req.outgoing_amount_msat)], "unknown_next_peer")
                return
            group = Group(buy)
            self.groups[buy.id] = group
            group.timer = asyncio.create_task(self._timeout(buy.id))
        group.parts[key] = Part(key, payment_hash, req.outgoing_amount_msat)
        if group.opening:
            return  # a late part joins the parts being forwarded when the channel is up
        total = sum(p.amount_msat for p in group.parts.values())
        target = buy.payment_size_msat if buy.payment_size_msat is not None else total
        if total >= target:
            group.opening = True
            if group.timer is not None:
                group.timer.cancel()
            self._spawn(self._open_and_forward(group))

    async def _sleeping_peer(self, scid: int) -> str | None:
        """The offline client with LSPS5 webhooks that an ordinary forward onto ``scid`` is for."""
        if self.lsps5 is None or not self.lsps5.with_webhooks:
            return None
        peer = await self.lsps5.peer_of_channel(scid)
        if peer is None or peer in self.lsps5.online or peer not in self.lsps5.with_webhooks:
            return None
        return peer

    async def _resume_after_wake(self, key: CircuitKey, peer: str) -> None:
        assert self.lsps5 is not None
        woke = await self.lsps5.wake(peer)
        log.info("HTLC %s for %s: %s", key, peer[:16], "client woke up" if woke else "client did not wake up in time")
        await self.resume(key)

    async def _timeout(self, buy_id: str) -> None:
        await asyncio.sleep(self.mpp_timeout_s)
        group = self.groups.get(buy_id)
        if group is None or group.opening:
            return
        del self.groups[buy_id]
        log.info("JIT buy %s: MPP parts did not add up within %.0f s", buy_id, self.mpp_timeout_s)
        await self._fail_parts(list(group.parts.values()), "temporary_channel_failure")

    async def _fail_parts(self, parts: list[Part], failure: str) -> None:
        code = self.UNKNOWN_NEXT_PEER if failure == "unknown_next_peer" else self.TEMPORARY_CHANNEL_FAILURE
        for p in parts:
            self.store.resolve_htlc(p.key[0], p.key[1], "FAILED", failure=failure)
        await asyncio.gather(*(self.fail(p.key, code) for p in parts))

    async def _open_and_forward(self, group: Group) -> None:
        buy = group.buy
        parts = list(group.parts.values())
        total = sum(p.amount_msat for p in parts)
        size = buy.payment_size_msat if buy.payment_size_msat is not None else total
        try:
            fee = buy.params.fee(size)
            if buy.payment_size_msat is None and not (
                buy.params.min_payment_size_msat <= size <= buy.params.max_payment_size_msat
            ):
                raise ValueError(f"payment of {size} msat is outside the bought range")
            shares = split_fee([p.amount_msat for p in parts], fee)
        except (FeeOverflow, ValueError) as exc:
            log.info("JIT buy %s: cannot take the fee: %s", buy.id, exc)
            self.groups.pop(buy.id, None)
            await self._fail_parts(parts, "unknown_next_peer")
            return
        # A buy already OPENING was being opened by an earlier run of this service that stopped
        # (crash, restart) before recording the result; LND replayed the held parts. Its channel
        # may exist: find it by the memo LND stores with it rather than open a second one.
        resumed = buy.state == "OPENING"
        memo = f"lsps2 buy {buy.id}"
        if self.lsps5 is not None:  # an offline client with webhooks is woken first (LSPS5)
            await self.lsps5.wake(buy.client_node_id)
        crash_point("jit.htlc_held")
        self.store.set_buy_state(buy.id, "OPENING", fee_msat=fee)
        try:
            existing = await self._find_earlier_open(memo) if resumed else None
            if existing is not None:
                log.info("JIT buy %s: resuming with the channel %s an earlier run opened", buy.id, existing)
                opened = await self.lnd.wait_active(buy.client_node_id, existing)
            else:
                opened = await self.lnd.open_zero_conf(
                    buy.client_node_id,
                    self.sizing.capacity_sat(size),
                    memo=memo,
                    on_pending=lambda _point: crash_point("jit.funding_published"),
                )
                crash_point("jit.channel_opening")
            base = await self._base_scid(opened.chan_id)
            if not await self._has_alias(base, buy.jit_scid):
                await self.lnd.add_alias(base, buy.jit_scid)
        except LndError as exc:
            log.warning("JIT buy %s: channel open failed: %s", buy.id, exc.message)
            self.store.set_buy_state(buy.id, "FAILED", reason=exc.message)
            self.groups.pop(buy.id, None)
            await self._fail_parts(list(group.parts.values()), "temporary_channel_failure")
            return
        self.store.set_buy_state(buy.id, "OPENED", channel_point=opened.channel_point, channel_alias=base)
        for p, share in zip(parts, shares, strict=True):
            self.store.resolve_htlc(p.key[0], p.key[1], "FORWARDED", fee_msat=share)
        await asyncio.gather(
            *(self.resume_minus_fee(p.key, p.amount_msat, s) for p, s in zip(parts, shares, strict=True))
        )
        crash_point("jit.htlc_resumed")
        # Parts that arrived while the channel was opening carry no fee (it is already covered).
        late = [p for k, p in group.parts.items() if k not in {q.key for q in parts}]
        for p in late:
            self.store.resolve_htlc(p.key[0], p.key[1], "FORWARDED", fee_msat=0)
            await self.resume(p.key)
        self.groups.pop(buy.id, None)
        log.info(
            "JIT buy %s: channel %s open, %d part(s) forwarded, fee %d msat",
            buy.id,
            opened.channel_point,
            len(parts),
            fee,
        )

    async def _base_scid(self, chan_id: int) -> int:
        """The channel's base SCID for XAddLocalChanAliases (zero-conf: its first alias)."""
        for m in await self.lnd.list_aliases():
            if m.base_scid == chan_id or chan_id in m.aliases:
                return int(m.base_scid)
        return chan_id

    async def _find_earlier_open(self, memo: str) -> str | None:
        """The channel an earlier run asked LND to open, if LND has it (the earlier run may have
        stopped while LND was still in the funding flow: look for a while before concluding)."""
        found = await self.lnd.find_channel_by_memo(memo, look_s=RESUME_FIND_S)
        log.info("%r: %s", memo, f"found {found}" if found else "no such channel")
        return found

    async def _has_alias(self, base_scid: int, alias: int) -> bool:
        return any(int(m.base_scid) == base_scid and alias in m.aliases for m in await self.lnd.list_aliases())

    async def close(self) -> None:
        for g in self.groups.values():
            if g.timer is not None:
                g.timer.cancel()
        for t in list(self._tasks):
            t.cancel()
        if self._stream is not None:
            self._stream.cancel()
