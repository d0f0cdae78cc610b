"""Watchtowers and breaches (the seed's "Watchtower Integration: automated breach detection").

* The LSP's LND backs its channel states up to the towers the operator lists in
  ``LSP_WATCHTOWERS`` (``wtclientrpc.AddTower`` at start-up and again every check, so a tower
  added while LND was down, or after LND lost it, is registered; LND needs ``--wtclient.active``).
* ``GET /api/admin/security`` reports each tower's health (reachable sessions, backups, pending
  backups), the client's totals, and every breach seen.
* A breach -- a counterparty broadcasting a revoked commitment -- ends with LND closing the
  channel as ``BREACH_CLOSE``, whether LND's own breach arbiter sweeps it or a tower does while
  LND is offline. The LSP reads LND's closed channels at every channel reconciliation (start-up,
  each channel event, every 30 s) and raises each breach once: a ``channel_breach`` compliance
  alert (critical), an audit entry ``channel.breach``, and a ``channel_breach`` event on the
  WebSocket and to the webhooks of the client whose channel it was (the operator's listeners get
  every one).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lncore.lnd.client import LndClient
from lsp.compliance import audit
from lsp.context import AppContext
from lsp.db.base import session_scope, utcnow
from lsp.db.models import Channel
from lsp.db.models_compliance import ChannelBreach, ComplianceAlert
from lsp.errors import LndError
from lsp.schemas import CamelModel
from lsp.services.events import Event

if TYPE_CHECKING:
    from lnd_grpc import lightning_pb2 as ln

log = logging.getLogger("lsp.security")
TOWER_CHECK_S = 60.0


class TowerSessionView(CamelModel):
    id: str
    backups: int
    pending_backups: int
    max_backups: int


class TowerView(CamelModel):
    pubkey: str
    addresses: list[str]
    configured: bool = Field(description="listed in LSP_WATCHTOWERS")
    registered: bool = Field(description="LND's watchtower client knows it")
    active_session_candidate: bool = Field(description="LND can open new backup sessions with it")
    sessions: list[TowerSessionView]
    backups: int
    pending_backups: int
    healthy: bool = Field(description="registered, usable for new sessions, and no backups stuck pending")
    error: str | None


class TowerTotals(CamelModel):
    backups: int
    pending_backups: int
    failed_backups: int
    sessions_acquired: int
    sessions_exhausted: int


class BreachView(CamelModel):
    channel_point: str
    client_id: str | None
    remote_pubkey: str
    breach_txid: str
    capacity: int
    recovered: int = Field(description="sats LND swept back to its wallet")
    close_height: int
    detected_at: datetime


class SecurityView(CamelModel):
    watchtower_client: bool = Field(description="LND runs its watchtower client (--wtclient.active)")
    towers: list[TowerView]
    totals: TowerTotals | None
    breaches: list[BreachView]
    error: str | None = Field(description="why the towers could not be read")


async def register_towers(lnd: LndClient, towers: list[tuple[str, str]]) -> dict[str, str | None]:
    """AddTower each configured tower; per tower, None or the error LND gave."""
    out: dict[str, str | None] = {}
    for pubkey, address in towers:
        try:
            await lnd.add_tower(pubkey, address)
            out[pubkey] = None
        except LndError as exc:
            out[pubkey] = exc.message
            log.warning("watchtower %s@%s not registered: %s", pubkey[:16], address, exc.message)
    return out


async def keep_towers(ctx: AppContext, lnd: LndClient) -> None:
    """Register the configured towers now and at every check (the loop the watchers run)."""
    towers = ctx.settings.watchtower_list
    while True:
        ctx.tower_errors = await register_towers(lnd, towers)
        await asyncio.sleep(TOWER_CHECK_S)


async def security_view(ctx: AppContext, lnd: LndClient) -> SecurityView:
    configured = dict(ctx.settings.watchtower_list)
    breaches = await asyncio.to_thread(_breaches, ctx)
    if not configured:  # (asking an LND without --wtclient.active makes it log an error each time)
        return SecurityView(
            watchtower_client=False, towers=[], totals=None, breaches=breaches,
            error="no watchtowers configured (LSP_WATCHTOWERS)",
        )
    try:
        towers = await lnd.list_towers(include_sessions=True)
        stats = await lnd.tower_stats()
    except LndError as exc:
        return SecurityView(watchtower_client=False, towers=[], totals=None, breaches=breaches, error=exc.message)
    views: list[TowerView] = []
    seen: set[str] = set()
    for t in towers:
        key = t.pubkey.hex()
        seen.add(key)
        sessions = [
            TowerSessionView(
                id=s.id.hex(), backups=int(s.num_backups), pending_backups=int(s.num_pending_backups),
                max_backups=int(s.max_backups),
            )
            for s in t.sessions
        ]
        pending = sum(s.pending_backups for s in sessions)
        views.append(
            TowerView(
                pubkey=key,
                addresses=list(t.addresses),
                configured=key in configured,
                registered=True,
                active_session_candidate=bool(t.active_session_candidate),
                sessions=sessions,
                backups=sum(s.backups for s in sessions),
                pending_backups=pending,
                healthy=bool(t.active_session_candidate) and pending == 0,
                error=None,
            )
        )
    for key, address in configured.items():  # configured but unknown to LND: not protecting anything
        if key not in seen:
            views.append(
                TowerView(
                    pubkey=key, addresses=[address], configured=True, registered=False, active_session_candidate=False,
                    sessions=[], backups=0, pending_backups=0, healthy=False,
                    error=ctx.tower_errors.get(key) or "not registered yet",
                )
            )
    totals = TowerTotals(
        backups=int(stats.num_backups),
        pending_backups=int(stats.num_pending_backups),
        failed_backups=int(stats.num_failed_backups),
        sessions_acquired=int(stats.num_sessions_acquired),
        sessions_exhausted=int(stats.num_sessions_exhausted),
    )
    return SecurityView(watchtower_client=True, towers=views, totals=totals, breaches=breaches, error=None)


def _breaches(ctx: AppContext) -> list[BreachView]:
    with session_scope(ctx.sessions) as s:
        rows = s.scalars(select(ChannelBreach).order_by(ChannelBreach.detected_at.desc())).all()
        return [
            BreachView(
                channel_point=b.channel_point, client_id=b.client_id, remote_pubkey=b.remote_pubkey,
                breach_txid=b.breach_txid, capacity=b.capacity_sat, recovered=b.settled_balance_sat,
                close_height=b.close_height, detected_at=b.detected_at,
            )
            for b in rows
        ]


async def detect_breaches(ctx: AppContext, lnd: LndClient) -> int:
    """Raise every BREACH_CLOSE in LND's closed channels not raised before; how many were new."""
    breach_type = lnd.pb.ln.ChannelCloseSummary.ClosureType.Value("BREACH_CLOSE")
    found = [c for c in await lnd.closed_channels() if c.close_type == breach_type]
    if not found:
        return 0
    new = 0
    for c in found:
        event = await asyncio.to_thread(_record, ctx, c)
        if event is not None:
            new += 1
            ctx.bus.publish(event)
            log.error("BREACH on channel %s (peer %s): revoked commitment %s", c.channel_point, c.remote_pubkey[:16],
                      c.closing_tx_hash)
    return new


def _record(ctx: AppContext, c: ln.ChannelCloseSummary) -> Event | None:
    """The breach row, alert and audit entry in one transaction (none of them twice); the event to publish."""
    point = c.channel_point
    with session_scope(ctx.sessions) as s:
        if s.get(ChannelBreach, point) is not None:
            return None
        client_id = s.scalar(
            select(Channel.client_id).where(
                Channel.funding_txid == point.split(":")[0], Channel.output_index == int(point.split(":")[1])
            )
        )
        row = ChannelBreach(
            channel_point=point,
            client_id=client_id,
            remote_pubkey=c.remote_pubkey,
            breach_txid=c.closing_tx_hash,
            capacity_sat=int(c.capacity),
            settled_balance_sat=int(c.settled_balance),
            close_height=int(c.close_height),
        )
        data = {
            "channelPoint": point,
            "remotePubkey": row.remote_pubkey,
            "breachTxid": row.breach_txid,
            "capacity": row.capacity_sat,
            "recovered": row.settled_balance_sat,
            "closeHeight": row.close_height,
        }
        try:
            with s.begin_nested():
                s.add(row)
                s.flush()
        except IntegrityError:  # another process raised it at the same moment
            return None
        s.add(
            ComplianceAlert(
                rule="channel_breach",
                severity="critical",
                client_id=client_id,
                summary=f"revoked commitment {row.breach_txid[:16]}... broadcast against channel {point}; "
                f"{row.settled_balance_sat} sat recovered",
                evidence=json.dumps(data, sort_keys=True),
                last_event_at=utcnow(),
            )
        )
        audit.record_system(s, "channel.breach", client_id, f"channel:{point}", data)
    return Event("channel_breach", client_id, data)
