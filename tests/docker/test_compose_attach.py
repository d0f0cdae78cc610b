"""docker-compose.regtest.yml's `lab` profile comes up, and `lab attach`
gives the harness API over it (fund, open, pay)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.runtime.docker_client import docker_available
from harness.runtime.ports import free_port

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not docker_available(), reason="no Docker daemon answers (scripts/dockerd.sh start)"),
    pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed"),
]

ROOT = Path(__file__).resolve().parents[2]
PORT_VARS = ("BITCOIND_RPC_PORT", "ALICE_GRPC_PORT", "ALICE_REST_PORT", "BOB_GRPC_PORT", "BOB_REST_PORT",
             "CAROL_GRPC_PORT", "CAROL_REST_PORT")


@pytest.fixture
def compose_project(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    from harness.runtime.images import ensure_images

    # The compose file names the lab's local images; without them compose would try a registry
    # (none is reachable). Built here unless they exist: this test may be a worker's first Docker test.
    ensure_images()
    project = f"labtest{os.getpid()}"
    env = {**os.environ, **{v: str(free_port()) for v in PORT_VARS}, "LAB_RUNS_DIR": str(tmp_path), "COLUMNS": "200"}
    cmd = ["docker-compose", "-p", project, "-f", str(ROOT / "docker-compose.regtest.yml"), "--profile", "lab"]
    up = subprocess.run([*cmd, "up", "-d"], env=env, capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stderr
        yield project, env
    finally:
        subprocess.run([*cmd, "down", "-v"], env=env, capture_output=True, timeout=300)


def lab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True, timeout=300)


def test_attach_gives_the_harness_api_over_compose(compose_project: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    from harness.attach import attach_compose

    project, env = compose_project
    net = attach_compose(project, tmp_path / "attached")
    assert sorted(net.nodes) == ["alice", "bob", "carol"]
    alice = net.node("alice")
    net.send_from_faucet([(alice.new_address(), 3_000_000)])
    net.mine(1)
    from harness.wait import wait_for

    wait_for(lambda: alice.balances().onchain_confirmed_sat >= 3_000_000, what="alice's funds", timeout_s=30)
    net.open_channel("alice", "bob", 1_000_000)
    invoice = net.node("bob").add_invoice(7_000)
    assert alice.pay_invoice(invoice.payment_request).succeeded

    # The CLI: attach, status, pay over the channel, detach (compose keeps running).
    r = lab(env, "attach", "--project", project)
    assert r.returncode == 0, r.stderr
    assert "alice" in r.stdout and "attached" in r.stdout
    paid = lab(env, "pay", "alice", "bob", "1000")
    assert paid.returncode == 0 and paid.stdout.startswith("SUCCEEDED"), paid.stdout + paid.stderr
    down = lab(env, "down")
    assert down.returncode == 0 and "detached" in down.stdout
    ps = subprocess.run(["docker", "ps", "--filter", f"label=com.docker.compose.project={project}", "-q"],
                        capture_output=True, text=True)
    assert len(ps.stdout.split()) >= 4, "lab down must not stop a compose network it only attached to"
