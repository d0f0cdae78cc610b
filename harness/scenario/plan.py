"""Seeded draws: which payments a step makes, in which order, for how much.

Everything random in a replay comes from here and depends only on the
scenario's seed and the step's index, so the same seed gives the same
amounts, payers, payees, memos and client data in the same order, whatever
ran before and whatever the machine. Each step gets its own generator
(seeded with ``"<seed>/<index>"``): inserting a step leaves the draws of the
other steps alone.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from harness.scenario.model import KeysendStep, LogNormal, PayStep, Scenario, Uniform


@dataclass(frozen=True)
class PlannedPayment:
    payer: str
    payee: str
    amount_sat: int
    memo: str
    client_data: dict[str, Any] = field(default_factory=dict)


def step_rng(seed: int, index: int) -> random.Random:
    # A str seed is hashed with SHA-512 by random.Random: stable across runs
    # and Python processes (unlike hash()).
    return random.Random(f"{seed}/{index}")


def draw_amount(amount: int | Uniform | LogNormal, rng: random.Random) -> int:
    if isinstance(amount, int):
        return amount
    if isinstance(amount, Uniform):
        return rng.randint(amount.low, amount.high)
    value = round(rng.lognormvariate(math.log(amount.median), amount.sigma))
    value = max(amount.min, value)
    if amount.max is not None:
        value = min(amount.max, value)
    return value


def _pick(ref: str | list[str], rng: random.Random, exclude: str | None = None) -> str:
    if isinstance(ref, str):
        return ref
    choices = [x for x in ref if x != exclude] or list(ref)
    return rng.choice(choices)


def plan_payments(seed: int, index: int, step: PayStep | KeysendStep) -> list[PlannedPayment]:
    rng = step_rng(seed, index)
    fake = Faker()
    fake.seed_instance(rng.getrandbits(32))
    out = []
    for n in range(step.count):
        payer = _pick(step.from_, rng)
        payee = _pick(step.to, rng, exclude=payer)
        amount = draw_amount(step.amount_sat, rng)
        memo = f"{fake.catch_phrase()} #{n + 1}"[:100]
        client = {
            "customer": fake.name(),
            "email": fake.email(),
            "order_id": fake.bothify("ORD-####-????").upper(),
            "city": fake.city(),
        }
        out.append(PlannedPayment(payer, payee, amount, memo, client))
    return out


def plan_scenario(sc: Scenario) -> dict[int, list[PlannedPayment]]:
    """The payments of every pay/keysend step, by step index."""
    return {i: plan_payments(sc.seed, i, s) for i, s in enumerate(sc.steps) if isinstance(s, PayStep | KeysendStep)}
