"""The routing engine fed from a live LND node: graph, own balances, persisted liquidity beliefs.

``LiveGraph.load()`` reads the whole graph once (DescribeGraph, unannounced channels included
so our private channels count), our identity (GetInfo) and our channels' spendable balances
(ListChannels), and restores the liquidity model from the database. ``start()`` then follows
LND's graph topology stream (SubscribeChannelGraph): policy updates replace a direction's
policy, new channels appear, closed channels disappear. The stream reconnects after errors
with a bounded backoff, because the graph is only as good as its last update.

Our own balances are certain knowledge (``ChannelGraph.local_balances_msat``); they are
re-read before every payment and after it settles, never from the stream (it does not carry
balances).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from lsp.db.base import session_scope
from lsp.db.models_routing import RoutingLiquidity
from lsp.errors import LndError
from lsp.routing.graph import Channel, ChannelGraph
from lsp.routing.liquidity import DEFAULT_HALF_LIFE_S, Knowledge, LiquidityModel, Prior
from lsp.routing.mcf import McfConfig, McfPlanner

if TYPE_CHECKING:
    from lncore.lnd.client import LndClient

log = logging.getLogger("lsp.routing.live")

RESERVE_MARGIN_SAT = 1_000
"""Kept back from our spendable balance: LND also reserves commitment fees for new HTLCs."""


def channel_from_policy(scid: str, capacity_sat: int, source: str, dest: str, policy: Any) -> Channel | None:
    """A direction from LND's ``RoutingPolicy`` proto; None if the direction was never announced."""
    if policy is None or not policy.ByteSize():
        return None
    return Channel(
        scid=scid,
        source=source,
        dest=dest,
        capacity_sat=int(capacity_sat),
        base_fee_msat=int(policy.fee_base_msat),
        fee_rate_ppm=int(policy.fee_rate_milli_msat),
        cltv_delta=int(policy.time_lock_delta),
        htlc_min_msat=max(1, int(policy.min_htlc)),
        htlc_max_msat=int(policy.max_htlc_msat) or None,
        enabled=not policy.disabled,
    )


class LiveGraph:
    """A ``ChannelGraph`` + ``LiquidityModel`` kept current from LND; shared by all payments."""

    def __init__(
        self,
        lnd: LndClient,
        *,
        sessions: sessionmaker[Session] | None = None,
        prior: Prior | str = Prior.UNIFORM,
        half_life_s: float = DEFAULT_HALF_LIFE_S,
        config: McfConfig | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.lnd = lnd
        self.sessions = sessions
        self.config = config or McfConfig()
        kw: dict[str, Any] = {"half_life_s": half_life_s}
        if clock is not None:
            kw["clock"] = clock
        self.liquidity = LiquidityModel(prior, **kw)
        self.self_node: str = ""
        self.channels: dict[tuple[str, str], Channel] = {}
        self.local_balances_msat: dict[tuple[str, str], int] = {}
        self.updates_applied = 0
        self._graph: ChannelGraph | None = None
        self._planner: McfPlanner | None = None
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()

    # --- loading ---------------------------------------------------------------------------

    async def load(self) -> None:
        info = await self.lnd.get_info()
        self.self_node = info.identity_pubkey
        graph = await self.lnd.describe_graph(include_unannounced=True)
        channels: dict[tuple[str, str], Channel] = {}
        for edge in graph.edges:
            scid = str(edge.channel_id)
            for policy, src, dst in (
                (edge.node1_policy if edge.HasField("node1_policy") else None, edge.node1_pub, edge.node2_pub),
                (edge.node2_policy if edge.HasField("node2_policy") else None, edge.node2_pub, edge.node1_pub),
            ):
                ch = channel_from_policy(scid, edge.capacity, src, dst, policy)
                if ch is not None:
                    channels[ch.key] = ch
        self.channels = channels
        self._invalidate()
        await self.refresh_balances()
        self.load_model()

    async def refresh_balances(self) -> None:
        """Our outgoing directions' spendable msat (local balance minus reserve), from ListChannels."""
        balances: dict[tuple[str, str], int] = {}
        for c in await self.lnd.list_channels():
            spendable = 0
            if c.active:
                spendable = max(0, c.local_balance - c.local_constraints.chan_reserve_sat - RESERVE_MARGIN_SAT)
            balances[(str(c.chan_id), self.self_node)] = spendable * 1000
        self.local_balances_msat = balances
        if self._graph is not None:
            self._graph.local_balances_msat = dict(balances)

    # --- topology stream -------------------------------------------------------------------

    def apply_update(self, update: Any) -> int:
        """Apply one ``GraphTopologyUpdate``; returns how many directions changed."""
        n = 0
        for cu in update.channel_updates:
            ch = channel_from_policy(
                str(cu.chan_id), cu.capacity, cu.advertising_node, cu.connecting_node, cu.routing_policy
            )
            if ch is not None and self.channels.get(ch.key) != ch:
                self.channels[ch.key] = ch
                n += 1
        for closed in update.closed_chans:
            scid = str(closed.chan_id)
            for key in [k for k in self.channels if k[0] == scid]:
                del self.channels[key]
                self.liquidity.knowledge.pop(key, None)
                n += 1
        if n:
            self.updates_applied += n
            self._invalidate()
            self.changed.set()
        return n

    async def run(self, *, max_backoff_s: float = 30.0) -> None:
        backoff = 1.0
        while True:
            try:
                async for update in self.lnd.subscribe_channel_graph():
                    backoff = 1.0
                    self.apply_update(update)
            except LndError as exc:
                log.warning("graph stream broke (%s); reconnecting in %.0f s", exc, backoff)
            # A stream that ends or breaks may have missed updates: reload the snapshot.
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
            with contextlib.suppress(LndError):
                await self.load()

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="routing-graph-stream")
        return self._task

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- the model the planner sees -------------------------------------------------------

    def _invalidate(self) -> None:
        self._graph = None
        self._planner = None

    def graph(self) -> ChannelGraph:
        if self._graph is None:
            self._graph = ChannelGraph.from_channels(
                self.channels.values(), self_node=self.self_node, local_balances_msat=self.local_balances_msat
            )
        return self._graph

    def planner(self) -> McfPlanner:
        if self._planner is None:
            self._planner = McfPlanner(self.graph(), self.liquidity, self.config)
        return self._planner

    def reverse(self, ch: Channel) -> Channel | None:
        return self.channels.get((ch.scid, ch.dest))

    # --- persistence -----------------------------------------------------------------------

    def save_model(self) -> int:
        """Write every learned bound (replacing the stored set); returns the row count."""
        if self.sessions is None:
            return 0
        rows = [
            RoutingLiquidity(
                scid=scid, source=src, lower_msat=k.lower_msat, upper_msat=k.upper_msat, updated_at=k.updated_at
            )
            for (scid, src), k in self.liquidity.knowledge.items()
            if k.lower_msat > 0 or k.upper_msat is not None
        ]
        with session_scope(self.sessions) as s:
            s.execute(delete(RoutingLiquidity))
            s.add_all(rows)
        return len(rows)

    def load_model(self) -> int:
        if self.sessions is None:
            return 0
        with session_scope(self.sessions) as s:
            rows = list(s.scalars(select(RoutingLiquidity)))
            for r in rows:
                if (r.scid, r.source) in self.liquidity.knowledge:
                    continue  # what this process learned since is newer than the stored row
                self.liquidity.knowledge[(r.scid, r.source)] = Knowledge(
                    lower_msat=r.lower_msat, upper_msat=r.upper_msat, updated_at=r.updated_at
                )
            return len(rows)
