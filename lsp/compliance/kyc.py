"""KYC: each client's verification state and tier, and the limits every money-moving endpoint enforces.

States: pending -> approved | rejected; approved -> suspended; suspended -> approved | rejected;
rejected -> pending (the client re-submits). Only admins change states (``POST
/api/admin/clients/{id}/kyc``); every change is in the audit trail.

What is enforced where (each refusal is a 403 whose code and message say why):

* ``POST /api/payments/send``: state approved; amount <= tier per-payment limit; today's and
  this month's outgoing volume (in-flight + succeeded, UTC calendar day / month) + amount
  <= the tier's daily / monthly limits; destination not on the deny list. Checked under the
  client's row lock together with the balance, so concurrent payments cannot overshoot.
* ``POST /api/channels/open``: state approved; capacity <= tier channel limit.
* ``POST /api/liquidity/request``: state approved; amount <= tier channel limit.
* ``POST /api/invoices/create``: state approved; amount <= tier per-payment limit. Receiving is
  money movement too: a suspended client must not keep taking funds in.
* ``POST /api/swaps/submarine`` and ``/reverse``: state approved; amount within the per-payment
  limit and, with the day's and month's volume (payments and swaps), the volume limits. A
  swap-in whose client is no longer approved when its lockup confirms is not paid (the client
  refunds after the timeout).
* ``POST /api/channels/rebalance``: state approved; amount <= tier channel limit.
* LSPS1/LSPS2 over ``/api/lsps`` (channel purchases, JIT buys): state approved.

A client onboarded without a profile gets ``LSP_KYC_INITIAL_STATE`` (default: approved at the
default tier on regtest, so the lab works out of the box; pending on every other network).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from pydantic import Field
from sqlalchemy import BindParameter, Select, Table, bindparam, case, func, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from lsp.compliance import audit
from lsp.compliance.policy import Policy, Tier, load_policy
from lsp.config import Settings
from lsp.db.base import session_scope, utcnow
from lsp.db.models import Client, Payment
from lsp.db.models_compliance import KycProfile
from lsp.errors import Conflict, Forbidden, NotFound, ValidationFailed
from lsp.schemas import CamelModel, IsoTime


class DeniedDestination(Forbidden):
    """A payment to a node on the deny list (the API also raises an alert for the attempt)."""

    def __init__(self, destination: str, amount_sat: int):
        super().__init__(
            f"payments to node {destination} are not allowed (deny list)",
            code="denied_destination",
            field="body.invoice",
        )
        self.destination = destination
        self.amount_sat = amount_sat


KycState = Literal["pending", "approved", "rejected", "suspended"]
STATES: tuple[str, ...] = get_args(KycState)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("approved", "rejected"),
    "approved": ("suspended",),
    "suspended": ("approved", "rejected"),
    "rejected": ("pending",),
}


def policy_of(settings: Settings) -> Policy:
    return load_policy(settings.compliance_config_path)


def initial_state(settings: Settings) -> str:
    if settings.kyc_initial_state is not None:
        return settings.kyc_initial_state
    return "approved" if settings.network == "regtest" else "pending"


def get_profile(session: Session, settings: Settings, client_id: str) -> KycProfile:
    """The client's profile, created with the initial state the first time it is needed."""
    prof = session.get(KycProfile, client_id)
    if prof is None:
        if session.get(Client, client_id) is None:
            raise NotFound(f"no client {client_id}")
        prof = KycProfile(client_id=client_id, state=initial_state(settings), tier=policy_of(settings).default_tier, fields="{}")
        session.add(prof)
        session.flush()
    return prof


class KycLimits(CamelModel):
    """The tier's limits, in sats."""

    per_payment: int
    daily_volume: int
    monthly_volume: int
    max_channel: int


class KycView(CamelModel):
    client_id: str
    state: KycState
    tier: str
    fields: dict[str, Any] = Field(description="what the client supplied (free-form)")
    missing_fields: list[str] = Field(description="fields the tier requires that are still empty")
    reason: str | None
    limits: KycLimits
    updated_at: IsoTime | None


class KycQueueItem(KycView):
    name: str = Field(description="the client's name")


def view(prof: KycProfile, policy: Policy) -> KycView:
    tier = policy.tier(prof.tier)
    fields = json.loads(prof.fields or "{}")
    return KycView(
        client_id=prof.client_id,
        state=prof.state,
        tier=prof.tier,
        fields=fields,
        missing_fields=[f for f in tier.required_fields if not fields.get(f)],
        reason=prof.reason,
        limits=KycLimits(
            per_payment=tier.per_payment_sat,
            daily_volume=tier.daily_volume_sat,
            monthly_volume=tier.monthly_volume_sat,
            max_channel=tier.max_channel_sat,
        ),
        updated_at=prof.updated_at.isoformat() if prof.updated_at else None,
    )


def queue_item(client: Client, prof: KycProfile, policy: Policy) -> KycQueueItem:
    """``view`` with the client's name, for the operator's KYC queue."""
    return KycQueueItem(**dict(view(prof, policy)), name=client.name)


def change_state(
    session: Session,
    settings: Settings,
    client_id: str,
    *,
    state: str,
    actor: str,
    tier: str | None = None,
    fields: dict[str, Any] | None = None,
    reason: str | None = None,
) -> KycProfile:
    """An admin decision. Approving needs every field the tier requires; rejecting and suspending need a reason."""
    policy = policy_of(settings)
    if state not in STATES:
        raise ValidationFailed(f"state must be one of {list(STATES)}", field="body.state")
    if tier is not None and tier not in policy.tiers:
        raise ValidationFailed(f"tier must be one of {sorted(policy.tiers)}", field="body.tier")
    prof = get_profile(session, settings, client_id)
    before = view(prof, policy).model_dump(by_alias=True)
    if state != prof.state and state not in TRANSITIONS[prof.state]:
        raise Conflict(
            f"cannot move a {prof.state} client to {state} (allowed: {list(TRANSITIONS[prof.state])})",
            field="body.state",
        )
    if state in ("rejected", "suspended") and not reason:
        raise ValidationFailed(f"a reason is required to mark a client {state}", field="body.reason")
    merged = json.loads(prof.fields or "{}")
    merged.update(fields or {})
    new_tier = tier or prof.tier
    if state == "approved":
        missing = [f for f in policy.tier(new_tier).required_fields if not merged.get(f)]
        if missing:
            raise ValidationFailed(f"tier {new_tier} needs {', '.join(missing)} before approval", field="body.fields")
    prof.state, prof.tier, prof.fields, prof.reason = state, new_tier, json.dumps(merged, sort_keys=True), reason
    prof.updated_at = utcnow()
    session.flush()
    after = view(prof, policy).model_dump(by_alias=True)
    audit.record(session, actor=actor, action="kyc.change", target=f"client:{client_id}", before=before, after=after)
    return prof


def submit_fields(session: Session, settings: Settings, client_id: str, fields: dict[str, Any]) -> KycProfile:
    """The client supplies (more of) its details; the state does not change until an admin decides."""
    prof = get_profile(session, settings, client_id)
    before = json.loads(prof.fields or "{}")
    merged = {**before, **fields}
    prof.fields = json.dumps(merged, sort_keys=True)
    session.flush()
    audit.record(
        session,
        actor=f"client:{client_id}",
        action="kyc.submit",
        target=f"client:{client_id}",
        before=before,
        after=merged,
    )
    return prof


# --- limits (pure) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    day_sat: int
    month_sat: int


def limit_breach(tier: Tier, amount_sat: int, usage: Usage) -> tuple[str, str] | None:
    """(code, reason) for the first limit ``amount_sat`` would break, or None. Pure: unit-tested."""
    if amount_sat > tier.per_payment_sat:
        return "limit_per_payment", f"{amount_sat} sat is above the per-payment limit of {tier.per_payment_sat} sat"
    if usage.day_sat + amount_sat > tier.daily_volume_sat:
        return (
            "limit_daily_volume",
            f"today's volume {usage.day_sat} sat + {amount_sat} sat exceeds the daily limit of {tier.daily_volume_sat} sat",
        )
    if usage.month_sat + amount_sat > tier.monthly_volume_sat:
        return (
            "limit_monthly_volume",
            f"this month's volume {usage.month_sat} sat + {amount_sat} sat exceeds the monthly limit of "
            f"{tier.monthly_volume_sat} sat",
        )
    return None


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


# Swap states in which no money moved (or it went back to where it came from): not volume.
SWAP_STATES_WITHOUT_VOLUME = ("lockup_failed", "expired", "invoice_failed", "invoice_expired", "refund_pending", "refunded")


def usage(session: Session, client_id: str, now: datetime | None = None, *, exclude_swap: str | None = None) -> Usage:
    """The client's volume this UTC day and month: outgoing payments (in flight or succeeded) plus
    swaps in either direction (from creation on, unless they failed or were refunded)."""
    day, month = period_starts(now or utcnow())
    params = {"client_id": client_id, "day": day, "month": month, "exclude_swap": exclude_swap or ""}
    row = session.execute(_usage_statement(), params).one()
    return Usage(day_sat=int(row[0] or 0), month_sat=int(row[1] or 0))


@functools.cache
def _usage_statement() -> Select[Any]:
    """One statement for both tables and both periods, built once: it runs under the client's lock
    on every payment, where building and cache-keying it each time cost more than running it."""
    from lsp.db.models_swaps import Swap  # the swap tables register themselves after the core models

    client_id: BindParameter[str] = bindparam("client_id")
    month: BindParameter[datetime] = bindparam("month")
    moved = union_all(
        select(Payment.amount_sat.label("amount"), Payment.created_at.label("at")).where(
            Payment.client_id == client_id,
            Payment.status.in_(("in_flight", "succeeded")),
            Payment.created_at >= month,
        ),
        select(Swap.invoice_amount_sat.label("amount"), Swap.created_at.label("at")).where(
            Swap.client_id == client_id,
            Swap.state.not_in(SWAP_STATES_WITHOUT_VOLUME),
            Swap.created_at >= month,
            Swap.id != bindparam("exclude_swap"),
        ),
    ).subquery()
    in_day = case((moved.c.at >= bindparam("day"), moved.c.amount), else_=0)
    return select(func.coalesce(func.sum(in_day), 0), func.coalesce(func.sum(moved.c.amount), 0))


# --- enforcement (raise Forbidden with the reason) -------------------------------------------------


def check(sessions: sessionmaker[Session], enforce: Callable[..., None], *args: Any) -> None:
    """Run one ``enforce_*`` in its own short transaction. The API calls it in a worker thread
    before talking to LND: a read snapshot held across the LND call would make SQLite refuse the
    request's later insert ("database is locked") whenever another write lands meanwhile."""
    with session_scope(sessions) as s:
        enforce(s, *args)


def _require_approved(prof: KycProfile | _Terms) -> None:
    if prof.state != "approved":
        why = f": {prof.reason}" if prof.reason else ""
        raise Forbidden(f"client KYC state is {prof.state}{why}", code=f"kyc_{prof.state}")


@dataclass(frozen=True)
class _Terms:
    """What the limit checks need of a client: its KYC state and tier, and its contracted cap."""

    state: str
    tier: str
    reason: str | None
    monthly_volume_sat: int


_profiles = cast(Table, KycProfile.__table__)
_clients = cast(Table, Client.__table__)
# One statement, built once: every payment runs it under the client's lock.
_TERMS = (
    select(_profiles.c.state, _profiles.c.tier, _profiles.c.reason, _clients.c.monthly_volume_sat)
    .select_from(_clients.outerjoin(_profiles, _profiles.c.client_id == _clients.c.id))
    .where(_clients.c.id == bindparam("client_id"))
)


def _terms(session: Session, settings: Settings, client_id: str) -> _Terms:
    row = session.execute(_TERMS, {"client_id": client_id}).first()
    if row is None:
        raise NotFound(f"no client {client_id}")
    state, tier, reason, cap = row
    if state is None:  # no profile yet: created with the initial state (once per client)
        prof = get_profile(session, settings, client_id)
        state, tier, reason = prof.state, prof.tier, prof.reason
    return _Terms(str(state), str(tier), reason, int(cap or 0))


def _volume_breach(
    settings: Settings, terms: _Terms, amount_sat: int, spent: Usage
) -> tuple[str, str] | None:
    """The KYC tier's limits, then the client's own contract limit (onboarding's
    ``apiLimits.monthlyVolume``, 0 = none): the stricter of the two applies."""
    breach = limit_breach(policy_of(settings).tier(terms.tier), amount_sat, spent)
    cap = terms.monthly_volume_sat
    if breach is None and cap and spent.month_sat + amount_sat > cap:
        return (
            "limit_client_monthly_volume",
            f"this month's volume {spent.month_sat} sat + {amount_sat} sat exceeds the client's contracted "
            f"monthly volume of {cap} sat (apiLimits.monthlyVolume)",
        )
    return breach


def enforce_payment(session: Session, settings: Settings, client_id: str, amount_sat: int, destination: str) -> None:
    terms = _terms(session, settings, client_id)
    _require_approved(terms)
    deny = policy_of(settings).rules.deny_list
    if deny.enabled and deny.block and destination in deny.pubkeys:
        raise DeniedDestination(destination, amount_sat)
    breach = _volume_breach(settings, terms, amount_sat, usage(session, client_id))
    if breach is not None:
        raise Forbidden(breach[1], code=breach[0], field="body.invoice")


def enforce_channel(session: Session, settings: Settings, client_id: str, capacity_sat: int, field: str) -> None:
    prof = get_profile(session, settings, client_id)
    _require_approved(prof)
    tier = policy_of(settings).tier(prof.tier)
    if capacity_sat > tier.max_channel_sat:
        raise Forbidden(
            f"{capacity_sat} sat is above the tier {prof.tier} channel limit of {tier.max_channel_sat} sat",
            code="limit_channel_size",
            field=field,
        )


def enforce_invoice(session: Session, settings: Settings, client_id: str, amount_sat: int) -> None:
    prof = get_profile(session, settings, client_id)
    _require_approved(prof)
    tier = policy_of(settings).tier(prof.tier)
    if amount_sat > tier.per_payment_sat:
        raise Forbidden(
            f"{amount_sat} sat is above the per-payment limit of {tier.per_payment_sat} sat",
            code="limit_per_payment",
            field="body.amount",
        )


def enforce_approved(session: Session, settings: Settings, client_id: str) -> None:
    """Approved clients only, whatever the amount: before a swap's amount is known, a swap-in the
    LSP is about to pay, channel purchases over the LSPS mirror."""
    _require_approved(get_profile(session, settings, client_id))


def enforce_swap(
    session: Session,
    settings: Settings,
    client_id: str,
    amount_sat: int,
    field: str = "body.amount",
    *,
    exclude_swap: str | None = None,
) -> None:
    """Swaps move money on- and off-chain: approved clients only, each within the per-payment limit and,
    with what the client already moved today and this month, within the volume limits."""
    terms = _terms(session, settings, client_id)
    _require_approved(terms)
    breach = _volume_breach(settings, terms, amount_sat, usage(session, client_id, exclude_swap=exclude_swap))
    if breach is not None:
        raise Forbidden(breach[1], code=breach[0], field=field)


def enforce_rebalance(session: Session, settings: Settings, client_id: str, amount_sat: int) -> None:
    """A rebalance moves the LSP's liquidity into the client's channel (the client pays the fee):
    approved clients only, and no more than the tier lets it hold in one channel."""
    enforce_channel(session, settings, client_id, amount_sat, "body.amount")


def queue(session: Session, settings: Settings) -> list[tuple[Client, KycProfile]]:
    """Every client with its profile (created on first sight), pending ones first."""
    out = []
    for c in session.scalars(select(Client).order_by(Client.created_at)):
        out.append((c, get_profile(session, settings, c.id)))
    order = {"pending": 0, "suspended": 1, "approved": 2, "rejected": 3}
    return sorted(out, key=lambda cp: order.get(cp[1].state, 9))
