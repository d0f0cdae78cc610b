"""The `lab` command's own contract: up/status/pay/down, and clear messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.runtime.process import pid_alive


def lab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {**os.environ, "LAB_RUNS_DIR": str(tmp_path), "COLUMNS": "200"}
    yield e
    lab("down", env=e)


def test_up_status_pay_down(env: dict[str, str], tmp_path: Path) -> None:
    r = lab("down", env=env)
    assert r.returncode == 0 and "no lab is up" in r.stdout

    r = lab("up", "pair", env=env)
    assert r.returncode == 0, r.stderr
    assert "nodea" in r.stdout and "admin.macaroon" in r.stdout and "lab directory" in r.stdout
    assert "bitcoind RPC: 127.0.0.1:" in r.stdout and "user lab" in r.stdout  # the default chain backend

    again = lab("up", "pair", env=env)
    assert again.returncode == 1
    assert "a lab is already up" in again.stderr and "lab down" in again.stderr
    assert "Traceback" not in again.stderr

    st = lab("status", env=env)
    assert st.returncode == 0 and "nodea: height" in st.stdout

    paid = lab("pay", "nodea", "nodeb", "1500", env=env)
    assert paid.returncode == 0 and paid.stdout.startswith("SUCCEEDED"), paid.stdout + paid.stderr

    state = (tmp_path / "ACTIVE").read_text().strip()
    import json

    saved = json.loads((Path(state) / "lab.json").read_text())
    pids = [n["pid"] for n in saved["nodes"].values()] + [saved["chain"]["pid"]]
    assert saved["chain"]["kind"] == "bitcoind"
    down = lab("down", env=env)
    assert down.returncode == 0 and "stopped and removed" in down.stdout
    assert not Path(state).exists()
    assert not any(pid_alive(p) for p in pids)
    if saved.get("runtime") == "docker":  # `auto` picked the daemon: nothing of the lab's may remain
        from harness.runtime import docker_resources as dr
        from harness.runtime.docker_client import require_docker

        client = require_docker()
        assert dr.lab_containers(client, saved["lab_id"]) == [] and dr.lab_networks(client, saved["lab_id"]) == []


def test_bad_topology_is_one_clear_message(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnodes:\n  - name: a\nchannels:\n  - {from: a, to: b, capacity_sat: 5}\n")
    r = lab("up", str(bad), env=env)
    assert r.returncode == 1
    assert "channels[0].to (line 5): unknown node 'b'" in r.stderr
    assert "Traceback" not in r.stderr
    r = lab("pay", "a", "b", "1", env=env)
    assert r.returncode == 1 and "no lab is up" in r.stderr

    bad.write_text("name: x\nchain: core\nnodes:\n  - name: a\n")
    r = lab("up", str(bad), env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "chain (line 2): Input should be 'bitcoind' or 'btcd'" in r.stderr
    r = lab("up", "pair", "--chain", "core", env=env)
    assert r.returncode == 2 and "Invalid value for '--chain'" in r.stderr and "Traceback" not in r.stderr
    r = lab("up", "pair", env={**env, "LAB_CHAIN": "core"})
    assert r.returncode == 1 and "unknown chain backend 'core' (expected one of: bitcoind, btcd)" in r.stderr


def test_up_with_lsp_prints_what_a_newcomer_needs_and_down_stops_it(env: dict[str, str], tmp_path: Path) -> None:
    import re

    import httpx

    from lsp.client import LSPClient

    r = lab("up", "pair", "--lsp", env=env)
    assert r.returncode == 2 and "has no LND node with role lsp" in r.stderr and "Traceback" not in r.stderr
    assert lab("status", env=env).stdout.startswith("no lab is up")

    r = lab("up", "star5", "--lsp", env=env)
    assert r.returncode == 0, r.stderr
    url = re.search(r"LSP on hub: (http://127\.0\.0\.1:\d+)", r.stdout)
    admin = re.search(r"admin key:\s+(\S+)", r.stdout)
    client = re.search(r"demo client (\w+): api key (\S+)\s+api secret (\S+)", r.stdout)
    password = re.search(r"dashboard:\s+\S+\s+password (\S+)", r.stdout)
    assert url and admin and client and password, r.stdout
    base = url.group(1)
    # The printed client signs requests; the printed admin key onboards; the password opens the dashboard.
    with LSPClient(base, client.group(2), client.group(3)) as api:
        assert api.me()["clientId"] == client.group(1)
        assert api.balance()["balance"] == 0
    onboarded = httpx.post(f"{base}/api/enterprise/onboard", headers={"X-Admin-Key": admin.group(1)}, json={"name": "x"})
    assert onboarded.status_code == 201
    with httpx.Client(base_url=base) as web:
        assert web.post("/dashboard/login", data={"password": password.group(1)}).status_code == 303
        assert "Channels" in web.get("/dashboard/channels").text
    st = lab("status", env=env)
    assert "LSP on hub" in st.stdout and "down" not in st.stdout.split("LSP on hub", 1)[1].splitlines()[0]

    state = Path((tmp_path / "ACTIVE").read_text().strip())
    import json

    pids = [p["pid"] for p in json.loads((state / "lab.json").read_text())["lsp"]["processes"]]
    assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    down = lab("down", env=env)
    assert down.returncode == 0 and "stopped and removed" in down.stdout, down.stdout + down.stderr
    assert not any(pid_alive(p) for p in pids)
