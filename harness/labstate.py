"""The background lab that ``lab up`` leaves running, found again by later
commands (``lab status``, ``lab pay``, ``lab down``) through a state file."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import LabStateError
from harness.harness import runs_root
from harness.node import LndConfig, LndNode
from harness.runtime.base import NodeHandle
from harness.runtime.process import ManagedProcess, ProcessRuntime, pid_alive, pid_cmdline

STATE_FILE = "lab.json"


def pointer_file() -> Path:
    return runs_root() / "ACTIVE"


@dataclass
class AttachedLab:
    """A lab started by an earlier command, reattached from its state file."""

    lab_dir: Path
    state: dict[str, Any]

    @property
    def topology(self) -> str:
        return str(self.state["topology"])

    @property
    def runtime(self) -> str:
        return str(self.state.get("runtime", "process"))

    def lsp_processes(self) -> list[NodeHandle]:
        """``lsp serve`` and ``lsp lsps`` when the lab was started with ``--lsp`` (host processes
        under every runtime)."""
        lsp = self.state.get("lsp") or {}
        return [
            ProcessRuntime.adopt(p["name"], int(p["pid"]), list(p["argv"]), Path(p["log"]))
            for p in lsp.get("processes", [])
        ]

    def processes(self) -> list[NodeHandle]:
        """The LSP's processes first (they stop before the nodes they use), then the nodes, then the chain."""
        if self.runtime in ("docker", "attached"):
            return [*self.lsp_processes(), *self._containers()]
        procs: list[NodeHandle] = self.lsp_processes() + [
            ProcessRuntime.adopt(name, int(n["pid"]), list(n["argv"]), Path(n["log"]))
            for name, n in [*self.state["nodes"].items(), *self.state.get("ldk_nodes", {}).items()]
        ]
        chain = self.state.get("chain")
        if chain:
            procs.append(ProcessRuntime.adopt(chain["kind"], int(chain["pid"]), list(chain["argv"]), Path(chain["log"])))
        fees = self.state.get("feeservice")
        if fees:
            procs.append(ProcessRuntime.adopt("feeservice", int(fees["pid"]), list(fees["argv"]), Path(fees["log"])))
        return procs

    def _containers(self) -> list[NodeHandle]:
        from harness.runtime import docker_resources as dr
        from harness.runtime.docker import ManagedContainer
        from harness.runtime.docker_client import require_docker

        client = require_docker()
        handles: list[NodeHandle] = []
        if self.runtime == "attached":
            project = self.topology.removeprefix("compose:")
            found = client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
        else:
            found = dr.lab_containers(client, str(self.state.get("lab_id")))
        for c in found:
            labels = c.labels or {}
            node = labels.get(dr.LABEL_NODE) or labels.get("com.docker.compose.service") or c.name
            handles.append(ManagedContainer(name=node, argv=[], log_path=self.lab_dir / node / "container.log", container=c))
        # LND nodes first, so the chain outlives their shutdown.
        return sorted(handles, key=lambda h: h.name in ("bitcoind", "btcd", "feeservice"))

    def alive(self) -> dict[str, bool]:
        return {p.name: _ours(p) for p in self.processes()}

    def node(self, name: str) -> LndNode:
        if name in self.state.get("ldk_nodes", {}):
            raise LabStateError(f"{name!r} is an ldk node; this command drives LND nodes (the LDK driver's API: "
                                f"{self.state['ldk_nodes'][name]['api']}, docs/LDK.md)")
        if name not in self.state["nodes"]:
            raise LabStateError(f"no node named {name!r} in the running lab (nodes: {', '.join(self.state['nodes'])})")
        n = self.state["nodes"][name]
        rpc_port = int(n["rpc"].rsplit(":", 1)[1])
        cfg = LndConfig(
            name=name,
            binary=Path(n["argv"][0] if n["argv"] else "lnd"),
            lnddir=self.lab_dir / name,
            rpc_port=rpc_port,
            rest_port=int(n["rest"].rsplit(":", 1)[1]),
            p2p_port=int(n["p2p"].rsplit(":", 1)[1]),
        )
        node = LndNode(cfg, ProcessRuntime(tie_to_parent=False))
        node.proc = ProcessRuntime.adopt(name, int(n["pid"]), list(n["argv"]), Path(n["log"]))
        return node

    def stop(self) -> list[str]:
        """Stop every process (LND nodes first); returns names that had
        already died on their own (a crash worth keeping the logs for)."""
        dead: list[str] = []
        procs = self.processes()
        for p in procs:
            if not _ours(p):
                dead.append(p.name)
                continue
            p.stop()
        if self.runtime == "docker":
            from harness.runtime import docker_resources as dr
            from harness.runtime.docker_client import require_docker

            dr.cleanup_lab(require_docker(), str(self.state.get("lab_id")))
        return dead


def _ours(p: NodeHandle) -> bool:
    """The pid is alive and still runs the binary we started (pids get reused)."""
    if not isinstance(p, ManagedProcess):
        return p.is_running()
    return pid_alive(p.pid) and bool(p.argv) and pid_cmdline(p.pid).startswith(p.argv[0])


def active_lab() -> AttachedLab | None:
    ptr = pointer_file()
    if not ptr.exists():
        return None
    lab_dir = Path(ptr.read_text().strip())
    state_path = lab_dir / STATE_FILE
    if not state_path.exists():
        ptr.unlink(missing_ok=True)
        return None
    try:
        state = json.loads(state_path.read_text())
    except json.JSONDecodeError as exc:
        raise LabStateError(f"the lab state file {state_path} is unreadable: {exc}") from None
    return AttachedLab(lab_dir, state)


def set_active(lab_dir: Path) -> None:
    runs_root().mkdir(parents=True, exist_ok=True)
    pointer_file().write_text(str(lab_dir) + "\n")


def clear_active(*, remove_dir: Path | None = None) -> None:
    pointer_file().unlink(missing_ok=True)
    if remove_dir is not None:
        shutil.rmtree(remove_dir, ignore_errors=True)
