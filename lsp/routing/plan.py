"""What a planner returns: payment parts with their routes, and the typed planning errors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from lsp.routing.fees import RouteAmounts, route_amounts
from lsp.routing.graph import Channel


class RoutingError(Exception):
    """Base class for routing failures the caller can handle."""


class NoRouteError(RoutingError):
    """No route (or combination of routes) can carry the amount under current knowledge."""

    def __init__(self, source: str, target: str, amount_msat: int, reason: str) -> None:
        super().__init__(f"no route {source} -> {target} for {amount_msat} msat: {reason}")
        self.source = source
        self.target = target
        self.amount_msat = amount_msat
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PaymentPart:
    """One HTLC: ``amount_msat`` delivered to the recipient over ``route``."""

    route: tuple[Channel, ...]
    amount_msat: int
    probability: float
    amounts: RouteAmounts

    @classmethod
    def build(cls, route: Sequence[Channel], amount_msat: int, probability: float) -> PaymentPart:
        return cls(tuple(route), amount_msat, probability, route_amounts(route, amount_msat))

    @property
    def fee_msat(self) -> int:
        return self.amounts.fee_msat

    @property
    def hops(self) -> int:
        return len(self.route)


@dataclass(frozen=True, slots=True)
class PaymentPlan:
    parts: tuple[PaymentPart, ...]
    planning_ms: float = 0.0
    info: dict[str, float] = field(default_factory=dict)

    @property
    def amount_msat(self) -> int:
        return sum(p.amount_msat for p in self.parts)

    @property
    def fee_msat(self) -> int:
        return sum(p.fee_msat for p in self.parts)

    @property
    def probability(self) -> float:
        # Parts are treated as independent; shared channels were already conditioned on the
        # earlier parts' amounts when each part's probability was computed.
        return math.prod(p.probability for p in self.parts)

    @property
    def expected_fraction(self) -> float:
        """Expected share of the amount this plan delivers. Parts that arrive are kept (the
        recipient holds them) and only the rest is retried, so with retries this measures an
        attempt's progress better than ``probability``, the chance that every part arrives."""
        amount = self.amount_msat
        return sum(p.amount_msat * p.probability for p in self.parts) / amount if amount else 0.0
