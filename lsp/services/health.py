"""The operator's view of the LSP node's channels: inactive peers, stuck HTLCs, and each channel's
local share against LSP_REBALANCE_THRESHOLD (below it the LSP can hardly pay that peer; above
1 - threshold the peer can hardly pay the LSP)."""

from __future__ import annotations

from typing import Any

from lncore.lnd.client import LndClient

# An HTLC this close to its expiry is stuck: its channel will be force-closed to claim it on chain.
STUCK_WITHIN_BLOCKS = 20


def channel_health(ch: Any, height: int, threshold: float) -> dict[str, Any]:
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
    return {
        "chanId": str(ch.chan_id),
        "channelPoint": ch.channel_point,
        "remotePubkey": ch.remote_pubkey,
        "active": bool(ch.active),
        "capacity": int(ch.capacity),
        "localBalance": local,
        "remoteBalance": remote,
        "localRatio": round(ratio, 4),
        "pendingHtlcs": len(htlcs),
        "stuckHtlcs": len(stuck),
        "needsRebalance": needs,
    }


async def node_health(lnd: LndClient, threshold: float) -> dict[str, Any]:
    info = await lnd.get_info()
    height = int(info.block_height)
    chans = [channel_health(c, height, threshold) for c in await lnd.list_channels()]
    inactive = sorted({c["remotePubkey"] for c in chans if not c["active"]})
    return {
        "blockHeight": height,
        "syncedToChain": bool(info.synced_to_chain),
        "rebalanceThreshold": threshold,
        "channels": chans,
        "inactivePeers": inactive,
        "stuckHtlcs": sum(c["stuckHtlcs"] for c in chans),
        "pendingHtlcs": sum(c["pendingHtlcs"] for c in chans),
        "needingRebalance": [c["chanId"] for c in chans if c["needsRebalance"]],
        "status": "degraded" if inactive or any(c["stuckHtlcs"] for c in chans) else "ok",
    }
