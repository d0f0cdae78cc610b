"""Docker building blocks for the Docker runtime: one bridge network per lab,
labelled btcd / LND containers, ports published on 127.0.0.1 only, files
copied in and out, and cleanup by label.

Every network and container the lab creates carries the labels
``lightning-lab.lab=<lab id>``; containers also ``lightning-lab.role`` (btcd |
lnd) and ``lightning-lab.node`` (the node name). ``cleanup_lab`` /
``cleanup_all`` find what to remove by those labels alone, so they also clean
up after an interrupted run.

Inside a lab's network each container is reachable by its node name (a
network alias, and its hostname): LND connects to ``btcd:18334``. btcd
generates its RPC certificate at first start for ``os.Hostname()``,
``localhost`` and its interface addresses (btcd has no flag for extra names),
so the btcd container's hostname is its node name: the certificate then names
``btcd`` for LND and ``127.0.0.1`` for the host, which reaches it through the
published port.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docker import errors as docker_errors

from harness.runtime.docker_client import DockerError
from harness.wait import wait_for

if TYPE_CHECKING:
    from harness.chain.btcd import BtcdConfig
    from harness.node import LndConfig

LABEL_LAB = "lightning-lab.lab"
LABEL_ROLE = "lightning-lab.role"
LABEL_NODE = "lightning-lab.node"
NAME_PREFIX = "lightning-lab"

# Ports inside the containers (the same for every node: each has its own IP).
# Bitcoin Core's as docker-compose.regtest.yml runs it (the lab's own Docker
# labs use allocated ports, like processes).
BITCOIND_RPC_PORT = 18443
BITCOIND_ZMQ_BLOCK_PORT = 28332
BITCOIND_ZMQ_TX_PORT = 28333
BTCD_RPC_PORT = 18334
BTCD_P2P_PORT = 18444
LND_GRPC_PORT = 10009
LND_P2P_PORT = 9735
LND_REST_PORT = 8080

# Where the files live inside the containers (``--datadir``/``--lnddir``).
BTCD_HOME = "/data"
BTCD_CERT = "/data/rpc.cert"
BTCD_KEY = "/data/rpc.key"
LND_DIR = "/data"
LND_TLS_CERT = "/data/tls.cert"
LND_ADMIN_MACAROON = "/data/data/chain/bitcoin/regtest/admin.macaroon"
LND_LOG = "/data/logs/bitcoin/regtest/lnd.log"

_SAFE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def _check_name(kind: str, value: str) -> str:
    if not _SAFE.match(value):
        raise DockerError(f"{kind} {value!r} is not usable in a Docker name (letters, digits, '_', '.', '-')")
    return value


def network_name(lab_id: str) -> str:
    return f"{NAME_PREFIX}-{_check_name('lab id', lab_id)}"


def container_name(lab_id: str, node: str) -> str:
    return f"{NAME_PREFIX}-{_check_name('lab id', lab_id)}-{_check_name('node name', node)}"


def lab_labels(lab_id: str, **extra: str) -> dict[str, str]:
    return {LABEL_LAB: lab_id, **extra}


# ---------------------------------------------------------------- networks


def create_network(client: Any, lab_id: str, extra_labels: Mapping[str, str] | None = None) -> Any:
    """The lab's user-defined bridge network (created, or the existing one of this lab)."""
    name = network_name(lab_id)
    for net in client.networks.list(names=[name]):
        if net.name == name and (net.attrs.get("Labels") or {}).get(LABEL_LAB) == lab_id:
            return net
    return client.networks.create(
        name, driver="bridge", labels=lab_labels(lab_id, **(extra_labels or {})), check_duplicate=True
    )


# -------------------------------------------------------------- containers


@dataclass(frozen=True)
class NodeContainer:
    """A started container and the host ports its container ports are published on."""

    lab_id: str
    node: str
    role: str
    container: Any
    ports: dict[int, int]  # container port -> 127.0.0.1 host port

    @property
    def name(self) -> str:
        return str(self.container.name)


def run_container(
    client: Any,
    *,
    lab_id: str,
    role: str,
    node: str,
    image: str,
    command: Sequence[str],
    network: Any,
    publish: Iterable[int] = (),
    files: Mapping[str, bytes] | None = None,
    environment: Mapping[str, str] | None = None,
    volumes: Mapping[str, Mapping[str, str]] | None = None,
    port_map: Mapping[int, int] | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> NodeContainer:
    """Create and start a node container in ``network``.

    The container is named ``lightning-lab-<lab>-<node>``, has hostname and
    network alias ``node``, and publishes each port in ``publish`` on
    127.0.0.1 with a host port Docker chooses (read back into ``ports``).
    ``files`` (absolute path -> content) are copied in before it starts.
    ``port_map`` publishes container ports on fixed 127.0.0.1 host ports.
    """
    name = container_name(lab_id, node)
    _check_name("node name", node)
    publish = list(publish)
    endpoint = client.api.create_endpoint_config(aliases=[node])
    try:
        container = client.containers.create(
            image,
            command=list(command),
            name=name,
            hostname=node,
            labels=lab_labels(lab_id, **{LABEL_ROLE: role, LABEL_NODE: node}, **(extra_labels or {})),
            network=network.name,
            networking_config={network.name: endpoint},
            ports={
                **{f"{p}/tcp": ("127.0.0.1", None) for p in publish},
                **{f"{c}/tcp": ("127.0.0.1", h) for c, h in (port_map or {}).items()},
            },
            environment=dict(environment or {}),
            volumes={k: dict(v) for k, v in (volumes or {}).items()},
            detach=True,
        )
    except docker_errors.APIError as exc:
        if exc.status_code == 409:
            raise DockerError(
                f"container {name} already exists (left by an earlier run?): remove it with cleanup_lab({lab_id!r})"
            ) from exc
        raise
    try:
        if files:
            put_files(container, files)
        container.start()
        ports = published_ports(container, publish)
    except BaseException:
        container.remove(force=True, v=True)
        raise
    return NodeContainer(lab_id=lab_id, node=node, role=role, container=container, ports=ports)


def published_ports(container: Any, ports: Iterable[int]) -> dict[int, int]:
    """Container port -> host port on 127.0.0.1, read back from Docker (polled until bound)."""
    wanted = list(ports)
    if not wanted:
        return {}

    def read() -> dict[int, int] | None:
        container.reload()
        if container.status not in ("running", "created", "restarting"):
            raise DockerError(f"container {container.name} is {container.status}: {logs_tail(container)}")
        bound = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
        out: dict[int, int] = {}
        for p in wanted:
            for b in bound.get(f"{p}/tcp") or []:
                if b.get("HostIp") == "127.0.0.1" and b.get("HostPort"):
                    out[p] = int(b["HostPort"])
        return out if len(out) == len(wanted) else None

    return wait_for(read, what=f"published ports {wanted} of {container.name}", timeout_s="PORTS_PUBLISHED")


def logs_tail(container: Any, lines: int = 20) -> str:
    try:
        return bytes(container.logs(tail=lines)).decode("utf-8", "replace")
    except Exception as exc:  # best effort, for error messages
        return f"(no logs: {exc})"


# ------------------------------------------------------------------- files


def read_file(container: Any, path: str) -> bytes:
    """The content of one regular file inside ``container`` (via ``get_archive``)."""
    try:
        stream, _stat = container.get_archive(path)
    except docker_errors.NotFound as exc:
        raise FileNotFoundError(f"{path} in container {container.name}") from exc
    buf = io.BytesIO(b"".join(stream))
    with tarfile.open(fileobj=buf) as tar:
        for member in tar.getmembers():
            if member.isfile():
                fh = tar.extractfile(member)
                if fh is not None:
                    return fh.read()
    raise FileNotFoundError(f"{path} in container {container.name} is not a regular file")


def wait_file(container: Any, path: str, *, what: str, timeout_s: str | float = "DEFAULT") -> bytes:
    """Poll until ``path`` exists (non-empty) in ``container`` and return its content."""

    def check() -> bytes | None:
        container.reload()
        if container.status == "exited":
            raise DockerError(f"container {container.name} exited: {logs_tail(container)}")
        data = read_file(container, path)
        return data or None

    return wait_for(check, what=what, timeout_s=timeout_s, describe=lambda: logs_tail(container))


def put_files(container: Any, files: Mapping[str, bytes], mode: int = 0o600) -> None:
    """Copy ``files`` (absolute path -> content) into ``container`` (running or not)."""
    buf = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files.items():
            if not path.startswith("/"):
                raise DockerError(f"put_files needs absolute paths, got {path!r}")
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = mode
            info.mtime = int(now)
            tar.addfile(info, io.BytesIO(data))
    if not container.put_archive("/", buf.getvalue()):
        raise DockerError(f"copying {sorted(files)} into {container.name} failed")


# ----------------------------------------------------------------- cleanup


def lab_containers(client: Any, lab_id: str | None = None) -> list[Any]:
    label = LABEL_LAB if lab_id is None else f"{LABEL_LAB}={lab_id}"
    # ignore_removed: another lab (an xdist worker) may remove its containers mid-listing.
    return list(client.containers.list(all=True, filters={"label": label}, ignore_removed=True))


def lab_networks(client: Any, lab_id: str | None = None) -> list[Any]:
    label = LABEL_LAB if lab_id is None else f"{LABEL_LAB}={lab_id}"
    return list(client.networks.list(filters={"label": label}))


def _cleanup(client: Any, lab_id: str | None) -> list[str]:
    removed: list[str] = []
    for c in lab_containers(client, lab_id):
        try:
            c.remove(force=True, v=True)
            removed.append(f"container {c.name}")
        except docker_errors.NotFound:
            pass
    for n in lab_networks(client, lab_id):
        try:
            n.remove()
            removed.append(f"network {n.name}")
        except docker_errors.NotFound:
            pass
    label = LABEL_LAB if lab_id is None else f"{LABEL_LAB}={lab_id}"
    for v in client.volumes.list(filters={"label": label}):
        try:
            v.remove(force=True)
            removed.append(f"volume {v.name}")
        except docker_errors.NotFound:
            pass
    return removed


def cleanup_lab(client: Any, lab_id: str) -> list[str]:
    """Remove every container, network and volume labelled with ``lab_id``; returns what was removed."""
    return _cleanup(client, lab_id)


def cleanup_all(client: Any) -> list[str]:
    """Remove every container, network and volume of every lab (any ``lightning-lab.lab`` label)."""
    return _cleanup(client, None)


# ---------------------------------------------------------- node commands


def btcd_config(*, mining_address: str, peer_host: str = "btcd") -> BtcdConfig:
    """The lab's own btcd configuration (``harness.chain.btcd.BtcdConfig``, the one every lab node
    uses) at this module's container paths and ports: ``argv()[1:]`` is the container's command."""
    from harness.chain.btcd import BtcdConfig

    return BtcdConfig(
        binary=Path("btcd"),
        datadir=Path(BTCD_HOME),
        mining_address=mining_address,
        rpc_port=BTCD_RPC_PORT,
        p2p_port=BTCD_P2P_PORT,
        listen_host="0.0.0.0",
        peer_host=peer_host,
    )


def lnd_config(node: str, *, chain_flags: Sequence[str], advertise_host: str) -> LndConfig:
    """The lab's own LND configuration (``harness.node.LndConfig``: the same flags as every lab
    node) at this module's container paths and ports; ``chain_flags`` from ``BtcdConfig.lnd_flags``."""
    from harness.node import LndConfig

    return LndConfig(
        name=node,
        binary=Path("lnd"),
        lnddir=Path(LND_DIR),
        chain_flags=list(chain_flags),
        rpc_port=LND_GRPC_PORT,
        rest_port=LND_REST_PORT,
        p2p_port=LND_P2P_PORT,
        listen_host="0.0.0.0",
        advertise_host=advertise_host,
    )
