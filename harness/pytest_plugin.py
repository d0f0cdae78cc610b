"""pytest plugin (registered through the ``pytest11`` entry point).

``lab`` fixture: a live network for the test, chosen with
``@pytest.mark.topology("line3")``. ``shared=True`` reuses one network for
every test of the session that asks for the same topology (faster; the tests
must tolerate each other's channel state). After each test the lab's
invariants are checked (no pending HTLC, no unexplained error in node logs)
and reported after the test's own result. A failed test's lab directory is
kept and its path printed; a passing one's is removed.

Safe under pytest-xdist: every worker gets its own ports (from the kernel)
and lab directories (named with the worker id).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.harness import LightningTestHarness
from harness.runtime import RUNTIMES

DEFAULT_TOPOLOGY = "line3"
# A bring-up that times out is tried once more on a fresh network (the failed
# one's logs are kept): tests are about what happens after start.
BRINGUP_RETRIES = 1


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lightning-lab")
    group.addoption(
        "--lab-runtime",
        default="process",
        choices=RUNTIMES,
        help="runtime for lab networks: process (default), docker, or auto (docker when a daemon answers)",
    )
    group.addoption(
        "--lab-chain",
        default=None,
        choices=("bitcoind", "btcd"),
        help="run every lab on this chain backend, whatever its topology names (default: the topology's, bitcoind)",
    )
    group.addoption("--lab-keep", action="store_true", help="keep every lab directory, also for passing tests")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "topology(name, *, shared=False): the lab network a test runs on (name in topologies/ or a path)"
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    rep = yield
    setattr(item, f"_lab_rep_{rep.when}", rep)
    return rep


def _test_failed(node: pytest.Item) -> bool:
    rep = getattr(node, "_lab_rep_call", None) or getattr(node, "_lab_rep_setup", None)
    return bool(rep is None or rep.failed)


class _SharedLabs:
    """Session-wide networks, one per topology, torn down at session end."""

    def __init__(self, runtime: str, keep: bool, chain: str | None):
        self.runtime = runtime
        self.keep = keep
        self.chain = chain
        self.labs: dict[str, LightningTestHarness] = {}
        self.failed: set[str] = set()

    def get(self, topology: str) -> LightningTestHarness:
        if topology not in self.labs:
            lab = LightningTestHarness(topology, runtime=self.runtime, keep=self.keep or None, chain=self.chain)
            lab.start(retries=BRINGUP_RETRIES)
            self.labs[topology] = lab
        return self.labs[topology]

    def close(self) -> None:
        for name, lab in self.labs.items():
            lab.stop(failed=name in self.failed)
        self.labs.clear()


@pytest.fixture(scope="session")
def _lab_shared(request: pytest.FixtureRequest) -> Iterator[_SharedLabs]:
    opt = request.config.getoption
    shared = _SharedLabs(opt("--lab-runtime"), opt("--lab-keep"), opt("--lab-chain"))
    yield shared
    shared.close()


@pytest.fixture
def lab(request: pytest.FixtureRequest, _lab_shared: _SharedLabs) -> Iterator[LightningTestHarness]:
    """A live lab network for this test (see the module docstring)."""
    marker = request.node.get_closest_marker("topology")
    topology = str(marker.args[0]) if marker and marker.args else DEFAULT_TOPOLOGY
    shared = bool(marker.kwargs.get("shared", False)) if marker else False
    runtime = request.config.getoption("--lab-runtime")
    keep = request.config.getoption("--lab-keep")

    if shared:
        harness = _lab_shared.get(topology)
    else:
        harness = LightningTestHarness(
            topology, runtime=runtime, keep=keep or None, chain=request.config.getoption("--lab-chain")
        )
        harness.start(retries=BRINGUP_RETRIES)
    harness.mark_logs()
    invariant_error: Exception | None = None
    try:
        yield harness
    finally:
        try:
            harness.check_invariants()
        except Exception as exc:
            invariant_error = exc
        failed = _test_failed(request.node) or invariant_error is not None
        if shared:
            if failed:
                _lab_shared.failed.add(topology)
        else:
            harness.stop(failed=failed)
    if invariant_error is not None:
        raise invariant_error
