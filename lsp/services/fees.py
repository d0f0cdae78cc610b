"""Dynamic fees: each of the LSP node's channels priced from its own liquidity, within the
operator's bounds and at a bounded pace (the seed's "dynamic fee adjustments").

For a channel with local ratio ``r = local balance / capacity``:

* outbound fee rate ``min_ppm + (max_ppm - min_ppm) * (1 - r)``: a drained channel (r -> 0) is
  dear to route out through, a full one cheap;
* inbound fee rate ``-max_inbound_discount_ppm * (1 - r)``: a discount on payments *arriving*
  over a drained channel (LND's inbound fees; they refill its local side), none on a full one;
* both rounded to whole ppm. Base fees stay the operator's (``base_fee_msat``, inbound 0).

Each run moves every channel's rates towards those targets by at most ``max_step_ppm`` per rate,
and leaves a channel alone when neither rate would move by ``min_change_ppm`` or more (each
update is a gossip message the network must carry). Every update LND accepts is an audit entry
(``routing.fee_update``, before and after); a dry run computes the same plan and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from sqlalchemy.orm import Session, sessionmaker

from lsp.compliance import audit
from lsp.db.base import session_scope
from lsp.errors import LndError
from lsp.schemas import CamelModel
from lsp.services.fees_config import FeeSettings

if TYPE_CHECKING:
    from lncore.lnd.client import LndClient

log = logging.getLogger("lsp.fees")


def targets(settings: FeeSettings, local_sat: int, capacity_sat: int) -> tuple[int, int]:
    """(outbound ppm, inbound ppm) for a channel's liquidity: the formula in the module docstring."""
    drained = 1 - (local_sat / capacity_sat if capacity_sat else 0)
    drained = min(max(drained, 0.0), 1.0)
    out = settings.min_ppm + round((settings.max_ppm - settings.min_ppm) * drained)
    inbound = -round(settings.max_inbound_discount_ppm * drained)
    return out, inbound


def step(current: int, target: int, max_step: int) -> int:
    return current + max(-max_step, min(max_step, target - current))


class ChannelFeePlan(CamelModel):
    channel_point: str
    chan_id: str
    peer: str
    capacity: int
    local: int
    local_ratio: float
    fee_rate_ppm: int = Field(description="the outbound rate now")
    inbound_fee_rate_ppm: int = Field(description="the inbound rate now (negative: a discount)")
    target_fee_rate_ppm: int
    target_inbound_fee_rate_ppm: int
    next_fee_rate_ppm: int = Field(description="what this run sets (at most max_step_ppm from now)")
    next_inbound_fee_rate_ppm: int
    change: bool = Field(description="whether this run updates the channel")
    outcome: Literal["planned", "updated", "unchanged", "failed"] = "planned"
    error: str | None = None


class FeeRun(CamelModel):
    dry_run: bool
    channels: list[ChannelFeePlan]
    updated: int


@dataclass
class FeeEngine:
    lnd: LndClient
    sessions: sessionmaker[Session]
    settings: FeeSettings

    async def plan(self) -> list[ChannelFeePlan]:
        s = self.settings
        report = {f.channel_point: f for f in await self.lnd.fee_report()}
        out: list[ChannelFeePlan] = []
        for c in await self.lnd.list_channels(active_only=True):
            fees = report.get(c.channel_point)
            if fees is None or c.capacity <= 0:
                continue
            cur_out, cur_in = int(fees.fee_per_mil), int(fees.inbound_fee_per_mil)
            t_out, t_in = targets(s, int(c.local_balance), int(c.capacity))
            n_out, n_in = step(cur_out, t_out, s.max_step_ppm), step(cur_in, t_in, s.max_step_ppm)
            # Worth an update: a move of min_change_ppm, or one that reaches the target, or a base fee to set.
            change = any(
                abs(new - cur) >= s.min_change_ppm or (new != cur and new == target)
                for cur, new, target in ((cur_out, n_out, t_out), (cur_in, n_in, t_in))
            )
            change = change or int(fees.base_fee_msat) != s.base_fee_msat or int(fees.inbound_base_fee_msat) != 0
            out.append(
                ChannelFeePlan(
                    channel_point=c.channel_point,
                    chan_id=str(c.chan_id),
                    peer=c.remote_pubkey,
                    capacity=int(c.capacity),
                    local=int(c.local_balance),
                    local_ratio=round(int(c.local_balance) / int(c.capacity), 4),
                    fee_rate_ppm=cur_out,
                    inbound_fee_rate_ppm=cur_in,
                    target_fee_rate_ppm=t_out,
                    target_inbound_fee_rate_ppm=t_in,
                    next_fee_rate_ppm=n_out,
                    next_inbound_fee_rate_ppm=n_in,
                    change=change,
                )
            )
        return out

    async def run(self, *, dry_run: bool | None = None) -> FeeRun:
        dry = self.settings.dry_run if dry_run is None else dry_run
        plans = await self.plan()
        updated = 0
        for p in plans:
            if not p.change:
                p.outcome = "unchanged"
                continue
            if dry:
                continue
            try:
                info = await self.lnd.get_chan_info(int(p.chan_id))
                ours = info.node1_policy if info.node1_pub != p.peer else info.node2_policy
                await self.lnd.update_channel_policy(
                    p.channel_point,
                    base_fee_msat=self.settings.base_fee_msat,
                    fee_rate_ppm=p.next_fee_rate_ppm,
                    time_lock_delta=int(ours.time_lock_delta) or 80,
                    inbound_fee_rate_ppm=p.next_inbound_fee_rate_ppm,
                )
            except LndError as exc:  # one channel's refusal does not stop the others
                p.outcome, p.error = "failed", str(exc)
                log.warning("fee update of %s failed: %s", p.channel_point, exc)
                continue
            p.outcome = "updated"
            updated += 1
            await asyncio.to_thread(self._audit, p)
        if updated or dry:
            log.info("fees: %d channel(s) %s", sum(p.change for p in plans), "would change (dry run)" if dry else "updated")
        return FeeRun(dry_run=dry, channels=plans, updated=updated)

    def _audit(self, p: ChannelFeePlan) -> None:
        with session_scope(self.sessions) as s:
            audit.record(
                s,
                actor="system",
                action="routing.fee_update",
                target=f"channel:{p.channel_point}",
                before={"feeRatePpm": p.fee_rate_ppm, "inboundFeeRatePpm": p.inbound_fee_rate_ppm},
                after={
                    "feeRatePpm": p.next_fee_rate_ppm,
                    "inboundFeeRatePpm": p.next_inbound_fee_rate_ppm,
                    "baseFeeMsat": self.settings.base_fee_msat,
                    "localRatio": p.local_ratio,
                },
            )

    async def loop(self) -> None:
        while True:
            await self.run()
            await asyncio.sleep(self.settings.interval_s)
