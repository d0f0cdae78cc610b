"""What a replay records: per payment, per step, per scenario, per run (JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StepStatus = Literal["passed", "failed", "error", "skipped"]


@dataclass
class PaymentRecord:
    payer: str
    payee: str
    amount_sat: int
    status: str  # SUCCEEDED | FAILED | IN_FLIGHT
    fee_msat: int
    latency_s: float
    failure_reason: str = ""
    memo: str = ""
    hops: int = 0
    expected_fee_msat: int | None = None
    expected_status: str | None = None  # what the scenario said this payment should end as


@dataclass
class StepResult:
    index: int
    kind: str
    name: str
    status: StepStatus = "passed"
    started_at: float = 0.0
    duration_s: float = 0.0
    detail: str = ""
    message: str = ""  # why it failed
    failures: list[str] = field(default_factory=list)
    payments: list[PaymentRecord] = field(default_factory=list)
    log_excerpt: list[str] = field(default_factory=list)  # node log lines around a failure
    outcome: dict[str, Any] = field(default_factory=dict)  # breach / jit_receive / swap figures (`expect: results`)


@dataclass
class ChannelSnapshot:
    a: str
    b: str
    capacity_sat: int
    local_sat: int  # a's side
    remote_sat: int
    active: bool


@dataclass
class ScenarioResult:
    name: str
    description: str
    topology: str
    seed: int
    path: str
    status: StepStatus = "passed"
    chain: str = ""  # the chain backend the network ran on (bitcoind, btcd)
    duration_s: float = 0.0
    bringup_s: float = 0.0
    reused_network: bool = False
    steps: list[StepResult] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    channels_before: list[ChannelSnapshot] = field(default_factory=list)
    channels_after: list[ChannelSnapshot] = field(default_factory=list)
    message: str = ""

    @property
    def payments(self) -> list[PaymentRecord]:
        return [p for s in self.steps for p in s.payments]

    @property
    def lsps_clients(self) -> list[str]:
        """Which LSPS client implementations spoke to the LSP (what jit / lsps steps recorded)."""
        return sorted({str(s.outcome["client_implementation"]) for s in self.steps if "client_implementation" in s.outcome})


@dataclass
class LoadStats:
    """Locust's figures for one request name (or the aggregated row)."""

    name: str
    method: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    max_ms: float


@dataclass
class LoadResult:
    users: int
    spawn_rate: float
    duration_s: float
    workers: int
    stats: list[LoadStats] = field(default_factory=list)
    lnd: dict[str, Any] = field(default_factory=dict)  # payments settled, HTLCs in flight, ...
    resources: dict[str, dict[str, float]] = field(default_factory=dict)  # per process: cpu_s, rss_mb
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunResult:
    run_id: str
    target: str
    runtime: str
    started: str  # ISO time
    status: StepStatus = "passed"
    duration_s: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    scenarios: list[ScenarioResult] = field(default_factory=list)
    load: LoadResult | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def payments(self) -> list[PaymentRecord]:
        return [p for sc in self.scenarios for p in sc.payments]


def result_from_json(data: dict[str, Any]) -> RunResult:
    """Rebuild a RunResult from results.json (the report index reads old runs)."""
    scenarios = []
    for sc in data.get("scenarios", []):
        steps = [
            StepResult(**{**st, "payments": [PaymentRecord(**p) for p in st.get("payments", [])]}) for st in sc["steps"]
        ]
        scenarios.append(
            ScenarioResult(
                **{
                    **sc,
                    "steps": steps,
                    "channels_before": [ChannelSnapshot(**c) for c in sc.get("channels_before", [])],
                    "channels_after": [ChannelSnapshot(**c) for c in sc.get("channels_after", [])],
                }
            )
        )
    load = None
    if data.get("load"):
        ld = data["load"]
        load = LoadResult(**{**ld, "stats": [LoadStats(**s) for s in ld.get("stats", [])]})
    return RunResult(**{**data, "scenarios": scenarios, "load": load})
