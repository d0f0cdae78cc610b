"""The one polling helper, and every named timeout the lab uses.

Never sleep for a fixed time: poll a condition every ``POLL_INTERVAL`` until it
holds or its named timeout runs out. All timeouts are multiplied by
``LAB_TIMEOUT_FACTOR`` (default 1) for slow machines. A timeout raises
``WaitTimeout`` saying what was awaited, the last state observed and,
when given, the tail of the relevant log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from harness.errors import ProcessDied, WaitTimeout

T = TypeVar("T")

POLL_INTERVAL = 0.2


def _factor() -> float:
    try:
        return max(float(os.environ.get("LAB_TIMEOUT_FACTOR", "1")), 0.1)
    except ValueError:
        return 1.0


class Timeouts:
    """Named timeouts in seconds (before the slow-machine factor)."""

    PROCESS_START = 30.0
    CHAIN_READY = 30.0  # the chain backend answering RPC (bitcoind: warm-up done), its txindex caught up
    LND_READY = 60.0
    LND_SYNC = 60.0
    LND_STOP = 20.0
    CHAIN_SYNC = 30.0
    PEER_CONNECT = 20.0
    CHANNEL_PENDING = 30.0
    CHANNEL_OPEN = 60.0
    CHANNEL_CLOSE = 60.0
    GRAPH_SYNC = 90.0
    WALLET_BALANCE = 30.0
    PAYMENT = 60.0
    TX_IN_MEMPOOL = 30.0
    HTLC_RESOLVE = 60.0
    LSP_READY = 60.0  # `lsp serve` answering /health (migrations included)
    LSP_CREDIT = 60.0  # the LSP's ledger catching up with a settled invoice
    PORTS_PUBLISHED = 10.0  # Docker reporting a container's published ports
    HOSTED_NODE = 120.0  # a hosted node from POST /api/nodes to running (lsp/hosting)
    DEFAULT = 30.0


def timeout(name_or_seconds: str | float) -> float:
    """A named timeout (``"CHANNEL_OPEN"``) or seconds, scaled by the factor."""
    if isinstance(name_or_seconds, str):
        base = float(getattr(Timeouts, name_or_seconds))
    else:
        base = float(name_or_seconds)
    return base * _factor()


def log_tail(path: Path | None, lines: int = 20) -> str:
    if path is None or not path.exists():
        return ""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def wait_for(
    check: Callable[[], T | bool | None],
    *,
    what: str,
    timeout_s: str | float = "DEFAULT",
    interval: float = POLL_INTERVAL,
    log: Path | None = None,
    describe: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns a truthy value, and return that value.

    ``check`` may raise: the exception counts as "not yet" and is reported as
    the last state if the wait times out, except ``ProcessDied``, which ends
    the wait at once. ``describe`` is called on timeout to
    report the last observed state when ``check`` only returns False.
    """
    limit = timeout(timeout_s)
    deadline = time.monotonic() + limit
    last: str = "no observation yet"
    while True:
        try:
            value = check()
            if value:
                return value  # type: ignore[return-value]
            last = f"condition returned {value!r}"
        except ProcessDied:
            raise
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            if describe is not None:
                try:
                    last = describe()
                except Exception as exc:
                    last = f"{last} (describe failed: {exc})"
            raise WaitTimeout(what=what, seconds=limit, last_state=last, log_tail=log_tail(log), log_path=log)
        time.sleep(interval)
