"""The operator's view of the LSP node's channels: inactive peers, stuck HTLCs, and each channel's
local share against LSP_REBALANCE_THRESHOLD (below it the LSP can hardly pay that peer; above
1 - threshold the peer can hardly pay the LSP)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lncore.lnd.client import LndClient
from lsp.schemas import CamelModel

# An HTLC this close to its expiry is stuck: its channel will be force-closed to claim it on chain.
STUCK_WITHIN_BLOCKS = 20


class ChannelHealth(CamelModel):
    chan_id: str = Field(description="LND's short channel id (decimal)")
    channel_point: str
    remote_pubkey: str
    active: bool
    capacity: int = Field(description="sats")
    local_balance: int = Field(description="sats")
    remote_balance: int = Field(description="sats")
    local_ratio: float = Field(description="local / (local + remote), 4 decimals; 0 for an empty channel")
    pending_htlcs: int
    stuck_htlcs: int = Field(description=f"HTLCs within {STUCK_WITHIN_BLOCKS} blocks of their expiry")
    needs_rebalance: Literal["outbound", "inbound"] | None = Field(
        description="outbound: the local ratio is under the threshold; inbound: over 1 - threshold"
    )


class NodeHealthView(CamelModel):
    block_height: int
    synced_to_chain: bool
    rebalance_threshold: float
    channels: list[ChannelHealth]
    inactive_peers: list[str] = Field(description="remote pubkeys with an inactive channel")
    stuck_htlcs: int
    pending_htlcs: int
    needing_rebalance: list[str] = Field(description="chanIds of the channels that need a rebalance")
    status: Literal["ok", "degraded"] = Field(description="degraded: an inactive peer or a stuck HTLC")


def channel_health(ch: Any, height: int, threshold: float) -> ChannelHealth:
    local, remote = int(ch.local_balance), int(ch.remote_balance)
    total = local + remote
    ratio = local / total if total else 0.0
    htlcs = list(ch.pending_htlcs)
    stuck = [h for h in htlcs if int(h.expiration_height) - height <= STUCK_WITHIN_BLOCKS]
    if ratio < threshold:
        needs = "outbound"  # the LSP cannot pay this peer much: bring liquidity in
    elif ratio > 1 - threshold:
        needs = "inbound"
    else:
        needs = None
    return ChannelHealth(
        chan_id=str(ch.chan_id),
        channel_point=ch.channel_point,
        remote_pubkey=ch.remote_pubkey,
        active=bool(ch.active),
        capacity=int(ch.capacity),
        local_balance=local,
        remote_balance=remote,
        local_ratio=round(ratio, 4),
        pending_htlcs=len(htlcs),
        stuck_htlcs=len(stuck),
        needs_rebalance=needs,
    )


async def node_health(lnd: LndClient, threshold: float) -> NodeHealthView:
    info = await lnd.get_info()
    height = int(info.block_height)
    chans = [channel_health(c, height, threshold) for c in await lnd.list_channels()]
    inactive = sorted({c.remote_pubkey for c in chans if not c.active})
    return NodeHealthView(
        block_height=height,
        synced_to_chain=bool(info.synced_to_chain),
        rebalance_threshold=threshold,
        channels=chans,
        inactive_peers=inactive,
        stuck_htlcs=sum(c.stuck_htlcs for c in chans),
        pending_htlcs=sum(c.pending_htlcs for c in chans),
        needing_rebalance=[c.chan_id for c in chans if c.needs_rebalance],
        status="degraded" if inactive or any(c.stuck_htlcs for c in chans) else "ok",
    )
