"""Liquidity model: success probabilities under both priors, conditioning, decay, persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp.routing.graph import Channel
from lsp.routing.liquidity import LiquidityModel, Prior, success_probability_array

pytestmark = pytest.mark.unit

CAP_SAT = 1_000_000
CAP = CAP_SAT * 1000


def chan(scid: str = "1x1x1", source: str = "A", dest: str = "B", cap_sat: int = CAP_SAT) -> Channel:
    return Channel(scid, source, dest, cap_sat)


def p(prior: Prior, amount: float, lower: float = 0.0, upper: float = CAP + 1.0, s: float = 300_000_000) -> float:
    return float(
        success_probability_array(prior, np.array([CAP]), np.array([lower]), np.array([upper]), np.array([amount]), s)[
            0
        ]
    )


@pytest.mark.parametrize("prior", list(Prior))
def test_probability_is_one_at_zero_and_zero_above_capacity(prior: Prior) -> None:
    assert p(prior, 0) == 1.0
    assert p(prior, CAP + 1) == 0.0
    assert p(prior, 2 * CAP) == 0.0


def test_uniform_matches_closed_form() -> None:
    # Pickhardt's uniform model: P(a) = (c + 1 - a) / (c + 1).
    assert p(Prior.UNIFORM, CAP / 4) == pytest.approx((CAP + 1 - CAP / 4) / (CAP + 1))


def test_bimodal_matches_numerical_integral_of_lnd_density() -> None:
    s, lo, up, a = 300_000_000.0, 100_000_000.0, 800_000_000.0, 400_000_000.0
    xs = np.linspace(0, CAP, 2_000_001)
    dens = np.exp(-xs / s) + np.exp((xs - CAP) / s) + 1 / CAP
    num = np.trapezoid(dens[(xs >= a) & (xs <= up)], xs[(xs >= a) & (xs <= up)])
    den = np.trapezoid(dens[(xs >= lo) & (xs <= up)], xs[(xs >= lo) & (xs <= up)])
    assert p(Prior.BIMODAL, a, lo, up, s) == pytest.approx(num / den, rel=1e-4)


def test_bimodal_is_more_pessimistic_than_uniform_for_mid_amounts() -> None:
    # Liquidity sits at the ends, so half the capacity is reachable only ~50 % of the time,
    # while small amounts are harder than under the uniform prior.
    assert p(Prior.BIMODAL, CAP * 0.1) < p(Prior.UNIFORM, CAP * 0.1)
    assert p(Prior.BIMODAL, CAP * 0.5) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("prior", list(Prior))
@settings(max_examples=60, deadline=None)
@given(
    lo_frac=st.floats(0, 0.9),
    width=st.floats(0.01, 1.0),
    amounts=st.lists(st.floats(0, 1.1), min_size=2, max_size=20),
)
def test_probability_monotone_decreasing_and_bounded(
    prior: Prior, lo_frac: float, width: float, amounts: list[float]
) -> None:
    lower = lo_frac * CAP
    upper = min(CAP + 1.0, lower + width * CAP + 1)
    xs = np.sort(np.array(amounts) * CAP)
    ps = success_probability_array(prior, np.full(len(xs), CAP), np.full(len(xs), lower), np.full(len(xs), upper), xs)
    assert np.all(np.diff(ps) <= 1e-12)
    assert np.all((ps >= 0) & (ps <= 1))
    assert np.all(ps[xs <= lower] == 1.0)
    assert np.all(ps[xs >= upper] == 0.0)


@pytest.mark.parametrize("prior", list(Prior))
def test_conditioning_on_success_and_failure(prior: Prior) -> None:
    m = LiquidityModel(prior, clock=lambda: 0.0)
    c = chan()
    before = m.probability(c, 300_000_000)
    m.learn_success(c, 200_000_000)
    assert m.probability(c, 200_000_000) == 1.0
    assert m.probability(c, 300_000_000) > before
    m.learn_failure(c, 600_000_000)
    assert m.probability(c, 600_000_000) == 0.0
    assert m.probability(c, 700_000_000) == 0.0
    assert 0.0 < m.probability(c, 400_000_000) < 1.0


def test_inflight_reduces_probability_and_is_released() -> None:
    m = LiquidityModel(Prior.UNIFORM, clock=lambda: 0.0)
    c = chan()
    base = m.probability(c, 100_000_000)
    m.add_inflight(c, 400_000_000)
    assert m.probability(c, 100_000_000) == pytest.approx(p(Prior.UNIFORM, 500_000_000))
    assert m.probability(c, 100_000_000) < base
    m.remove_inflight(c, 400_000_000)
    assert m.probability(c, 100_000_000) == pytest.approx(base)


def test_learning_one_direction_bounds_the_other() -> None:
    m = LiquidityModel(Prior.UNIFORM, clock=lambda: 0.0)
    fwd, rev = chan(source="A", dest="B"), chan(source="B", dest="A")
    m.learn_success(fwd, 700_000_000, reverse=rev)  # A side holds >= 700k sat
    assert m.probability(rev, 300_000_001) == 0.0  # so B side holds <= 300k sat
    m2 = LiquidityModel(Prior.UNIFORM, clock=lambda: 0.0)
    m2.learn_failure(fwd, 200_000_000, reverse=rev)  # A side < 200k sat
    assert m2.probability(rev, 800_000_001) == 1.0  # B side > 800k sat


def test_decay_relaxes_bounds_by_half_each_half_life() -> None:
    now = [0.0]
    m = LiquidityModel(Prior.UNIFORM, half_life_s=100.0, clock=lambda: now[0])
    c = chan()
    m.learn_success(c, 400_000_000)
    m.learn_failure(c, 600_000_001)
    assert m.bounds(c) == (400_000_000, 600_000_001, 0.0)
    now[0] = 100.0
    lo, up, _ = m.bounds(c)
    assert lo == pytest.approx(200_000_000)
    assert up == pytest.approx(CAP + 1 - (CAP + 1 - 600_000_001) / 2)
    now[0] = 10_000.0
    lo, up, _ = m.bounds(c)
    assert lo == pytest.approx(0, abs=1) and up == pytest.approx(CAP + 1, abs=1)
    assert m.probability(c, 300_000_000) == pytest.approx(p(Prior.UNIFORM, 300_000_000), abs=1e-6)


def test_serialisation_round_trip() -> None:
    m = LiquidityModel(Prior.BIMODAL, scale_msat=123_000, half_life_s=42.0, clock=lambda: 5.0)
    c = chan()
    m.learn_success(c, 100_000_000)
    m.learn_failure(c, 500_000_000)
    m.add_inflight(c, 10_000_000)
    data = m.to_dict()
    m2 = LiquidityModel.from_dict(data, clock=lambda: 5.0)
    assert m2.to_dict() == data
    assert m2.prior is Prior.BIMODAL and m2.scale_msat == 123_000
    assert math.isclose(m2.probability(c, 200_000_000), m.probability(c, 200_000_000))
