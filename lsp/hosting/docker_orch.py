"""Hosted nodes on Docker: a container and a named data volume per node, through the Docker SDK.

Each container runs the configured LND image with a read-only root file system, no Linux
capabilities, a memory, CPU and process limit, and the node's volume at ``/data``. With
``docker_network=host`` the node shares the host's network and binds the ports the LSP picked;
with a named network it listens on LND's standard ports inside its own namespace and the LSP
publishes them on ``publish_host`` under the ports it picked, so a node's endpoint survives its
container being recreated. Containers carry labels naming the LSP instance and the node: only
this instance's nodes are listed, reconciled or touched.

There is no Docker restart policy: the LSP is the one supervisor (``lsp.hosting.service``), so a
node that died is seen, reported (``node_failed``) and restarted by the same code on every
daemon, and a node the client stopped stays stopped.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from datetime import datetime
from typing import Any

from lsp.hosting.config import HostingSettings
from lsp.hosting.orchestrator import (
    CONFIG_FILE,
    DATA_DIR,
    GRPC_PORT,
    P2P_PORT,
    PASSWORD_FILE,
    REST_PORT,
    Addresses,
    NodeSpec,
    NodeStatus,
    OrchestratorError,
    OrchestratorUnavailable,
    Ports,
    dial_host,
    lnd_args,
    lnd_conf,
)

LABEL_INSTANCE = "lsp.hosting.instance"
LABEL_NODE = "lsp.hosting.node"
LABEL_CLIENT = "lsp.hosting.client"
STOP_TIMEOUT_S = 30
PIDS_LIMIT = 1024


class _Missing(OrchestratorError):
    """The daemon has no such container, volume or file (its 404)."""


class DockerOrchestrator:
    name = "docker"

    def __init__(self, settings: HostingSettings, *, client: Any = None):
        self.settings = settings
        self._client = client

    # -- the daemon --------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import docker
            from docker import errors as docker_errors

            try:
                self._client = docker.from_env(timeout=60)
                self._client.ping()
            except (docker_errors.DockerException, OSError) as exc:
                self._client = None
                raise OrchestratorUnavailable(f"cannot reach the Docker daemon: {_words(exc)}") from None
        return self._client

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """Run one SDK call, turning the SDK's errors into the orchestrator's."""
        import requests
        from docker import errors as docker_errors

        try:
            return fn(*args, **kw)
        except (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError) as exc:
            self._client = None
            raise OrchestratorUnavailable(f"cannot reach the Docker daemon: {_words(exc)}") from None
        except docker_errors.NotFound as exc:
            raise _Missing(str(exc.explanation or exc)) from None
        except docker_errors.APIError as exc:
            raise OrchestratorError(str(exc.explanation or exc)) from None
        except docker_errors.DockerException as exc:
            raise OrchestratorError(_words(exc)) from None

    def container_name(self, node_id: str) -> str:
        return f"lsp-{self.settings.instance}-{node_id}"

    def volume_name(self, node_id: str) -> str:
        return f"lsp-{self.settings.instance}-{node_id}-data"

    def _container(self, node_id: str) -> Any | None:
        try:
            return self._call(self.client.containers.get, self.container_name(node_id))
        except _Missing:
            return None

    # -- the interface -----------------------------------------------------------------
    def _host_mode(self) -> bool:
        return self.settings.docker_network == "host"

    def addresses(self, spec: NodeSpec) -> Addresses:
        s = self.settings
        dial = dial_host(s.publish_host)
        if self._host_mode():
            peer = f"{s.peer_host or dial}:{spec.ports.p2p}"
        else:
            peer = f"{s.peer_host}:{spec.ports.p2p}" if s.peer_host else f"{self.container_name(spec.node_id)}:{P2P_PORT}"
        return Addresses(
            rpc=f"{dial}:{spec.ports.grpc}",
            endpoint_grpc=f"{s.public_host}:{spec.ports.grpc}",
            endpoint_rest=f"{s.public_host}:{spec.ports.rest}",
            peer=peer,
        )

    def command(self, spec: NodeSpec) -> list[str]:
        s = self.settings
        names = sorted({s.public_host, dial_host(s.publish_host), self.container_name(spec.node_id)})
        if self._host_mode():
            return lnd_args(s, spec, listen_host=s.publish_host, ports=spec.ports, tls_names=names)
        inner = Ports(grpc=GRPC_PORT, rest=REST_PORT, p2p=P2P_PORT)
        return lnd_args(s, spec, listen_host="0.0.0.0", ports=inner, tls_names=names)

    def create(self, spec: NodeSpec) -> None:
        s = self.settings
        client = self.client
        labels = {LABEL_INSTANCE: s.instance, LABEL_NODE: spec.node_id, LABEL_CLIENT: spec.client_id}
        kw: dict[str, Any] = {}
        if self._host_mode():
            kw["network_mode"] = "host"
        else:
            kw["network"] = s.docker_network
            kw["ports"] = {
                f"{GRPC_PORT}/tcp": (s.publish_host, spec.ports.grpc),
                f"{REST_PORT}/tcp": (s.publish_host, spec.ports.rest),
                f"{P2P_PORT}/tcp": (s.publish_host, spec.ports.p2p),
            }
        volume = self._call(client.volumes.create, name=self.volume_name(spec.node_id), labels=labels)
        container = None
        try:
            container = self._call(
                client.containers.create,
                s.image,
                command=self.command(spec),
                name=self.container_name(spec.node_id),
                hostname=spec.node_id,
                labels=labels,
                volumes={volume.name: {"bind": DATA_DIR, "mode": "rw"}},
                mem_limit=f"{s.memory_mb}m",
                nano_cpus=int(s.cpus * 1e9),
                pids_limit=PIDS_LIMIT,
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                detach=True,
                **kw,
            )
            files = {PASSWORD_FILE: spec.password, CONFIG_FILE: lnd_conf(s)}
            self._call(container.put_archive, DATA_DIR, _tar({path.rsplit("/", 1)[1]: data for path, data in files.items()}))
            self._call(container.start)
        except BaseException:
            with contextlib.suppress(Exception):
                if container is not None:
                    container.remove(force=True)
            with contextlib.suppress(Exception):
                volume.remove(force=True)
            raise

    def start(self, node_id: str) -> None:
        c = self._container(node_id)
        if c is None:
            raise OrchestratorError(f"container {self.container_name(node_id)} is gone")
        self._call(c.start)

    def stop(self, node_id: str) -> None:
        c = self._container(node_id)
        if c is not None:
            self._call(c.stop, timeout=STOP_TIMEOUT_S)

    def remove(self, node_id: str) -> None:
        c = self._container(node_id)
        if c is not None:
            self._call(c.remove, force=True)
        with contextlib.suppress(_Missing):
            vol = self._call(self.client.volumes.get, self.volume_name(node_id))
            self._call(vol.remove, force=True)

    def status(self, node_id: str) -> NodeStatus:
        c = self._container(node_id)
        return NodeStatus(state="missing") if c is None else _status(c)

    def list_nodes(self) -> dict[str, NodeStatus]:
        found = self._call(self.client.containers.list, all=True, filters={"label": f"{LABEL_INSTANCE}={self.settings.instance}"})
        return {c.labels[LABEL_NODE]: _status(c) for c in found if c.labels.get(LABEL_NODE)}

    def read_file(self, node_id: str, path: str) -> bytes | None:
        c = self._container(node_id)
        if c is None:
            return None
        try:
            stream, _stat = self._call(c.get_archive, path)
        except _Missing:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            f = tar.extractfile(member) if member is not None else None
            return f.read() if f is not None else None

    def memory_bytes(self, node_id: str) -> int | None:
        c = self._container(node_id)
        if c is None:
            return None
        stats = self._call(c.stats, stream=False, one_shot=True)  # one sample: no 1 s wait for a second
        usage = (stats or {}).get("memory_stats", {}).get("usage")
        return int(usage) if usage else None

    def logs_tail(self, node_id: str, lines: int = 40) -> str:
        c = self._container(node_id)
        if c is None:
            return ""
        return bytes(self._call(c.logs, tail=lines)).decode(errors="replace")


def _status(c: Any) -> NodeStatus:
    st = c.attrs.get("State", {})
    started = _parse_time(st.get("StartedAt"))
    if st.get("Restarting"):
        return NodeStatus(state="restarting", started_at=started)
    if st.get("Running"):
        return NodeStatus(state="running", started_at=started)
    detail = "out of memory (OOMKilled)" if st.get("OOMKilled") else str(st.get("Error") or "")
    return NodeStatus(state="stopped", started_at=started, exit_code=int(st.get("ExitCode", 0)), detail=detail)


def _parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker writes RFC 3339 with nanoseconds: keep microseconds.
    head, _, rest = value.partition(".")
    frac = "".join(ch for ch in rest if ch.isdigit())[:6]
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(f"{head}.{frac or '0'}+00:00")
    return None


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _words(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
