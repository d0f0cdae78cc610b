"""What runs hosted nodes: one ``Orchestrator`` interface, a Docker implementation
(``lsp.hosting.docker_orch``) and a Kubernetes one (``lsp.hosting.k8s``).

An orchestrator knows nothing of clients, channels or money: it runs an LND with the flags
``lnd_args`` builds, in its own container (or pod) with its own data volume, ports and resource
limits, and answers what state each one is in. ``lsp.hosting.service`` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from lsp.hosting.config import HostingSettings

# Where a node's data volume is mounted in its container, and LND's directory in it.
DATA_DIR = "/data"
LND_DIR = f"{DATA_DIR}/lnd"
PASSWORD_FILE = f"{DATA_DIR}/wallet-password"
# LND's config file: the chain backend's credentials, kept off the command line (which `docker
# inspect`, `ps` and a StatefulSet's spec show to anyone who can read them).
CONFIG_FILE = f"{DATA_DIR}/lnd.conf"
# The ports LND listens on inside a container or pod with its own network namespace.
GRPC_PORT, REST_PORT, P2P_PORT = 10009, 8080, 9735

State = Literal["running", "restarting", "stopped", "missing"]


class OrchestratorError(Exception):
    """The orchestrator refused or failed an operation; ``reason`` is its own words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OrchestratorUnavailable(OrchestratorError):
    """The orchestrator cannot be reached at all (a stopped Docker daemon, no cluster)."""


@dataclass(frozen=True)
class Ports:
    """The node's ports as the host (or the cluster's service) publishes them."""

    grpc: int
    rest: int
    p2p: int


@dataclass(frozen=True)
class NodeSpec:
    node_id: str
    client_id: str
    alias: str
    color: str
    ports: Ports
    extra_flags: tuple[str, ...] = ()  # features and autopilot (lsp.hosting.features)
    password: bytes = field(default=b"", repr=False)  # the wallet's unlock password, written to PASSWORD_FILE


@dataclass(frozen=True)
class NodeStatus:
    state: State
    started_at: datetime | None = None
    exit_code: int | None = None
    detail: str = ""  # the orchestrator's own words for a node that is not running (OOMKilled, ...)


@dataclass(frozen=True)
class Addresses:
    rpc: str  # host:port the LSP dials for the node's gRPC
    endpoint_grpc: str  # host:port handed to the client
    endpoint_rest: str
    peer: str  # host:port the LSP's own LND dials to reach the node's p2p port


class Orchestrator(Protocol):
    name: str

    def create(self, spec: NodeSpec) -> None:
        """Create the node's volume and container (or pod), write its password file, start it.
        Leaves nothing behind when it raises."""
        ...

    def start(self, node_id: str) -> None: ...

    def stop(self, node_id: str) -> None: ...

    def remove(self, node_id: str) -> None:
        """Delete the container (or pod) and its data volume; a missing node is not an error."""
        ...

    def status(self, node_id: str) -> NodeStatus: ...

    def list_nodes(self) -> dict[str, NodeStatus]:
        """Every node of this LSP instance the orchestrator runs, by node id (orphans included)."""
        ...

    def read_file(self, node_id: str, path: str) -> bytes | None:
        """A file from the node's data volume (absolute path in the container); None if absent."""
        ...

    def memory_bytes(self, node_id: str) -> int | None:
        """The node's current memory use, if the orchestrator measures it."""
        ...

    def logs_tail(self, node_id: str, lines: int = 40) -> str:
        """The last lines LND wrote to its stdout ("" when there is no node): kept in the LSP's
        log when a node fails, before its container is removed."""
        ...

    def addresses(self, spec: NodeSpec) -> Addresses: ...


def lnd_args(settings: HostingSettings, spec: NodeSpec, *, listen_host: str, ports: Ports, tls_names: list[str]) -> list[str]:
    """LND's command line for a hosted node: its chain backend, listeners, identity, wallet
    auto-unlock and the client's features. ``ports`` are the ports LND itself binds."""
    chain = [
        f"--bitcoin.{settings.network}",
        "--bitcoin.node=bitcoind",
        f"--bitcoind.rpchost={settings.bitcoind_rpc_host}",
        f"--bitcoind.zmqpubrawblock={settings.bitcoind_zmq_block}",
        f"--bitcoind.zmqpubrawtx={settings.bitcoind_zmq_tx}",
    ]
    if settings.network == "regtest":  # the LSP opens channels the lab confirms with one block
        chain.append("--bitcoin.defaultchanconfs=1")
    return [
        f"--lnddir={LND_DIR}",
        f"--configfile={CONFIG_FILE}",
        *chain,
        f"--alias={spec.alias}",
        f"--color={spec.color}",
        f"--rpclisten={listen_host}:{ports.grpc}",
        f"--restlisten={listen_host}:{ports.rest}",
        f"--listen={listen_host}:{ports.p2p}",
        *(f"--tlsextradomain={n}" for n in tls_names if not _is_ip(n)),
        *(f"--tlsextraip={n}" for n in tls_names if _is_ip(n)),
        f"--wallet-unlock-password-file={PASSWORD_FILE}",
        "--wallet-unlock-allow-create",
        # The initial channels arrive in one batch, all pending at once.
        f"--maxpendingchannels={max(1, settings.max_channels)}",
        "--nobootstrap" if settings.network == "regtest" else "--debuglevel=info",
        *spec.extra_flags,
    ]


def lnd_conf(settings: HostingSettings) -> bytes:
    """The node's lnd.conf (written to CONFIG_FILE): the secrets LND must not take as flags."""
    return (
        "[Bitcoind]\n"
        f"bitcoind.rpcuser={settings.bitcoind_rpc_user}\n"
        f"bitcoind.rpcpass={settings.bitcoind_rpc_pass.get_secret_value()}\n"
    ).encode()


def _is_ip(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def dial_host(publish_host: str) -> str:
    """Where the LSP dials a port published on ``publish_host`` (a wildcard is dialled on loopback)."""
    return "127.0.0.1" if publish_host in ("0.0.0.0", "::") else publish_host
