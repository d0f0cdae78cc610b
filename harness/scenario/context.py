"""What a step sees while it runs: the lab, its plan, earlier results, the LSP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.harness import LightningTestHarness
from harness.scenario.model import Scenario
from harness.scenario.plan import PlannedPayment
from harness.scenario.results import StepResult

if TYPE_CHECKING:
    from lsp.client import LSPClient


class StepSkipped(Exception):
    """A step that cannot run here (say, an LSP call with no LSP) and is not a failure."""


@dataclass(frozen=True)
class HostingSetup:
    """Hosted nodes for the scenario's LSP (``hosted_node`` steps): the instance name their containers
    carry on the Docker daemon, where their credentials and logs go, or why none can run here."""

    instance: str
    workdir: Path
    unavailable: str | None = None


@dataclass
class StepContext:
    lab: LightningTestHarness
    scenario: Scenario
    index: int
    result: StepResult
    planned: list[PlannedPayment] = field(default_factory=list)
    history: dict[str, StepResult] = field(default_factory=dict)
    lsp: LSPClient | None = None
    progress: Callable[[str], None] = lambda _msg: None
    lsp_events: list[dict[str, Any]] = field(default_factory=list)  # from the LSP's WebSocket, in arrival order
    hosting: HostingSetup | None = None  # when a step of the scenario is hosted_node

    def fail(self, message: str) -> None:
        """Record a failed expectation; the step goes on so all its failures are seen."""
        self.result.failures.append(message)
