"""No stray process or directory after a lab, also when a test fails, start-up
fails, or the test run is interrupted or killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.errors import NodeError
from harness.harness import LightningTestHarness
from harness.runtime.process import pid_alive
from harness.topology import parse_topology
from harness.wait import timeout


def _wait_dead(pids: list[int], seconds: float = 30.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


def test_clean_exit_stops_everything_and_removes_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path))
    with LightningTestHarness("pair") as lab:
        pids = lab.net.pids()
        lab_dir = lab.lab_dir
        assert len(pids) == 4 and all(pid_alive(p) for p in pids)  # btcd, fee service, two lnd
    assert _wait_dead(pids) == []
    assert not lab_dir.exists()


def test_failure_inside_the_lab_keeps_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path))
    with pytest.raises(RuntimeError), LightningTestHarness("pair") as lab:
        pids = lab.net.pids()
        lab_dir = lab.lab_dir
        raise RuntimeError("test failed")
    assert _wait_dead(pids) == []
    assert (lab_dir / "nodea" / "logs" / "bitcoin" / "regtest" / "lnd.log").exists()


def test_failed_start_stops_what_did_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path))
    topo = parse_topology("name: broken\nnodes:\n  - name: ok\n  - name: bad\n    flags: [--no-such-lnd-flag]\n")
    lab = LightningTestHarness(topo)
    with pytest.raises(NodeError, match="lnd 'bad' exited"):
        lab.start()
    assert _wait_dead(lab.net.pids()) == []
    assert lab.lab_dir.exists(), "a failed start keeps its directory for the logs"


INNER_TEST = textwrap.dedent(
    """
    import os, time, pytest

    @pytest.mark.topology("pair")
    def test_hang(lab):
        with open(os.environ["PIDS_FILE"] + ".tmp", "w") as fh:
            fh.write(" ".join(map(str, lab.net.pids())))
        os.rename(os.environ["PIDS_FILE"] + ".tmp", os.environ["PIDS_FILE"])
        time.sleep(600)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_interrupted_run_leaves_no_process(tmp_path: Path, sig: signal.Signals) -> None:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER_TEST)
    pids_file = tmp_path / "pids"
    env = {**os.environ, "PIDS_FILE": str(pids_file), "LAB_RUNS_DIR": str(tmp_path / "labs")}
    env.pop("PYTEST_XDIST_WORKER", None)
    # The inner run's output goes to a file, never a pipe nobody reads while waiting (a full pipe
    # would block its writes and look like a hang).
    out_path = tmp_path / "inner.log"
    with out_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(test_file)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # What a terminal gives a run: SIGINT raises KeyboardInterrupt. A run started in the
            # background by a non-interactive shell (`cmd &`, some CI runners) inherits SIGINT
            # *ignored*, and so would this child, which then could not be interrupted at all.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def inner_output() -> str:
        return out_path.read_text(errors="replace")[-4000:]

    try:
        deadline = time.monotonic() + 120
        while not pids_file.exists():
            assert proc.poll() is None, inner_output()
            assert time.monotonic() < deadline, "inner test never brought its lab up:\n" + inner_output()
            time.sleep(0.2)
        pids = [int(p) for p in pids_file.read_text().split()]
        assert pids and all(pid_alive(p) for p in pids)
        sent = time.monotonic()
        proc.send_signal(sig)
        # Teardown stops the nodes (in parallel), then the chain, then the fee service, each
        # SIGTERM with up to 20 s before SIGKILL: bound the wait by that, not by a guess.
        try:
            proc.wait(timeout=timeout(3 * 20 + 30))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the interrupted test run did not exit in {time.monotonic() - sent:.0f} s; "
                        f"its output:\n{inner_output()}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_dead(pids) == [], "node processes survived the interrupted test run"


def test_docker_lab_leaves_no_container_or_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean exit, a failed start and a SIGKILLed owner leave nothing behind
    (found by the lab's labels)."""
    from harness.runtime import docker_resources as dr
    from harness.runtime.docker import DockerRuntime, reap_orphans
    from harness.runtime.docker_client import docker_available, require_docker

    if not docker_available():
        pytest.skip("no Docker daemon answers (scripts/dockerd.sh start)")
    monkeypatch.setenv("LAB_RUNS_DIR", str(tmp_path))
    client = require_docker()

    with LightningTestHarness("pair", runtime="docker") as lab:
        assert isinstance(lab.runtime, DockerRuntime)
        lab_id = lab.runtime.lab_id
        assert len(dr.lab_containers(client, lab_id)) == 4  # btcd, fee service, two lnd
    assert dr.lab_containers(client, lab_id) == [] and dr.lab_networks(client, lab_id) == []

    topo = parse_topology("name: broken\nnodes:\n  - name: ok\n  - name: bad\n    flags: [--no-such-lnd-flag]\n")
    broken = LightningTestHarness(topo, runtime="docker")
    with pytest.raises(NodeError, match="lnd 'bad' exited"):
        broken.start()
    assert isinstance(broken.runtime, DockerRuntime)
    assert dr.lab_containers(client, broken.runtime.lab_id) == []

    # A lab whose owning process died without cleaning up (kill -9): the
    # next Docker runtime reaps it.
    dead_pid = _dead_pid()
    net = dr.create_network(client, "orphan-test", {"lightning-lab.owner-pid": str(dead_pid)})
    try:
        removed = reap_orphans(client)
        assert any("orphan-test" in r for r in removed)
        assert dr.lab_networks(client, "orphan-test") == []
    finally:
        try:
            net.remove()
        except Exception:  # already reaped
            pass


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    assert not pid_alive(p.pid)
    return p.pid
