"""Channel graph model: directed channels with their forwarding policies.

A Lightning channel is one funding output but two forwarding directions, each with its own
policy (fees, CLTV delta, HTLC limits, enabled flag). The router works on directions, so the
graph stores one ``Channel`` per direction and keeps a numpy view of the same data because
the planners touch every edge on each payment and a Python loop over ~120k directions is
too slow for interactive planning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Channel:
    """One forwarding direction of a channel: ``source`` forwards to ``dest``."""

    scid: str
    source: str
    dest: str
    capacity_sat: int
    base_fee_msat: int = 0
    fee_rate_ppm: int = 0
    cltv_delta: int = 40
    htlc_min_msat: int = 1
    htlc_max_msat: int | None = None
    enabled: bool = True

    @property
    def capacity_msat(self) -> int:
        return self.capacity_sat * 1000

    @property
    def max_forward_msat(self) -> int:
        """Largest single HTLC this direction accepts by policy (not by liquidity)."""
        if self.htlc_max_msat is None:
            return self.capacity_msat
        return min(self.htlc_max_msat, self.capacity_msat)

    @property
    def key(self) -> tuple[str, str]:
        # scid alone is ambiguous: both directions share it.
        return (self.scid, self.source)


@dataclass(slots=True)
class ChannelGraph:
    """Directed channel graph with a cached array view.

    ``local_balances_msat`` holds certain knowledge about our own channels: the amount we
    (``self_node``) can send through each of our outgoing directions right now.
    """

    channels: list[Channel] = field(default_factory=list)
    self_node: str | None = None
    local_balances_msat: dict[tuple[str, str], int] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_channels(
        cls,
        channels: Iterable[Channel],
        *,
        self_node: str | None = None,
        local_balances_msat: Mapping[tuple[str, str], int] | None = None,
    ) -> ChannelGraph:
        return cls(list(channels), self_node, dict(local_balances_msat or {}))

    @classmethod
    def from_dicts(cls, rows: Iterable[Mapping[str, Any]], **kwargs: Any) -> ChannelGraph:
        """Build from plain dicts whose keys are ``Channel`` field names (e.g. from a DB)."""
        return cls.from_channels((Channel(**dict(r)) for r in rows), **kwargs)

    def add(self, channel: Channel) -> None:
        self.channels.append(channel)
        self._cache.clear()

    def set_local_balance(self, scid: str, source: str, balance_msat: int) -> None:
        self.local_balances_msat[(scid, source)] = balance_msat

    # --- array view -------------------------------------------------------------------------

    def _arrays(self) -> dict[str, Any]:
        if "arrays" in self._cache:
            return self._cache["arrays"]  # type: ignore[no-any-return]
        nodes: dict[str, int] = {}
        for ch in self.channels:
            nodes.setdefault(ch.source, len(nodes))
            nodes.setdefault(ch.dest, len(nodes))
        n = len(self.channels)
        arr: dict[str, Any] = {
            "nodes": nodes,
            "node_names": list(nodes),
            "src": np.fromiter((nodes[c.source] for c in self.channels), np.int64, n),
            "dst": np.fromiter((nodes[c.dest] for c in self.channels), np.int64, n),
            "capacity_msat": np.fromiter((c.capacity_msat for c in self.channels), np.float64, n),
            "max_forward_msat": np.fromiter((c.max_forward_msat for c in self.channels), np.float64, n),
            "htlc_min_msat": np.fromiter((c.htlc_min_msat for c in self.channels), np.float64, n),
            "base_fee_msat": np.fromiter((c.base_fee_msat for c in self.channels), np.float64, n),
            "fee_rate_ppm": np.fromiter((c.fee_rate_ppm for c in self.channels), np.float64, n),
            "cltv_delta": np.fromiter((c.cltv_delta for c in self.channels), np.float64, n),
            "enabled": np.fromiter((c.enabled for c in self.channels), np.bool_, n),
            "index": {c.key: i for i, c in enumerate(self.channels)},
        }
        # Reverse direction of each channel (same scid, swapped ends), -1 if unknown: what we
        # learn about one direction constrains the other (liquidity sums to the capacity).
        rev = np.full(n, -1, np.int64)
        for i, c in enumerate(self.channels):
            rev[i] = arr["index"].get((c.scid, c.dest), -1)
        arr["reverse"] = rev
        self._cache["arrays"] = arr
        return arr

    @property
    def node_index(self) -> dict[str, int]:
        return self._arrays()["nodes"]  # type: ignore[no-any-return]

    @property
    def node_names(self) -> list[str]:
        return self._arrays()["node_names"]  # type: ignore[no-any-return]

    def array(self, name: str) -> Any:
        """Numpy column ``name`` (src, dst, capacity_msat, fee_rate_ppm, ...) over ``channels``."""
        return self._arrays()[name]

    def edge_index(self, scid: str, source: str) -> int:
        return self._arrays()["index"][(scid, source)]  # type: ignore[no-any-return]

    def reverse_index(self, idx: int) -> int:
        return int(self._arrays()["reverse"][idx])

    def __len__(self) -> int:
        return len(self.channels)

    @property
    def node_count(self) -> int:
        return len(self.node_index)


def _policy_channel(
    edge: Mapping[str, Any], policy: Mapping[str, Any] | None, source: str, dest: str
) -> Channel | None:
    # LND reports a missing policy as null when the peer never announced that direction:
    # such a direction cannot be routed through.
    if not policy:
        return None
    max_htlc = policy.get("max_htlc_msat")
    return Channel(
        scid=str(edge["channel_id"]),
        source=source,
        dest=dest,
        capacity_sat=int(edge.get("capacity", 0)),
        base_fee_msat=int(policy.get("fee_base_msat", 0)),
        fee_rate_ppm=int(policy.get("fee_rate_milli_msat", 0)),
        cltv_delta=int(policy.get("time_lock_delta", 40)),
        htlc_min_msat=int(policy.get("min_htlc", 1) or 1),
        htlc_max_msat=int(max_htlc) if max_htlc not in (None, "", "0", 0) else None,
        enabled=not bool(policy.get("disabled", False)),
    )


def from_lnd_describe_graph(
    data: Mapping[str, Any],
    *,
    self_node: str | None = None,
    local_balances_msat: Mapping[tuple[str, str], int] | None = None,
) -> ChannelGraph:
    """Adapter for the JSON of ``lncli describegraph`` (int64 fields arrive as strings)."""
    channels: list[Channel] = []
    for edge in data.get("edges", []):
        n1, n2 = edge["node1_pub"], edge["node2_pub"]
        for ch in (
            _policy_channel(edge, edge.get("node1_policy"), n1, n2),
            _policy_channel(edge, edge.get("node2_policy"), n2, n1),
        ):
            if ch is not None:
                channels.append(ch)
    return ChannelGraph.from_channels(channels, self_node=self_node, local_balances_msat=local_balances_msat)
