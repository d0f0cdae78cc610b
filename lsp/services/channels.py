"""The channel manager: open channels to clients (validated, fee charged), track them
opening -> pending -> open -> closing -> closed (or opening -> failed, fee refunded) from LND's
state, and close them on request."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lncore.lnd.client import LndClient
from lsp.compliance import audit
from lsp.config import Settings
from lsp.db.base import session_scope, utcnow
from lsp.db.models import Channel, new_id
from lsp.errors import Conflict, LndError, LndUnavailable, NotFound, ValidationFailed
from lsp.faults import crash_point
from lsp.schemas import CamelModel
from lsp.services import ledger
from lsp.services.events import channel_data

log = logging.getLogger("lsp.channels")
PUBKEY_RE = re.compile(r"^(02|03)[0-9a-f]{64}$")
HOST_RE = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$")


def is_valid_pubkey(pubkey: str) -> bool:
    """33-byte compressed secp256k1 point. The shape alone is not enough: found live, LND answers
    an off-curve key with an RPC error, which reached the client as a 502 instead of a 422."""
    if not PUBKEY_RE.match(pubkey):
        return False
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), bytes.fromhex(pubkey))
    except ValueError:
        return False
    return True


MAX_FUNDING_SAT = 2**24 - 1  # BOLT 2's limit on a channel without option_support_large_channel
LARGE_CHANNEL_BITS = (18, 19)  # BOLT 9: option_support_large_channel (required, optional)


async def _opens_large_channels(lnd: LndClient) -> bool:
    """Whether the LSP's LND advertises wumbo channels (``--protocol.wumbo-channels``)."""
    features = (await lnd.get_info()).features
    return any(bit in features for bit in LARGE_CHANNEL_BITS)


async def ensure_connected(lnd: LndClient, pubkey: str, host: str | None) -> None:
    """The LSP's node is connected to the client's, or connects to ``host`` (the request's
    ``body.host``); a node the LSP cannot reach is the client's 422, LND being down a 503."""
    peers = {p.pub_key for p in await lnd.list_peers()}
    if pubkey in peers:
        return
    if not host:
        raise ValidationFailed(f"not connected to {pubkey[:16]}...; give its host:port", field="body.host")
    if not HOST_RE.match(host):
        raise ValidationFailed(f"host {host!r} is not host:port", field="body.host")
    try:
        await lnd.connect_peer(pubkey, host, timeout_s=15)
    except LndError as exc:
        if exc.grpc_code == "UNAVAILABLE":  # LND itself is down, not the client's node
            raise
        # Unreachable host or wrong node there: the client gave us an address we cannot use.
        raise ValidationFailed(f"cannot connect to {pubkey[:16]}... at {host}: {exc.message}", field="body.host") from None


def validate_open(settings: Settings, *, pubkey: str, capacity_sat: int, push_sat: int) -> int:
    """Everything checkable without LND; returns the opening fee (the seed's base + capacity fee)."""
    if not is_valid_pubkey(pubkey):
        raise ValidationFailed(
            "clientPubkey must be a 33-byte compressed secp256k1 public key in hex", field="body.clientPubkey"
        )
    check_size(settings, capacity_sat, push_sat)
    return settings.opening_fee(capacity_sat)


def check_size(
    settings: Settings,
    capacity_sat: int,
    push_sat: int,
    *,
    capacity_field: str = "body.channelSize",
    push_field: str = "body.pushAmount",
) -> None:
    """A channel the LSP would open: within LSP_MIN/MAX_CHANNEL_SIZE, pushing less than its capacity.
    The fields name where the request carried the two amounts."""
    name = capacity_field.rsplit(".", 1)[-1]
    lo, hi = settings.min_channel_size, settings.max_channel_size
    if capacity_sat < lo:
        raise ValidationFailed(f"{name} {capacity_sat} is below the minimum {lo} sat", field=capacity_field)
    if capacity_sat > hi:
        raise ValidationFailed(f"{name} {capacity_sat} is above the maximum {hi} sat", field=capacity_field)
    if push_sat >= capacity_sat:
        raise ValidationFailed(f"pushAmount must be smaller than {name}", field=push_field)


OPENING_GRACE_S = 180.0
"""An ``opening`` row older than this whose request is gone (the LSP died or lost LND between
writing it and recording LND's answer) is resolved from LND by the channel's memo
(``LSP_CHANNEL_OPEN_GRACE`` sets it)."""


def memo_for(channel_id: str) -> str:
    """What LND stores with the channel: how a restarted LSP finds a channel it opened."""
    return f"lsp channel {channel_id}"


async def open_channel(
    lnd: LndClient,
    sessions: sessionmaker[Session],
    settings: Settings,
    client_id: str,
    *,
    pubkey: str,
    capacity_sat: int,
    push_sat: int = 0,
    private: bool = False,
    host: str | None = None,
    sat_per_vbyte: int | None = None,
    on_intent: Callable[[Session, Channel], object] | None = None,
) -> Channel:
    """Open a channel for a client. The row (status ``opening``) and the opening fee are committed
    *before* LND is asked, and LND stores the row's id as the channel's memo: a crash or a lost
    LND between the two leaves a row that ``resolve_opening`` matches to LND's channel (or fails
    and refunds), never a channel the database does not know. ``on_intent`` runs in that first
    transaction (the audit record)."""
    fee = validate_open(settings, pubkey=pubkey, capacity_sat=capacity_sat, push_sat=push_sat)
    if capacity_sat > MAX_FUNDING_SAT and not await _opens_large_channels(lnd):
        # Checked here, not after the fee is taken: LND would refuse it (a client would see the
        # refusal only after the fee and its refund went through its ledger).
        raise ValidationFailed(
            f"channelSize {capacity_sat} is above {MAX_FUNDING_SAT} sat, the largest channel the LSP's LND "
            "opens (it runs without --protocol.wumbo-channels)",
            field="body.channelSize",
        )
    await ensure_connected(lnd, pubkey, host)
    channel_id = new_id()
    with session_scope(sessions) as s:
        channel = Channel(
            id=channel_id,
            client_id=client_id,
            remote_pubkey=pubkey,
            capacity_sat=capacity_sat,
            push_sat=push_sat,
            private=private,
            opening_fee_sat=fee,
            status="opening",
        )
        s.add(channel)
        ledger.record(s, client_id, -fee, "channel_opening_fee", f"channel:{channel_id}")
        s.flush()
        if on_intent is not None:
            on_intent(s, channel)
    crash_point("channel.before_broadcast")
    try:
        cp = await lnd.open_channel(
            pubkey,
            capacity_sat,
            push_sat=push_sat,
            private=private,
            sat_per_vbyte=sat_per_vbyte,
            memo=memo_for(channel_id),
        )
    except LndError as exc:
        if not isinstance(exc, LndUnavailable):
            # LND refused (not enough funds, peer rejected, ...): the client's request cannot be met.
            with session_scope(sessions) as s:
                _fail_opening(s, channel_id, exc.message)
            raise ValidationFailed(f"LND refused to open the channel: {exc.message}") from None
        raise  # LND may have the channel: resolve_opening settles the row once LND answers
    crash_point("channel.after_broadcast")
    with session_scope(sessions) as s:
        row = s.get(Channel, channel_id)
        assert row is not None
        if row.status == "opening":  # (resolve_opening may have got there first)
            row.status, row.funding_txid, row.output_index = "pending", cp.funding_txid, cp.output_index
        s.flush()
        s.expunge(row)
    return row


def _fail_opening(session: Session, channel_id: str, reason: str) -> Channel | None:
    row = session.get(Channel, channel_id)
    if row is None or row.status != "opening":
        return None
    row.status = "failed"
    ledger.record(session, row.client_id, row.opening_fee_sat, "channel_opening_refund", f"channel:{channel_id}")
    log.info("channel %s failed to open (%s); opening fee refunded", channel_id, reason)
    return row


async def resolve_opening(
    lnd: LndClient, sessions: sessionmaker[Session], *, now: datetime | None = None, grace_s: float = OPENING_GRACE_S
) -> list[tuple[str, str]]:
    """Settle ``opening`` rows whose request is gone: LND's channel with the row's memo (open or
    pending) makes it pending/open with its funding outpoint; none means the open never happened,
    so the row fails and the fee is refunded. Returns (channel id, new status) per row settled."""
    cutoff = (now or utcnow()) - timedelta(seconds=grace_s)
    with session_scope(sessions) as s:
        stale = [c.id for c in s.scalars(select(Channel).where(Channel.status == "opening", Channel.created_at < cutoff))]
    if not stale:
        return []
    by_memo = await lnd.channel_points_by_memo()
    out: list[tuple[str, str]] = []
    with session_scope(sessions) as s:
        for cid in stale:
            point = by_memo.get(memo_for(cid))
            if point is None:
                if _fail_opening(s, cid, "LND has no channel with its memo") is not None:
                    out.append((cid, "failed"))
                continue
            row = s.get(Channel, cid)
            if row is None or row.status != "opening":
                continue
            txid, vout = point.rsplit(":", 1)
            # Pending with its outpoint: the next reconciliation moves it to open (with the event).
            row.funding_txid, row.output_index, row.status = txid, int(vout), "pending"
            out.append((cid, row.status))
    return out


def get_for_client(session: Session, client_id: str, channel_id: str) -> Channel:
    ch = session.get(Channel, channel_id)
    if ch is None or ch.client_id != client_id:
        raise NotFound(f"no channel {channel_id}")
    return ch


def closable(session: Session, client_id: str, channel_id: str) -> Channel:
    """The client's channel, if it can be closed now (409 naming why not)."""
    channel = get_for_client(session, client_id, channel_id)
    if channel.status in ("closing", "closed"):
        raise Conflict(f"channel {channel.id} is already {channel.status}")
    if channel.channel_point is None:
        raise Conflict(f"channel {channel.id} has no funding outpoint yet")
    return channel


def mark_closing(session: Session, channel_id: str, closing_txid: str) -> Channel:
    """LND published the close: the channel is closing (the watcher marks it closed)."""
    channel = session.get_one(Channel, channel_id)
    channel.closing_txid = closing_txid
    channel.status = "closing"
    return channel


CHANNEL_AUDIT = {"channel_opened": "channel.opened", "channel_closed": "channel.closed"}  # event -> audit action


def apply_lnd_state(session: Session, *, open_chans: list[Any], closed: list[Any]) -> list[tuple[str, Channel]]:
    """Reconcile our channel rows with LND's lists; returns (event_type, channel) for each transition."""
    by_point = {
        c.channel_point: c
        for c in session.scalars(select(Channel).where(Channel.status.in_(("pending", "open", "closing"))))
    }
    transitions: list[tuple[str, Channel]] = []
    for c in open_chans:
        ch = by_point.get(c.channel_point)
        if ch is not None and ch.status == "pending":
            ch.status, ch.chan_id = "open", int(c.chan_id)
            transitions.append(("channel_opened", ch))
    for c in closed:
        ch = by_point.get(c.channel_point)
        if ch is not None and ch.status != "closed":
            ch.status = "closed"
            ch.closing_txid = c.closing_tx_hash or ch.closing_txid
            transitions.append(("channel_closed", ch))
    for kind, ch in transitions:  # audited with the change (the events go out after the commit)
        audit.record_system(session, CHANNEL_AUDIT[kind], ch.client_id, ch.id, channel_data(ch))
    return transitions


async def reconcile(lnd: LndClient, session: Session) -> list[tuple[str, Channel]]:
    return apply_lnd_state(
        session,
        open_chans=await lnd.list_channels(),
        closed=await lnd.closed_channels(),
    )


def list_for_client(session: Session, client_id: str, *, status: str | None = None) -> list[Channel]:
    """The client's channels, newest first."""
    q = select(Channel).where(Channel.client_id == client_id)
    if status is not None:
        q = q.where(Channel.status == status)
    return list(session.scalars(q.order_by(Channel.created_at.desc(), Channel.id)))


class LspChannelBalance(CamelModel):
    local_balance: int
    remote_balance: int
    pending_open_local_balance: int


class ChannelsBalanceView(CamelModel):
    channels: dict[str, int] = Field(description="the client's channels by status")
    open_capacity: int
    pending_capacity: int
    lsp: LspChannelBalance | None = Field(default=None, description="the LSP node's channel balance (LND connected)")


def summary_for_client(session: Session, client_id: str) -> ChannelsBalanceView:
    """The client's channels by status and capacity (``lsp`` is the API's to fill in from LND)."""
    chans = list(session.scalars(select(Channel).where(Channel.client_id == client_id)))
    counts: dict[str, int] = {}
    for ch in chans:
        counts[ch.status] = counts.get(ch.status, 0) + 1
    return ChannelsBalanceView(
        channels=counts,
        open_capacity=sum(c.capacity_sat for c in chans if c.status == "open"),
        pending_capacity=sum(c.capacity_sat for c in chans if c.status == "pending"),
    )
