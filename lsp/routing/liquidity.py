"""Liquidity model: what we believe about the spendable balance of every channel direction.

The unknown liquidity ``X`` of a direction with capacity ``c`` is a random variable on
``[0, c]``. We keep, per direction we have learned something about, the interval
``lower <= X < upper`` (successes and failures shrink it) plus the amount we currently have
in flight through it. The success probability of forwarding ``a`` msat is then
``P(X >= a + inflight | lower <= X < upper)`` under a prior density:

* ``uniform``: flat density, the model of Pickhardt & Richter (arXiv 2107.05322).
* ``bimodal``: LND's ``BimodalEstimator`` density ``exp(-x/s) + exp((x-c)/s) + 1/c``: most
  channels are depleted to one side; the ``1/c`` floor keeps contradictory observations from
  zeroing the normalisation (LND does the same).

Knowledge decays back to the prior with a half-life, because balances move all the time
and a failure an hour ago says little about now.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from lsp.routing.graph import Channel, ChannelGraph, FloatArray

DEFAULT_BIMODAL_SCALE_MSAT = 300_000_000
DEFAULT_HALF_LIFE_S = 3600.0


class Prior(StrEnum):
    UNIFORM = "uniform"
    BIMODAL = "bimodal"


@dataclass(slots=True)
class Knowledge:
    """Learned bounds for one direction; ``upper_msat`` is exclusive, ``None`` means capacity."""

    lower_msat: int = 0
    upper_msat: int | None = None
    inflight_msat: int = 0
    updated_at: float = 0.0


def _bimodal_primitive(c: FloatArray, x: FloatArray, s: float) -> FloatArray:
    # Antiderivative of exp(-x/s) + exp((x-c)/s) + 1/c divided by s; the common factor s and
    # the normalisation cancel in the ratio of two integrals.
    return -np.exp(-x / s) + np.exp((x - c) / s) + x / (c * s)


def success_probability_array(
    prior: Prior,
    capacity_msat: FloatArray,
    lower_msat: FloatArray,
    upper_msat: FloatArray,
    amount_msat: FloatArray,
    scale_msat: float = DEFAULT_BIMODAL_SCALE_MSAT,
) -> FloatArray:
    """Vectorised ``P(X >= amount | lower <= X < upper)``; ``amount`` already includes in-flight."""
    c = np.maximum(np.asarray(capacity_msat, np.float64), 1.0)
    upper = np.minimum(np.asarray(upper_msat, np.float64), c + 1.0)
    lower = np.minimum(np.asarray(lower_msat, np.float64), upper)
    a = np.asarray(amount_msat, np.float64)
    a_b, lower_b, upper_b, c_b = np.broadcast_arrays(a, lower, upper, c)
    mid = (a_b > lower_b) & (a_b < upper_b)
    out = np.where(a_b <= lower_b, 1.0, 0.0)
    if not mid.any():
        return out
    am, lo, up, cm = a_b[mid], lower_b[mid], upper_b[mid], c_b[mid]
    if prior is Prior.UNIFORM:
        p = (up - am) / (up - lo)
    else:
        s = float(scale_msat)
        # Clamp to the support so the +1 msat exclusive upper bound never leaves [0, c].
        up_c = np.minimum(up, cm)
        h_up = _bimodal_primitive(cm, up_c, s)
        num = h_up - _bimodal_primitive(cm, np.minimum(am, up_c), s)
        den = h_up - _bimodal_primitive(cm, lo, s)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(den > 0, num / den, 0.0)
    out[mid] = np.clip(p, 0.0, 1.0)
    return out


def _upper(k: Knowledge, channel: Channel) -> int:
    return channel.capacity_msat + 1 if k.upper_msat is None else k.upper_msat


class LiquidityModel:
    """Per-direction liquidity beliefs, keyed by ``(scid, source)``; serialisable to dicts."""

    def __init__(
        self,
        prior: Prior | str = Prior.BIMODAL,
        *,
        scale_msat: float = DEFAULT_BIMODAL_SCALE_MSAT,
        half_life_s: float = DEFAULT_HALF_LIFE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prior = Prior(prior)
        self.scale_msat = float(scale_msat)
        self.half_life_s = float(half_life_s)
        self.clock = clock
        self.knowledge: dict[tuple[str, str], Knowledge] = {}

    # --- bounds --------------------------------------------------------------------------

    def _decay_factor(self, k: Knowledge, now: float) -> float:
        if self.half_life_s <= 0 or now <= k.updated_at:
            return 1.0
        return float(0.5 ** ((now - k.updated_at) / self.half_life_s))

    def bounds(self, channel: Channel, now: float | None = None) -> tuple[float, float, float]:
        """``(lower, upper, inflight)`` in msat after decay; upper is exclusive."""
        cap = float(channel.capacity_msat)
        k = self.knowledge.get(channel.key)
        if k is None:
            return 0.0, cap + 1.0, 0.0
        f = self._decay_factor(k, self.clock() if now is None else now)
        upper = cap + 1.0 if k.upper_msat is None else float(k.upper_msat)
        # Lower bound relaxes toward 0 and upper toward capacity: the interval widens back
        # to the prior's support as the observation ages.
        return k.lower_msat * f, (cap + 1.0) - ((cap + 1.0) - upper) * f, float(k.inflight_msat)

    def probability(self, channel: Channel, amount_msat: float, now: float | None = None) -> float:
        lower, upper, inflight = self.bounds(channel, now)
        p = success_probability_array(
            self.prior,
            np.array([channel.capacity_msat], np.float64),
            np.array([lower]),
            np.array([upper]),
            np.array([amount_msat + inflight], np.float64),
            self.scale_msat,
        )
        return float(p[0])

    def arrays(self, graph: ChannelGraph, now: float | None = None) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Bounds for every direction of ``graph`` as arrays, including certain local balances."""
        cap = graph.array("capacity_msat")
        lower = np.zeros(len(graph))
        upper = cap + 1.0
        inflight = np.zeros(len(graph))
        t = self.clock() if now is None else now
        for key, _k in self.knowledge.items():
            idx = graph.array("index").get(key)
            if idx is None:
                continue
            lo, up, fl = self.bounds(graph.channels[idx], t)
            lower[idx], upper[idx], inflight[idx] = lo, up, fl
        for key, bal in graph.local_balances_msat.items():
            idx = graph.array("index").get(key)
            if idx is not None:
                # Our own balance is known exactly: X == bal, minus what we already locked.
                lower[idx], upper[idx] = float(bal), float(bal) + 1.0
        return lower, upper, inflight

    # --- learning ------------------------------------------------------------------------

    def _touch(self, channel: Channel, now: float) -> Knowledge:
        k = self.knowledge.get(channel.key)
        if k is None:
            k = self.knowledge[channel.key] = Knowledge(updated_at=now)
            return k
        # Fold decay into the stored values so a fresh observation restarts the clock.
        lower, upper, _ = self.bounds(channel, now)
        k.lower_msat = math.floor(lower)
        cap = channel.capacity_msat
        k.upper_msat = None if upper >= cap + 1 else math.ceil(upper)
        k.updated_at = now
        return k

    def learn_success(self, channel: Channel, amount_msat: int, reverse: Channel | None = None) -> None:
        """``channel`` forwarded ``amount_msat`` (beyond what was in flight): ``X >= amount``."""
        now = self.clock()
        k = self._touch(channel, now)
        need = amount_msat + k.inflight_msat
        k.lower_msat = max(k.lower_msat, need)
        if k.upper_msat is not None and k.upper_msat <= k.lower_msat:
            k.upper_msat = k.lower_msat + 1
        if reverse is not None:
            r = self._touch(reverse, now)
            r.upper_msat = min(_upper(r, reverse), channel.capacity_msat - need + 1)
            r.lower_msat = min(r.lower_msat, r.upper_msat - 1)

    def learn_failure(self, channel: Channel, amount_msat: int, reverse: Channel | None = None) -> None:
        """``channel`` could not forward ``amount_msat`` on top of in-flight: ``X < amount``."""
        now = self.clock()
        k = self._touch(channel, now)
        limit = amount_msat + k.inflight_msat
        k.upper_msat = min(_upper(k, channel), limit)
        # A contradiction means the balance moved; trust the newest observation.
        k.lower_msat = min(k.lower_msat, max(k.upper_msat - 1, 0))
        if reverse is not None:
            r = self._touch(reverse, now)
            r.lower_msat = max(r.lower_msat, channel.capacity_msat - limit + 1)
            if r.upper_msat is not None and r.upper_msat <= r.lower_msat:
                r.upper_msat = r.lower_msat + 1

    def add_inflight(self, channel: Channel, amount_msat: int) -> None:
        k = self.knowledge.get(channel.key)
        if k is None:
            k = self.knowledge[channel.key] = Knowledge(updated_at=self.clock())
        k.inflight_msat += amount_msat

    def remove_inflight(self, channel: Channel, amount_msat: int) -> None:
        k = self.knowledge.get(channel.key)
        if k is not None:
            k.inflight_msat = max(0, k.inflight_msat - amount_msat)

    # --- persistence ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "prior": self.prior.value,
            "scale_msat": self.scale_msat,
            "half_life_s": self.half_life_s,
            "channels": [{"scid": s, "source": src, **asdict(k)} for (s, src), k in self.knowledge.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, clock: Callable[[], float] = time.time) -> LiquidityModel:
        m = cls(data["prior"], scale_msat=data["scale_msat"], half_life_s=data["half_life_s"], clock=clock)
        for row in data.get("channels", []):
            m.knowledge[(row["scid"], row["source"])] = Knowledge(
                lower_msat=int(row["lower_msat"]),
                upper_msat=None if row["upper_msat"] is None else int(row["upper_msat"]),
                inflight_msat=int(row["inflight_msat"]),
                updated_at=float(row["updated_at"]),
            )
        return m


def settle(model: LiquidityModel, channel: Channel, amount_msat: int, reverse: Channel | None = None) -> None:
    """``amount_msat`` moved across ``channel`` for good (a payment settled): shift the bounds.

    What we knew about the balance before the payment, minus what it carried, is what we know
    after: both bounds move down on this direction and up on the reverse one."""
    now = model.clock()
    k = model._touch(channel, now)
    k.lower_msat = max(0, k.lower_msat - amount_msat)
    if k.upper_msat is not None:
        k.upper_msat = max(1, k.upper_msat - amount_msat)
    if reverse is not None:
        r = model._touch(reverse, now)
        r.lower_msat = min(reverse.capacity_msat, r.lower_msat + amount_msat)
        if r.upper_msat is not None:
            up = r.upper_msat + amount_msat
            r.upper_msat = None if up >= reverse.capacity_msat + 1 else up
