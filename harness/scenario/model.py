"""Scenario and suite files: what a replay does, validated with pydantic.

A scenario names a topology, a seed and ordered steps; each step has a
``kind`` (pay, keysend, open_channel, ...) and may carry expectations. A
suite is a list of scenarios. Unknown keys are errors (``extra="forbid"``):
a misspelt expectation must not silently pass.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.errors import LabError


class ScenarioError(LabError):
    """A scenario or suite file is invalid. ``problems`` lists (location, message)."""

    def __init__(self, source: str, problems: list[tuple[str, str]], *, what: str = "scenario"):
        self.source = source
        self.problems = problems
        lines = [f"{source}: invalid {what}"]
        lines += [f"  {loc}: {msg}" if loc else f"  {msg}" for loc, msg in problems]
        super().__init__("\n".join(lines))


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# -- amounts ---------------------------------------------------------------
class Uniform(_M):
    """An integer amount drawn uniformly from [low, high]."""

    dist: Literal["uniform"]
    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _order(self) -> Uniform:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class LogNormal(_M):
    """Payment sizes are heavy-tailed: many small, a few large. ``median`` is
    the distribution's median in sat; the draw is clamped to [min, max]."""

    dist: Literal["lognormal"]
    median: int = Field(ge=1)
    sigma: float = Field(gt=0, le=5)
    min: int = Field(1, ge=1)
    max: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> LogNormal:
        if self.max is not None and self.max < self.min:
            raise ValueError(f"max ({self.max}) must not be below min ({self.min})")
        return self


Distribution = Annotated[Uniform | LogNormal, Field(discriminator="dist")]
Amount = Annotated[int, Field(ge=1)] | Distribution
NodeRef = str | list[str]


# -- expectations ------------------------------------------------------------
PaymentStatus = Literal["SUCCEEDED", "FAILED"]


class PaymentExpect(_M):
    """What every payment of a pay/keysend step must show."""

    status: PaymentStatus | None = "SUCCEEDED"
    failure_reason: str | None = Field(None, description="e.g. FAILURE_REASON_NO_ROUTE")
    fee_msat: int | None = Field(None, ge=0, description="exact fee of each payment")
    max_fee_msat: int | None = Field(None, ge=0)
    fee_per_policy: bool = Field(False, description="fee equals what the route's hop policies charge")
    min_success_rate: float | None = Field(None, ge=0, le=1, description="instead of every payment succeeding")


class Range(_M):
    min: int | None = None
    max: int | None = None


class PaymentsCheck(_M):
    """Aggregate checks over the payments of an earlier step (by its name)."""

    step: str
    min_success_rate: float | None = Field(None, ge=0, le=1)
    max_p95_latency_s: float | None = Field(None, gt=0)
    max_total_fee_msat: int | None = Field(None, ge=0)
    count: int | None = Field(None, ge=0)


class BalanceCheck(_M):
    node: str
    channel_local_sat: Range | None = None
    onchain_confirmed_sat: Range | None = None


class ChannelCheck(_M):
    node: str
    peer: str
    state: Literal["active", "inactive", "absent"] = "active"
    capacity_sat: int | None = Field(None, ge=1, description="which channel, when the two nodes share several")
    local_sat: Range | None = None
    remote_sat: Range | None = None


# -- steps -------------------------------------------------------------------
class _Step(_M):
    name: str | None = Field(None, min_length=1, max_length=80)


class _PaymentStep(_Step):
    """What pay and keysend steps share: who pays whom, how much, how often."""

    from_: NodeRef = Field(alias="from")
    to: NodeRef
    amount_sat: Amount
    count: int = Field(1, ge=1, le=1000)
    fee_limit_sat: int = Field(100, ge=0)
    timeout_s: int = Field(60, ge=1, le=600)
    expect: PaymentExpect = Field(default_factory=lambda: PaymentExpect.model_validate({}))


class PayStep(_PaymentStep):
    """Pay invoices: the payee creates each invoice (memo from Faker), the payer pays it."""

    kind: Literal["pay"]


class KeysendStep(_PaymentStep):
    kind: Literal["keysend"]


class OpenChannelStep(_Step):
    kind: Literal["open_channel"]
    from_: str = Field(alias="from")
    to: str
    capacity_sat: int = Field(ge=20_000, le=16_777_215)
    push_sat: int = Field(0, ge=0)
    private: bool = False


class CloseChannelStep(_Step):
    """Close the (first) channel between two nodes, from ``from``'s side."""

    kind: Literal["close_channel"]
    from_: str = Field(alias="from")
    to: str
    force: bool = False
    capacity_sat: int | None = Field(None, ge=1, description="which channel, when the two nodes share several")


class MineStep(_Step):
    kind: Literal["mine"]
    blocks: int = Field(1, ge=1, le=500)


class WaitStep(_Step):
    kind: Literal["wait"]
    until: Literal["channels_active", "no_pending_htlcs", "graph_synced", "synced"]
    node: str | None = Field(None, description="the node to watch; all nodes when absent")
    timeout_s: float | None = Field(None, gt=0, le=600)


class RestartStep(_Step):
    """Stop a node (SIGTERM) and start it again; waits until its channels are active."""

    kind: Literal["restart"]
    node: str


class PauseStep(_Step):
    """Freeze a node's process (SIGSTOP); ``resume`` thaws it."""

    kind: Literal["pause"]
    node: str


class ResumeStep(_Step):
    kind: Literal["resume"]
    node: str


class PartitionStep(_Step):
    """Cut the p2p connection between two nodes (LND may reconnect; ``heal`` forces it)."""

    kind: Literal["partition"]
    node: str
    peer: str


class HealStep(_Step):
    kind: Literal["heal"]
    node: str
    peer: str


LspCall = Literal[
    "me", "balance", "channel_balance", "create_invoice", "liquidity_rates", "receive", "send", "jit_buy", "dashboard"
]


class LspStep(_Step):
    """A call on the LSP's client API (signed). Skipped when no LSP runs.

    ``receive``: the client invoices through the LSP and ``payer`` (a node) pays
    it; done when the LSP marks the invoice settled. ``send``: ``payee`` (a
    node) invoices and the client pays it from its LSP balance. ``jit_buy``: the
    client buys a JIT channel (LSPS2 over ``POST /api/liquidity/jit``) for node
    ``client`` and a payment of ``amount_sat``; the opening fee must be bLIP-52's."""

    kind: Literal["lsp"]
    call: LspCall
    amount_sat: int | None = Field(None, ge=1, description="for create_invoice, receive, send")
    payer: str | None = Field(None, description="for receive: the node that pays the client's invoice")
    payee: str | None = Field(None, description="for send: the node whose invoice the client pays")
    client: str | None = Field(None, description="for jit_buy: the node the JIT channel is for")
    balance_sat: Range | None = Field(None, description="for balance: the client's balance must be in this range")
    expect_error: str | None = Field(None, description="expected error code, e.g. 'validation_error'")

    @model_validator(mode="after")
    def _needs(self) -> LspStep:
        need = {
            "receive": ("amount_sat", "payer"),
            "send": ("amount_sat", "payee"),
            "create_invoice": ("amount_sat",),
            "jit_buy": ("amount_sat", "client"),
        }
        missing = [f for f in need.get(self.call, ()) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"call {self.call!r} needs {' and '.join(missing)}")
        return self


EventType = Literal[
    "payment_received",
    "payment_sent",
    "payment_failed",
    "channel_opened",
    "channel_closed",
    "routing_fee_earned",
    "liquidity_request",
    "swap_updated",
    "channel_breach",
    "node_running",
    "node_stopped",
    "node_failed",
]


class EventCheck(_M):
    """Events the scenario's LSP client received on its WebSocket (since the scenario began)."""

    type: EventType
    min_count: int = Field(1, ge=0)
    max_count: int | None = Field(None, ge=0)
    timeout_s: float = Field(30, gt=0, le=300, description="how long to wait for min_count to arrive")


class BreachStep(_Step):
    """``cheater`` broadcasts a revoked state of its channel with ``victim`` (``lab.breach``); the
    victim (or ``tower``, with the victim offline) sweeps it. The victim must run with
    ``--nolisten --minbackoff=1h`` (topologies/breach.yaml, watchtower.yaml)."""

    kind: Literal["breach"]
    cheater: str
    victim: str
    tower: str | None = Field(None, description="a watchtower node: the victim goes offline and the tower sweeps")

    @model_validator(mode="after")
    def _distinct(self) -> BreachStep:
        roles = [self.cheater, self.victim] + ([self.tower] if self.tower else [])
        if len(set(roles)) != len(roles):
            raise ValueError("cheater, victim and tower must be different nodes")
        return self


class _LiquidityStep(_Step):
    """A step where ``client`` gets liquidity from ``lsp`` and ``payer`` pays: three different nodes."""

    lsp: str
    client: str
    payer: str

    @model_validator(mode="after")
    def _distinct(self) -> _LiquidityStep:
        if len({self.lsp, self.client, self.payer}) != 3:
            raise ValueError("lsp, client and payer must be different nodes")
        return self


class JitReceiveStep(_LiquidityStep):
    """``client`` (no channel needed) receives ``amount_msat`` from ``payer`` through a JIT channel of
    ``lsp``, in the wrapped-invoice mode (``lab.jit_wrap_invoice``: works with stock clients). The
    LSPS daemon (``lsp lsps``) runs against ``lsp`` for the step (``harness.lsps_lsp.LspsRunner``)."""

    kind: Literal["jit_receive"]
    amount_msat: int = Field(ge=1_000_000, description="what the client's own invoice asks for")
    menu_index: int = Field(0, ge=0, description="which entry of the LSP's opening fee menu to use")
    timeout_s: int = Field(60, ge=1, le=600)


class Lsps2ReceiveStep(_LiquidityStep):
    """``client``, an ldk node, is paid ``amount_msat`` by ``payer`` through a JIT channel it buys
    from ``lsp`` with LDK's own LSPS2 client (ldk-node's ``receive_via_jit_channel``: get_info,
    the cheapest offer, buy, an invoice with the LSP's route hint). The LSPS service runs against
    ``lsp`` for the step; the client must name it as its ``lsp`` in the topology."""

    kind: Literal["lsps2_receive"]
    amount_msat: int = Field(ge=1_000_000, description="what the payer pays; the client gets it minus the fee")
    max_fee_msat: int | None = Field(None, ge=0, description="the client's limit on the opening fee")
    timeout_s: int = Field(60, ge=1, le=600)


class Lsps1OrderStep(_LiquidityStep):
    """``client``, an ldk node, buys a channel of ``lsp_balance_sat`` from ``lsp`` with LDK's own
    LSPS1 client; ``payer`` pays the order's bolt11 invoice; the step waits until the client sees
    the channel the LSP opened. The LSPS service runs against ``lsp`` for the step."""

    kind: Literal["lsps1_order"]
    lsp_balance_sat: int = Field(ge=1)
    announce_channel: bool = False
    timeout_s: int = Field(90, ge=1, le=600)


class SwapInStep(_Step):
    """Chain -> Lightning through the scenario's LSP (``harness.swaps.swap_in``): ``node`` invoices
    ``amount_sat``, the faucet funds the lockup, the LSP pays the invoice and claims the lockup."""

    kind: Literal["swap_in"]
    node: str
    amount_sat: int = Field(ge=1000)
    timeout_s: int = Field(120, ge=1, le=600)


class SwapOutStep(_Step):
    """Lightning -> chain (a reverse swap, ``harness.swaps.swap_out``): ``node`` pays the LSP's hold
    invoice and claims the lockup to a fresh address of its own wallet."""

    kind: Literal["swap_out"]
    node: str
    amount_sat: int = Field(ge=1000)
    timeout_s: int = Field(120, ge=1, le=600)


HostedFeature = Literal["keysend", "amp", "wumbo", "scid-alias", "zero-conf", "simple-taproot-chans"]


class HostedChannel(_M):
    """An initial channel of a hosted node, opened by the LSP's node (``push_sat`` is charged to the client)."""

    capacity_sat: int = Field(ge=20_000, le=16_777_215)
    push_sat: int = Field(0, ge=0)
    private: bool = False


class HostedNodeStep(_Step):
    """A hosted Lightning node (``POST /api/nodes`` on the scenario's LSP: a dedicated LND in a Docker
    container), driven with nothing but the macaroon and certificate the API returns: ``receive_from``
    pays an invoice of ``receive_sat`` made on it, it pays ``pay_sat`` to ``pay_to``, and with
    ``delete_sweep_to`` the step deletes it (``DELETE /api/nodes/{id}?sweepAddress=``, an address of
    that node) and waits, mining, until it is ``deleted`` and the sweep has arrived."""

    kind: Literal["hosted_node"]
    alias: str = Field("lab-hosted", min_length=1, max_length=32, description="the node's alias (32 bytes at most)")
    color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb")
    features: list[HostedFeature] = Field(default_factory=list, max_length=10)
    channels: list[HostedChannel] = Field(default_factory=list, max_length=5)
    receive_from: str | None = Field(None, description="a node that pays an invoice made on the hosted node")
    receive_sat: int | None = Field(None, ge=1)
    pay_to: str | None = Field(None, description="a node whose invoice the hosted node pays")
    pay_sat: int | None = Field(None, ge=1)
    fee_limit_sat: int = Field(100, ge=0, description="for both payments")
    delete_sweep_to: str | None = Field(None, description="delete the node; its funds go to a new address of this node")
    timeout_s: float | None = Field(None, gt=0, le=600, description="from POST to running (default HOSTED_NODE)")

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        if len(value.encode()) > 32:
            raise ValueError("is longer than 32 bytes in UTF-8 (LND's limit)")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("has control characters")
        return value


# What each recording step puts in its result's ``outcome`` (``expect: results`` may check these).
RECORDED_FIELDS: dict[str, tuple[str, ...]] = {
    "breach": (
        "close_type",
        "breach_txid",
        "justice_txid",
        "swept_by",
        "victim_onchain_before_sat",
        "victim_onchain_after_sat",
        "victim_gain_sat",
        "victim_channel_balance_sat",
        "cheater_revoked_balance_sat",
        "cheater_loss_sat",
    ),
    "jit_receive": (
        "amount_msat",
        "received_msat",
        "payment_size_msat",
        "lsp_fee_msat",
        "formula_fee_msat",
        "fee_matches_formula",
        "payer_fee_msat",
        "new_channel",
        "client_implementation",
    ),
    "lsps2_receive": (
        "amount_msat",
        "received_msat",
        "lsp_fee_msat",
        "formula_fee_msat",
        "fee_matches_formula",
        "new_channel",
        "client_implementation",
    ),
    "lsps1_order": (
        "order_id",
        "fee_total_sat",
        "order_total_sat",
        "payment_state",
        "channel_capacity_sat",
        "channel_usable",
        "channel_announced",
        "client_implementation",
    ),
    "swap_in": ("state", "swap_id", "invoice_amount", "onchain_amount", "service_fee", "miner_fee", "received_sat"),
    "swap_out": ("state", "swap_id", "invoice_amount", "onchain_amount", "service_fee", "miner_fee", "received_sat"),
    "hosted_node": (
        "node_id",
        "pubkey",
        "charged_sat",
        "time_to_running_s",
        "channels_active",
        "capacity_sat",
        "received_sat",
        "receive_fee_msat",
        "sent_sat",
        "send_fee_msat",
        "metrics_channel_count",
        "metrics_active_channel_count",
        "metrics_total_capacity",
        "metrics_payments_sent",
        "final_state",
        "sweep_txid",
        "swept_sat",
        "time_to_deleted_s",
    ),
}


class ResultCheck(_M):
    """A check on what an earlier breach / jit_receive / swap / hosted_node step recorded (by its name)."""

    step: str
    field: str
    equals: str | int | bool | None = None
    min: int | float | None = None
    max: int | float | None = None

    @model_validator(mode="after")
    def _something(self) -> ResultCheck:
        if self.equals is None and self.min is None and self.max is None:
            raise ValueError("a result check needs 'equals', 'min' or 'max'")
        return self


class ExpectStep(_Step):
    kind: Literal["expect"]
    payments: list[PaymentsCheck] = Field(default_factory=list)
    balances: list[BalanceCheck] = Field(default_factory=list)
    channels: list[ChannelCheck] = Field(default_factory=list)
    events: list[EventCheck] = Field(default_factory=list)
    results: list[ResultCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> ExpectStep:
        if not (self.payments or self.balances or self.channels or self.events or self.results):
            raise ValueError(
                "an expect step needs at least one of 'payments', 'balances', 'channels', 'events', 'results'"
            )
        return self


Step = Annotated[
    PayStep
    | KeysendStep
    | OpenChannelStep
    | CloseChannelStep
    | MineStep
    | WaitStep
    | RestartStep
    | PauseStep
    | ResumeStep
    | PartitionStep
    | HealStep
    | LspStep
    | BreachStep
    | JitReceiveStep
    | Lsps2ReceiveStep
    | Lsps1OrderStep
    | SwapInStep
    | SwapOutStep
    | HostedNodeStep
    | ExpectStep,
    Field(discriminator="kind"),
]

STEP_KINDS = (
    "pay",
    "keysend",
    "open_channel",
    "close_channel",
    "mine",
    "wait",
    "restart",
    "pause",
    "resume",
    "partition",
    "heal",
    "lsp",
    "breach",
    "jit_receive",
    "lsps2_receive",
    "lsps1_order",
    "swap_in",
    "swap_out",
    "hosted_node",
    "expect",
)


class Scenario(_M):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = ""
    topology: str = Field(description="a name in topologies/ or a path relative to the scenario file")
    seed: int = Field(1, ge=0, le=2**32 - 1)
    share_network: bool = Field(
        False,
        description="safe to run on a network an earlier scenario of the same topology used, "
        "and leaves it usable for the next",
    )
    lsp: str | None = Field(None, description="run the LSP API on this node for the scenario (lsp steps)")
    steps: list[Step] = Field(min_length=1)


class Suite(_M):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = ""
    scenarios: list[str] = Field(min_length=1, description="scenario names in scenarios/ or paths")
