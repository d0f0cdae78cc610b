"""The lab's exception hierarchy. Every error a user can cause is a ``LabError``
with a message that names the thing and the reason; the CLI prints it without
a traceback."""

from __future__ import annotations

from pathlib import Path


class LabError(Exception):
    """Base of every error the lab raises on purpose."""


class ToolchainError(LabError):
    """A pinned binary or the Go toolchain is missing or wrong."""


class TopologyError(LabError):
    """A topology file is invalid. ``problems`` lists (location, message)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: invalid topology"]
        lines += [f"  {loc}: {msg}" if loc else f"  {msg}" for loc, msg in problems]
        super().__init__("\n".join(lines))


class LabStateError(LabError):
    """A lab is already up, or none is, or its state file is unreadable."""


class NodeError(LabError):
    """A node failed to start, or an RPC to it failed in a way the caller asked to see."""


class ProcessDied(NodeError):
    """A node process exited while the lab waited on it; no use waiting on."""




class WaitTimeout(LabError):
    """A polled condition did not hold in time."""

    def __init__(self, *, what: str, seconds: float, last_state: str, log_tail: str = "", log_path: Path | None = None):
        self.what = what
        self.seconds = seconds
        self.last_state = last_state
        self.log_tail = log_tail
        msg = f"timed out after {seconds:.1f}s waiting for {what}; last state: {last_state}"
        if log_tail:
            msg += f"\n--- last lines of {log_path} ---\n{log_tail}"
        super().__init__(msg)


class InvariantError(LabError):
    """After a test, the network was left in a state that hides bugs."""


class BringupRetried(UserWarning):
    """A bring-up stalled (LND's gossip, on a loaded machine) and the lab started again on a fresh
    network. Warned so that a passing run still shows it (pytest's warnings summary): a run that
    needs retries often is a machine or LND problem worth a look. The failed attempt's logs are kept."""
