"""The channel manager: open channels to clients (validated, fee charged), track them
pending -> open -> closing -> closed from LND's state, and close them on request."""

from __future__ import annotations

import logging
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from lsp.config import Settings
from lsp.db.models import Channel
from lsp.errors import Conflict, LndError, LndUnavailable, NotFound, ValidationFailed
from lsp.lnd.client import LndClient
from lsp.services import ledger

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


def validate_open(settings: Settings, *, pubkey: str, capacity_sat: int, push_sat: int) -> int:
    """Everything checkable without LND; returns the opening fee (the seed's base + capacity fee)."""
    if not is_valid_pubkey(pubkey):
        raise ValidationFailed(
            "clientPubkey must be a 33-byte compressed secp256k1 public key in hex", field="body.clientPubkey"
        )
    if capacity_sat < settings.min_channel_size:
        raise ValidationFailed(
            f"channelSize {capacity_sat} is below the minimum {settings.min_channel_size} sat", field="body.channelSize"
        )
    if capacity_sat > settings.max_channel_size:
        raise ValidationFailed(
            f"channelSize {capacity_sat} is above the maximum {settings.max_channel_size} sat", field="body.channelSize"
        )
    if push_sat >= capacity_sat:
        raise ValidationFailed("pushAmount must be smaller than channelSize", field="body.pushAmount")
    return settings.opening_fee(capacity_sat)


async def open_channel(
    lnd: LndClient,
    session: Session,
    settings: Settings,
    client_id: str,
    *,
    pubkey: str,
    capacity_sat: int,
    push_sat: int = 0,
    private: bool = False,
    host: str | None = None,
    sat_per_vbyte: int | None = None,
) -> Channel:
    fee = validate_open(settings, pubkey=pubkey, capacity_sat=capacity_sat, push_sat=push_sat)
    peers = {p.pub_key for p in await lnd.list_peers()}
    if pubkey not in peers:
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
            raise ValidationFailed(
                f"cannot connect to {pubkey[:16]}... at {host}: {exc.message}", field="body.host"
            ) from None
    try:
        cp = await lnd.open_channel(
            pubkey, capacity_sat, push_sat=push_sat, private=private, sat_per_vbyte=sat_per_vbyte
        )
    except LndError as exc:
        if not isinstance(exc, LndUnavailable):
            # LND refused (not enough funds, peer rejected, ...): the client's request cannot be met.
            raise ValidationFailed(f"LND refused to open the channel: {exc.message}") from None
        raise
    channel = Channel(
        client_id=client_id,
        remote_pubkey=pubkey,
        capacity_sat=capacity_sat,
        push_sat=push_sat,
        private=private,
        opening_fee_sat=fee,
        status="pending",
        funding_txid=cp.funding_txid,
        output_index=cp.output_index,
    )
    session.add(channel)
    session.flush()
    ledger.record(session, client_id, -fee, "channel_opening_fee", f"channel:{channel.id}")
    return channel


def get_for_client(session: Session, client_id: str, channel_id: str) -> Channel:
    ch = session.get(Channel, channel_id)
    if ch is None or ch.client_id != client_id:
        raise NotFound(f"no channel {channel_id}")
    return ch


async def close_channel(lnd: LndClient, session: Session, channel: Channel, *, force: bool = False) -> Channel:
    if channel.status in ("closing", "closed"):
        raise Conflict(f"channel {channel.id} is already {channel.status}")
    if channel.channel_point is None:
        raise Conflict(f"channel {channel.id} has no funding outpoint yet")
    channel.closing_txid = await lnd.close_channel(channel.channel_point, force=force)
    channel.status = "closing"
    return channel


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


def summary_for_client(session: Session, client_id: str) -> dict[str, Any]:
    chans = list(session.scalars(select(Channel).where(Channel.client_id == client_id)))
    counts: dict[str, int] = {}
    for ch in chans:
        counts[ch.status] = counts.get(ch.status, 0) + 1
    return {
        "channels": counts,
        "openCapacity": sum(c.capacity_sat for c in chans if c.status == "open"),
        "pendingCapacity": sum(c.capacity_sat for c in chans if c.status == "pending"),
    }
