"""btcd on regtest: its command line, its LND flags and its chain handle.

btcd's RPC is JSON-RPC over HTTPS with basic auth; TLS is mandatory for LND,
so the lab lets btcd generate its own certificate and trusts exactly that
file. Blocks are mined with btcd's ``generate`` (it pays ``--miningaddr``,
which the lab sets to an address of its own faucet key). btcd deletes its
regtest database at every start (``removeRegressionDB``): it is never
restarted, and soft forks activate by BIP9 signalling, so a fresh chain needs
440 blocks before channels can open.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.chain.base import RPC_PASS, RPC_USER, ChainBackend
from harness.chain.rpc import JsonRpc
from harness.errors import LabError
from harness.runtime.base import Runtime
from harness.runtime.ports import free_port

# Segwit, CSV and taproot activate by BIP9 signalling on btcd regtest: three
# 144-block windows, then activation.
ACTIVATION_HEIGHT = 440


@dataclass
class BtcdConfig:
    binary: Path
    datadir: Path
    mining_address: str
    rpc_port: int = 0
    p2p_port: int = 0
    # 127.0.0.1 for processes; 0.0.0.0 inside a container (published on 127.0.0.1).
    listen_host: str = "127.0.0.1"
    # How LND reaches btcd: 127.0.0.1, or the container's name in Docker.
    peer_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.rpc_port = self.rpc_port or free_port()
        self.p2p_port = self.p2p_port or free_port()

    @property
    def cert(self) -> Path:
        return self.datadir / "rpc.cert"

    @property
    def key(self) -> Path:
        return self.datadir / "rpc.key"

    @property
    def log_path(self) -> Path:
        return self.datadir / "btcd.log"

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            "--regtest",
            f"--rpcuser={RPC_USER}",
            f"--rpcpass={RPC_PASS}",
            f"--rpclisten={self.listen_host}:{self.rpc_port}",
            f"--listen={self.listen_host}:{self.p2p_port}",
            f"--rpccert={self.cert}",
            f"--rpckey={self.key}",
            f"--datadir={self.datadir / 'data'}",
            f"--logdir={self.datadir / 'logs'}",
            "--txindex",
            f"--miningaddr={self.mining_address}",
            "--nobanning",
            "--trickleinterval=100ms",
            "--nostalldetect",
            # Each LND node opens several websockets.
            "--rpcmaxwebsockets=200",
            "--rpcmaxclients=200",
            "--debuglevel=info",
        ]

    def lnd_flags(self, cert_pem: bytes) -> list[str]:
        return [
            "--bitcoin.node=btcd",
            f"--btcd.rpchost={self.peer_host}:{self.rpc_port}",
            f"--btcd.rpcuser={RPC_USER}",
            f"--btcd.rpcpass={RPC_PASS}",
            f"--btcd.rawrpccert={cert_pem.hex()}",
        ]


class Btcd(ChainBackend):
    """A running btcd and the chain operations tests use."""

    kind = "btcd"
    bootstrap_height = ACTIVATION_HEIGHT
    keeps_data = False

    config: BtcdConfig

    def __init__(self, config: BtcdConfig, runtime: Runtime):
        rpc = JsonRpc("btcd", f"https://127.0.0.1:{config.rpc_port}/", user=RPC_USER, password=RPC_PASS, cert=config.cert)
        super().__init__(config, runtime, rpc)

    @property
    def log_path(self) -> Path:
        return self.config.datadir / "logs" / "regtest" / "btcd.log"

    @property
    def stdout_path(self) -> Path:
        return self.config.log_path

    @property
    def cert_pem(self) -> bytes:
        return self.config.cert.read_bytes()

    def lnd_flags(self) -> list[str]:
        return self.config.lnd_flags(self.cert_pem)

    def _ready(self) -> bool:
        if not self.config.cert.exists():
            return False
        self.rpc.call("getblockcount", timeout_s=2)
        return True

    def _mine(self, n: int, address: str | None) -> list[str]:
        if address is not None:
            raise LabError("btcd mines only to its --miningaddr (the lab's faucet); use chain: bitcoind to mine elsewhere")
        return list(self.rpc.call("generate", n))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "cert": str(self.config.cert)}
