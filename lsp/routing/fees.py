"""Forwarding fees along a route, in msat, rounded exactly like BOLT 7 / LND.

A hop charges ``base_fee_msat + amt * fee_rate_ppm // 1_000_000`` on the amount it forwards
to the next hop. The sender pays every hop except the first (its own channel), so amounts are
built backwards from the recipient: each hop must receive what it forwards plus its fee.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lsp.routing.graph import Channel


def hop_fee_msat(channel: Channel, forward_msat: int) -> int:
    """Fee ``channel.source`` charges to forward ``forward_msat`` over ``channel``."""
    return channel.base_fee_msat + forward_msat * channel.fee_rate_ppm // 1_000_000


@dataclass(frozen=True, slots=True)
class RouteAmounts:
    """``hop_amounts_msat[i]`` is what travels over ``route[i]``; the last equals the payment."""

    hop_amounts_msat: tuple[int, ...]
    fee_msat: int
    total_cltv_delta: int

    @property
    def sent_msat(self) -> int:
        return self.hop_amounts_msat[0] if self.hop_amounts_msat else 0


def route_amounts(route: Sequence[Channel], amount_msat: int) -> RouteAmounts:
    """Amounts per hop for delivering ``amount_msat`` through ``route`` (first hop is ours).

    The fee of hop ``i`` (i >= 1) is charged by ``route[i].source`` on the amount it forwards
    over ``route[i]``, and must travel over ``route[i - 1]``. The first hop pays no fee: the
    sender does not charge itself. Its CLTV delta is likewise not added.
    """
    if not route:
        return RouteAmounts((), 0, 0)
    amounts = [0] * len(route)
    amounts[-1] = amount_msat
    cltv = 0
    for i in range(len(route) - 1, 0, -1):
        amounts[i - 1] = amounts[i] + hop_fee_msat(route[i], amounts[i])
        cltv += route[i].cltv_delta
    return RouteAmounts(tuple(amounts), amounts[0] - amount_msat, cltv)
