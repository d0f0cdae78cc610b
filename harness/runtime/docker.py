"""Docker runtime: every chain (bitcoind or btcd), LND and fee-service node in its own container
on one user-defined bridge network per lab.

The lab directory is bind-mounted into every container at the same absolute
path, so node flags name the same files in both runtimes and TLS
certificates, macaroons and logs are on the host the moment a node writes
them. Each listener binds 0.0.0.0 inside its container and is published on
127.0.0.1 with the same port number on the host, so host-side clients use
``127.0.0.1:<port>`` in both runtimes; nodes reach each other by container
name (``bitcoind:<port>``, ``alice:<port>``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker import errors as docker_errors

from harness.errors import NodeError
from harness.runtime import docker_resources as dr
from harness.runtime.base import NodeHandle
from harness.runtime.docker_client import require_docker
from harness.runtime.images import ensure_images

STOP_TIMEOUT_S = 20
# The pid of the Python process that owns a lab's containers (none for a
# background `lab up` lab): a lab whose owner died without cleaning up (a
# SIGKILLed test run) is removed the next time a Docker runtime starts.
LABEL_OWNER = "lightning-lab.owner-pid"


def reap_orphans(client: Any) -> list[str]:
    """Remove labs whose owning process is gone."""
    import os

    from harness.runtime.process import pid_alive

    removed: list[str] = []
    labs: dict[str, str] = {}
    for net in dr.lab_networks(client):
        labels = net.attrs.get("Labels") or {}
        if labels.get(LABEL_OWNER):
            labs[labels[dr.LABEL_LAB]] = labels[LABEL_OWNER]
    for c in dr.lab_containers(client):
        labels = c.labels or {}
        if labels.get(LABEL_OWNER):
            labs.setdefault(labels[dr.LABEL_LAB], labels[LABEL_OWNER])
    for lab_id, owner in labs.items():
        if owner.isdigit() and int(owner) != os.getpid() and not pid_alive(int(owner)):
            removed += dr.cleanup_lab(client, lab_id)
    return removed


@dataclass
class ManagedContainer:
    """A node container, with the same verbs as a ``ManagedProcess``."""

    name: str
    argv: list[str]
    log_path: Path
    container: Any
    paused: bool = field(default=False)

    @property
    def pid(self) -> int:
        # The container's init pid on the host: what `lab status` shows.
        with contextlib.suppress(docker_errors.APIError):
            self.container.reload()
            return int(self.container.attrs.get("State", {}).get("Pid") or 0)
        return 0

    def is_running(self) -> bool:
        try:
            self.container.reload()
        except docker_errors.NotFound:
            return False
        return self.container.status in ("running", "paused")

    def returncode(self) -> int | None:
        try:
            self.container.reload()
        except docker_errors.NotFound:
            return None
        state = self.container.attrs.get("State", {})
        return None if state.get("Running") else int(state.get("ExitCode", 0))

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        if self.paused:
            self.resume()
        with contextlib.suppress(docker_errors.NotFound):
            self.container.stop(timeout=int(timeout_s))
        self._save_logs()

    def kill(self) -> None:
        if self.paused:
            self.resume()
        with contextlib.suppress(docker_errors.NotFound, docker_errors.APIError):
            self.container.kill(signal="SIGKILL")
        self._save_logs()

    def pause(self) -> None:
        self.container.pause()
        self.paused = True

    def resume(self) -> None:
        self.container.unpause()
        self.paused = False

    def _save_logs(self) -> None:
        """Keep the container's stdout with the lab, like a process's log file."""
        with contextlib.suppress(Exception):
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_bytes(bytes(self.container.logs()))


class DockerRuntime:
    """Starts nodes as containers from the lab's FROM-scratch images."""

    name = "docker"
    listen_host = "0.0.0.0"

    def __init__(self, lab_dir: Path, *, lab_id: str | None = None, progress: Any = None, owned: bool = True):
        import os

        self.client = require_docker()
        # Best effort: other labs start and stop concurrently.
        with contextlib.suppress(docker_errors.APIError):
            reap_orphans(self.client)
        self.images = ensure_images(self.client, progress=progress)
        self.lab_dir = lab_dir
        self.lab_id = lab_id or f"{lab_dir.name[:40]}-{secrets.token_hex(2)}".replace("_", "-")
        self.labels = {LABEL_OWNER: str(os.getpid())} if owned else {}
        self.network = dr.create_network(self.client, self.lab_id, self.labels)
        self._image_by_binary = {"btcd": self.images.btcd, "lnd": self.images.lnd, "feeservice": self.images.feeservice}
        if self.images.bitcoind is not None:
            self._image_by_binary["bitcoind"] = self.images.bitcoind
        if self.images.ldk is not None:
            self._image_by_binary["lab-ldk"] = self.images.ldk

    def peer_host(self, node: str) -> str:
        return node

    def start(
        self, name: str, argv: Sequence[str], *, log_path: Path, publish: Sequence[int] = (),
        env: dict[str, str] | None = None,
    ) -> ManagedContainer:
        binary = Path(argv[0]).name
        image = self._image_by_binary.get(binary)
        if image is None:
            hint = " (not built: run `lab setup`)" if binary in ("bitcoind", "lab-ldk") else ""
            raise NodeError(f"no image for {binary!r} in the Docker runtime{hint}")
        try:
            nc = dr.run_container(
                self.client,
                lab_id=self.lab_id,
                role=binary,
                node=name,
                image=image,
                command=list(argv[1:]),
                network=self.network,
                publish=[],
                environment=env,
                volumes={str(self.lab_dir): {"bind": str(self.lab_dir), "mode": "rw"}},
                port_map={p: p for p in publish},
                extra_labels=self.labels,
            )
        except docker_errors.APIError as exc:
            raise NodeError(f"cannot start container for {name}: {exc.explanation or exc}") from exc
        return ManagedContainer(name=name, argv=list(argv), log_path=log_path, container=nc.container)

    def restart(self, handle: NodeHandle) -> NodeHandle:
        """Start a stopped node again with its data (same container)."""
        assert isinstance(handle, ManagedContainer)
        handle.container.start()
        return handle

    def remove(self, handle: NodeHandle) -> None:
        """Delete a stopped node's container (its data lives in the bind-mounted lab directory)."""
        assert isinstance(handle, ManagedContainer)
        handle.stop()
        with contextlib.suppress(docker_errors.NotFound):
            handle.container.remove(force=True)

    def close(self) -> list[str]:
        """Remove every container and the network of this lab."""
        return dr.cleanup_lab(self.client, self.lab_id)
