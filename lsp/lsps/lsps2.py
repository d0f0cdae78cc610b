"""LSPS2 (bLIP-52) JIT channels: opening fee params, the promise, the fee formula, JIT SCIDs, and
the two methods ``lsps2.get_info`` / ``lsps2.buy``.

Everything here is pure except ``Lsps2Methods``, which reads the clock and
asks the store for a fresh SCID. The HTLC side lives in ``interceptor.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from lsp.lsps.jsonrpc import Caller, Dispatcher, RpcError, invalid_params

U64_MAX = 2**64 - 1

# bLIP-52 error codes.
UNRECOGNIZED_OR_STALE_TOKEN = 200
INVALID_OPENING_FEE_PARAMS = 201
PAYMENT_SIZE_TOO_SMALL = 202
PAYMENT_SIZE_TOO_LARGE = 203

# SCID aliases LND accepts (aliasmgr.IsAlias): block heights in [16_000_000, 16_250_000).
ALIAS_BLOCK_START = 16_000_000
ALIAS_BLOCK_END = 16_250_000

PARAM_FIELDS = (
    "min_fee_msat",
    "proportional",
    "valid_until",
    "min_lifetime",
    "max_client_to_self_delay",
    "min_payment_size_msat",
    "max_payment_size_msat",
    "promise",
)
MSAT_FIELDS = ("min_fee_msat", "min_payment_size_msat", "max_payment_size_msat")
U32_FIELDS = ("proportional", "min_lifetime", "max_client_to_self_delay")


class FeeOverflow(ArithmeticError):
    """The fee computation exceeds u64: the payment is too large to price (error 203)."""


def opening_fee_msat(payment_size_msat: int, min_fee_msat: int, proportional: int) -> int:
    """bLIP-52's fee: max(min_fee_msat, ceil(payment_size_msat * proportional / 1_000_000)), in u64.

    The ceiling is computed as (x + 999_999) // 1_000_000 exactly as the bLIP's
    reference code does, and each step is checked for u64 overflow."""
    if payment_size_msat < 0 or min_fee_msat < 0 or proportional < 0:
        raise ValueError("amounts and rates are unsigned")
    product = payment_size_msat * proportional
    if product > U64_MAX:
        raise FeeOverflow(f"payment_size_msat * proportional overflows u64 ({payment_size_msat} * {proportional})")
    rounded = product + 999_999
    if rounded > U64_MAX:
        raise FeeOverflow("rounding the proportional fee overflows u64")
    return max(min_fee_msat, rounded // 1_000_000)


def gross_for_net(net_msat: int, min_fee_msat: int, proportional: int) -> int:
    """The smallest payment P with P - opening_fee(P) == net_msat: what a payer must send so the
    client receives exactly ``net_msat`` (used by the wrapped-invoice mode).

    P - fee(P) never decreases and grows by at most 1 per msat, so an exact P exists."""
    if proportional >= 1_000_000:
        raise ValueError("a proportional fee of 100% or more leaves nothing to receive")
    guess = max(net_msat + min_fee_msat, net_msat * 1_000_000 // (1_000_000 - proportional))
    p = max(net_msat, guess - 2)
    for _ in range(64):  # bounded: the guess is within a couple of msat of the answer
        if p - opening_fee_msat(p, min_fee_msat, proportional) >= net_msat:
            break
        p += 1
    while p > net_msat and (p - 1) - opening_fee_msat(p - 1, min_fee_msat, proportional) >= net_msat:
        p -= 1
    if p - opening_fee_msat(p, min_fee_msat, proportional) != net_msat:
        raise ValueError(f"no payment size yields exactly {net_msat} msat")
    return p


# -- SCIDs ----------------------------------------------------------------
def scid_to_str(scid: int) -> str:
    return f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"


def scid_from_str(text: str) -> int:
    parts = text.split("x")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not an SCID (BLOCKxTXxOUT): {text!r}")
    block, tx, out = (int(p) for p in parts)
    if block >= 1 << 24 or tx >= 1 << 24 or out >= 1 << 16:
        raise ValueError(f"SCID component out of range: {text!r}")
    return (block << 40) | (tx << 16) | out


def is_jit_scid(scid: int) -> bool:
    return ALIAS_BLOCK_START <= (scid >> 40) < ALIAS_BLOCK_END


def random_jit_scid() -> int:
    block = ALIAS_BLOCK_START + secrets.randbelow(ALIAS_BLOCK_END - ALIAS_BLOCK_START)
    return (block << 40) | (secrets.randbelow(1 << 24) << 16) | secrets.randbelow(1 << 16)


# -- datetimes ------------------------------------------------------------
def format_datetime(dt: datetime) -> str:
    """LSPS0's datetime: YYYY-MM-DDThh:mm:ss.uuuZ (milliseconds, UTC)."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime:
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError("datetime must be ISO 8601 UTC ending in Z")
    return datetime.fromisoformat(text[:-1] + "+00:00").astimezone(UTC)


# -- opening fee params ---------------------------------------------------
@dataclass(frozen=True)
class OpeningFeeParams:
    min_fee_msat: int
    proportional: int
    valid_until: str
    min_lifetime: int
    max_client_to_self_delay: int
    min_payment_size_msat: int
    max_payment_size_msat: int
    promise: str = ""

    def canonical(self, client_node_id: str) -> bytes:
        """What the promise commits to: every field but the promise, and the client's node id."""
        doc = {
            "min_fee_msat": str(self.min_fee_msat),
            "proportional": self.proportional,
            "valid_until": self.valid_until,
            "min_lifetime": self.min_lifetime,
            "max_client_to_self_delay": self.max_client_to_self_delay,
            "min_payment_size_msat": str(self.min_payment_size_msat),
            "max_payment_size_msat": str(self.max_payment_size_msat),
            "client_node_id": client_node_id.lower(),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, secret: bytes, client_node_id: str) -> OpeningFeeParams:
        promise = hmac.new(secret, self.canonical(client_node_id), hashlib.sha256).hexdigest()
        return OpeningFeeParams(**{**self.__dict__, "promise": promise})

    def promise_ok(self, secret: bytes, client_node_id: str) -> bool:
        expected = hmac.new(secret, self.canonical(client_node_id), hashlib.sha256).hexdigest()
        # Bytes: compare_digest refuses non-ASCII str, and the promise comes from the client.
        return hmac.compare_digest(expected.encode(), self.promise.encode("utf-8", "replace"))

    def expired(self, now: datetime) -> bool:
        return parse_datetime(self.valid_until) <= now

    def fee(self, payment_size_msat: int) -> int:
        return opening_fee_msat(payment_size_msat, self.min_fee_msat, self.proportional)

    def to_json(self) -> dict[str, Any]:
        return {
            "min_fee_msat": str(self.min_fee_msat),
            "proportional": self.proportional,
            "valid_until": self.valid_until,
            "min_lifetime": self.min_lifetime,
            "max_client_to_self_delay": self.max_client_to_self_delay,
            "min_payment_size_msat": str(self.min_payment_size_msat),
            "max_payment_size_msat": str(self.max_payment_size_msat),
            "promise": self.promise,
        }

    @classmethod
    def from_json(cls, doc: Any) -> OpeningFeeParams:
        """Strict parse: exactly the bLIP's fields, msat as decimal strings, rates as integers.

        Raises RpcError 201 naming the offending field: malformed params can only come from a
        client that altered them, which is the same failure as a broken promise."""
        if not isinstance(doc, dict):
            raise RpcError(INVALID_OPENING_FEE_PARAMS, "opening_fee_params must be an object")
        missing = [f for f in PARAM_FIELDS if f not in doc]
        extra = sorted(set(doc) - set(PARAM_FIELDS))
        if missing or extra:
            raise RpcError(
                INVALID_OPENING_FEE_PARAMS,
                "invalid opening_fee_params",
                {"missing": missing, "unrecognized": extra},
            )
        values: dict[str, Any] = {}
        for f in MSAT_FIELDS:
            v = doc[f]
            if not isinstance(v, str) or not v.isdigit() or int(v) > U64_MAX:
                raise RpcError(INVALID_OPENING_FEE_PARAMS, f"{f} must be a decimal u64 string", {"field": f})
            values[f] = int(v)
        for f in U32_FIELDS:
            v = doc[f]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**32:
                raise RpcError(INVALID_OPENING_FEE_PARAMS, f"{f} must be a u32 integer", {"field": f})
            values[f] = v
        try:
            parse_datetime(doc["valid_until"])
        except (ValueError, TypeError):
            raise RpcError(
                INVALID_OPENING_FEE_PARAMS, "valid_until is not a datetime", {"field": "valid_until"}
            ) from None
        promise = doc["promise"]
        if not isinstance(promise, str) or len(promise) > 512 or not promise.isprintable() or not promise.isascii():
            raise RpcError(
                INVALID_OPENING_FEE_PARAMS,
                "promise must be at most 512 printable ASCII characters",
                {"field": "promise"},
            )
        return cls(valid_until=doc["valid_until"], promise=promise, **values)


@dataclass(frozen=True)
class MenuEntry:
    """One line of the LSP's price list (configuration), before it is dated and signed."""

    min_fee_msat: int
    proportional: int
    valid_for: timedelta
    min_lifetime: int = 1008
    max_client_to_self_delay: int = 2016
    min_payment_size_msat: int = 1_000_000
    max_payment_size_msat: int = 4_000_000_000


class FeeLine(Protocol):
    @property
    def min_fee_msat(self) -> int: ...
    @property
    def proportional(self) -> int: ...


def check_menu(menu: Sequence[FeeLine]) -> None:
    """bLIP-52: each entry must cost at least as much as the one before, on both fee components
    (a menu line from the settings or a MenuEntry: checked once, when the menu is configured)."""
    for prev, cur in itertools.pairwise(menu):
        if cur.min_fee_msat < prev.min_fee_msat or cur.proportional < prev.proportional:
            raise ValueError("must be ordered by increasing min_fee_msat and proportional (bLIP-52)")


def build_menu(menu: list[MenuEntry], secret: bytes, client_node_id: str, now: datetime) -> list[OpeningFeeParams]:
    return [
        OpeningFeeParams(
            min_fee_msat=e.min_fee_msat,
            proportional=e.proportional,
            valid_until=format_datetime(now + e.valid_for),
            min_lifetime=e.min_lifetime,
            max_client_to_self_delay=e.max_client_to_self_delay,
            min_payment_size_msat=e.min_payment_size_msat,
            max_payment_size_msat=e.max_payment_size_msat,
        ).signed(secret, client_node_id)
        for e in menu
    ]


def parse_msat(value: Any, field_name: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or int(value) > U64_MAX:
        raise invalid_params(f"{field_name} must be a decimal u64 string", field_name=field_name)
    return int(value)


def check_payment_size(params: OpeningFeeParams, payment_size_msat: int) -> int:
    """The buy-time checks for a fixed payment size; returns the fee."""
    try:
        fee = params.fee(payment_size_msat)
    except FeeOverflow:
        raise RpcError(PAYMENT_SIZE_TOO_LARGE, "payment_size_msat is too large: the fee overflows") from None
    if payment_size_msat < params.min_payment_size_msat:
        raise RpcError(
            PAYMENT_SIZE_TOO_SMALL, f"payment_size_msat is below min_payment_size_msat {params.min_payment_size_msat}"
        )
    if payment_size_msat > params.max_payment_size_msat:
        raise RpcError(
            PAYMENT_SIZE_TOO_LARGE, f"payment_size_msat is above max_payment_size_msat {params.max_payment_size_msat}"
        )
    if fee >= payment_size_msat:
        raise RpcError(PAYMENT_SIZE_TOO_SMALL, f"payment_size_msat does not cover the opening fee of {fee} msat")
    return fee


@dataclass(frozen=True)
class Buy:
    id: str
    client_node_id: str
    jit_scid: int
    params: OpeningFeeParams
    payment_size_msat: int | None  # None: variable-amount mode
    state: str  # PENDING | OPENING | OPENED | FAILED
    channel_point: str | None = None


class BuyStore(Protocol):
    def create_buy(self, client_node_id: str, params: OpeningFeeParams, payment_size_msat: int | None) -> Buy: ...


@dataclass
class Lsps2Config:
    menu: list[MenuEntry]
    secret: bytes
    lsp_cltv_expiry_delta: int = 144  # must exceed the new channel's time-lock delta (LND: 80)
    client_trusts_lsp: bool = False
    max_liquidity_msat: int = 4_000_000_000  # what one JIT channel may carry
    tokens: frozenset[str] | None = None  # None: no token required


class Lsps2Methods:
    def __init__(self, config: Lsps2Config, store: BuyStore, *, clock: Callable[[], datetime] | None = None):
        check_menu(config.menu)
        self.config = config
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))

    def register(self, d: Dispatcher) -> None:
        d.register("lsps2.get_info", self.get_info, params={"token"})
        d.register(
            "lsps2.buy", self.buy, params={"opening_fee_params", "payment_size_msat"}, required={"opening_fee_params"}
        )

    @staticmethod
    def _node(caller: Caller) -> str:
        if not caller.node_id:
            raise invalid_params("the caller's node id is unknown", field_name="node_id")
        return caller.node_id

    def _check_token(self, params: dict[str, Any]) -> None:
        token = params.get("token")
        if token is not None and not isinstance(token, str):
            raise invalid_params("token must be a string", field_name="token")
        if self.config.tokens is not None and token not in self.config.tokens:
            raise RpcError(UNRECOGNIZED_OR_STALE_TOKEN, "unrecognized or stale token")

    async def get_info(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        self._check_token(params)
        menu = build_menu(self.config.menu, self.config.secret, self._node(caller), self.clock())
        return {"opening_fee_params_menu": [p.to_json() for p in menu]}

    async def buy(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        node = self._node(caller)
        fee_params = OpeningFeeParams.from_json(params["opening_fee_params"])
        if not fee_params.promise_ok(self.config.secret, node):
            raise RpcError(INVALID_OPENING_FEE_PARAMS, "invalid promise: the params were not issued to this node")
        if fee_params.expired(self.clock()):
            raise RpcError(INVALID_OPENING_FEE_PARAMS, "opening_fee_params expired (valid_until has passed)")
        size: int | None = None
        if "payment_size_msat" in params and params["payment_size_msat"] is not None:
            size = parse_msat(params["payment_size_msat"], "payment_size_msat")
            check_payment_size(fee_params, size)
            if size > self.config.max_liquidity_msat:
                raise RpcError(PAYMENT_SIZE_TOO_LARGE, "the LSP cannot provide that much liquidity")
        buy = self.store.create_buy(node, fee_params, size)
        return {
            "jit_channel_scid": scid_to_str(buy.jit_scid),
            "lsp_cltv_expiry_delta": self.config.lsp_cltv_expiry_delta,
            "client_trusts_lsp": self.config.client_trusts_lsp,
        }
