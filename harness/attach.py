"""Attach the harness to a network someone else started with Docker Compose
(``docker-compose.regtest.yml``), so compose users still get the harness API:
node handles, chain control, faucet funding, channel verbs and faults.

Credentials are copied out of the containers into a local directory; the
containers are found by their compose project label.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.chain.bitcoind import Bitcoind, BitcoindConfig
from harness.chain.faucet import FAUCET_COINBASES, Faucet
from harness.errors import LabError
from harness.network import Network
from harness.node import LndConfig, LndNode
from harness.runtime import docker_resources as dr
from harness.runtime.base import NodeHandle
from harness.runtime.docker import ManagedContainer
from harness.runtime.docker_client import require_docker
from harness.toolchain.build import find_toolchain
from harness.topology import Node, Topology

COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
DEFAULT_PROJECT = "lightning-lab-regtest"


class AttachedRuntime:
    """The runtime of a compose-started network: it can stop, pause and
    restart the containers that exist, but starts no new ones."""

    name = "attached"
    listen_host = "0.0.0.0"

    def peer_host(self, node: str) -> str:
        return node

    def start(self, name: str, argv: Sequence[str], **_: Any) -> NodeHandle:
        raise LabError("an attached compose network cannot start new nodes: add them to the compose file")

    def restart(self, handle: NodeHandle) -> NodeHandle:
        assert isinstance(handle, ManagedContainer)
        handle.container.start()
        return handle

    def remove(self, handle: NodeHandle) -> None:
        raise LabError("an attached compose network's containers belong to compose: `docker-compose down` removes them")

    def close(self) -> list[str]:
        return []


def _host_port(container: Any, port: int) -> int:
    return dr.published_ports(container, [port])[port]


def attach_compose(project: str, lab_dir: Path) -> Network:
    """A ``Network`` over the running compose project ``project``."""
    client = require_docker()
    containers = client.containers.list(filters={"label": f"{COMPOSE_PROJECT_LABEL}={project}"})
    if not containers:
        raise LabError(
            f"no running containers of compose project {project!r}: start it with "
            f"`docker-compose -p {project} -f docker-compose.regtest.yml --profile lab up -d`"
        )
    by_service = {c.labels.get(COMPOSE_SERVICE_LABEL, c.name): c for c in containers}
    core_c = by_service.get("bitcoind")
    if core_c is None:
        raise LabError(f"compose project {project!r} has no running 'bitcoind' service")
    lab_dir.mkdir(parents=True, exist_ok=True)

    runtime = AttachedRuntime()
    ccfg = BitcoindConfig(
        binary=Path("/bin/bitcoind"),
        datadir=lab_dir / "bitcoind",
        rpc_port=_host_port(core_c, dr.BITCOIND_RPC_PORT),
        zmq_block_port=dr.BITCOIND_ZMQ_BLOCK_PORT,
        zmq_tx_port=dr.BITCOIND_ZMQ_TX_PORT,
        listen_host="0.0.0.0",
        peer_host="bitcoind",
    )
    chain = Bitcoind(ccfg, runtime, mining_address=Faucet().address)
    chain.proc = ManagedContainer(name="bitcoind", argv=[], log_path=lab_dir / "bitcoind" / "container.log", container=core_c)

    nodes: dict[str, LndNode] = {}
    for service, c in sorted(by_service.items()):
        if "lightning-lab/lnd" not in " ".join(c.image.tags) and "lnd" not in service:
            continue
        if service in ("bitcoind", "bitcoind-init"):
            continue
        lnddir = lab_dir / service
        mac_rel = "data/chain/bitcoin/regtest/admin.macaroon"
        (lnddir / Path(mac_rel).parent).mkdir(parents=True, exist_ok=True)
        (lnddir / "tls.cert").write_bytes(dr.read_file(c, "/data/tls.cert"))
        (lnddir / mac_rel).write_bytes(dr.read_file(c, f"/data/{mac_rel}"))
        cfg = LndConfig(
            name=service,
            binary=Path("/bin/lnd"),
            lnddir=lnddir,
            chain_flags=ccfg.lnd_flags(),
            rpc_port=_host_port(c, dr.LND_GRPC_PORT),
            rest_port=_host_port(c, dr.LND_REST_PORT),
            p2p_port=dr.LND_P2P_PORT,
            listen_host="0.0.0.0",
            advertise_host=service,
        )
        node = LndNode(cfg, runtime)
        node.proc = ManagedContainer(name=service, argv=[], log_path=lnddir / "container.log", container=c)
        nodes[service] = node
    if not nodes:
        raise LabError(f"compose project {project!r} has no running LND service")

    topology = Topology(name=f"compose:{project}", nodes=[Node(name=n) for n in nodes])
    net = Network(topology, lab_dir, find_toolchain(), runtime)
    net.backend = chain
    net.nodes = nodes
    # Coins for funding come from coinbases paying the lab's faucet: the
    # compose file mines to the faucet's address. Mature them.
    height = chain.height()
    if height < chain.bootstrap_height:
        chain.mine(chain.bootstrap_height - height)
    net._utxos = net.faucet.coinbase_utxos(chain, chain.height(), limit=FAUCET_COINBASES)
    tip = chain.tip()
    for node in nodes.values():
        node.wait_synced(tip)
    return net
