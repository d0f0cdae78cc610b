"""Bitcoin Core (``bitcoind``) on regtest: its command line, its LND flags
and its chain handle.

The lab builds ``bitcoind`` from the pinned source (``lab setup``; see
``harness/toolchain/bitcoin_core.py``) without a wallet: blocks are mined with
``generatetoaddress`` to the lab's faucet key, which lives in Python
(``harness/chain/faucet.py``), as with btcd. On Core's regtest segwit, CSV and
taproot are active from the genesis block, so a fresh chain only needs its
first coinbases to mature (100 blocks) before the faucet can pay.

LND follows it through ZMQ (raw blocks and raw transactions pushed the moment
Core has them) and its RPC. ZMQ rather than LND's RPC polling because pushes
arrive as soon as Core accepts a block, where polling at an interval short
enough for tests (LND's own itests use 10 ms) has every LND node hammer the
RPC all the time: with ZMQ a mined block reaches every node without any
extra load. Every port (RPC and both ZMQ sockets) comes from the lab's port
allocator, and ``-listen=0`` keeps Core from binding its default P2P and
onion ports, so labs side by side never collide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.chain.base import RPC_PASS, RPC_USER, ChainBackend
from harness.chain.faucet import FAUCET_COINBASES, throwaway_address
from harness.chain.rpc import RPC_IN_WARMUP, JsonRpc, RpcError
from harness.runtime.base import Runtime
from harness.runtime.ports import free_port
from harness.wait import wait_for

# Coinbase outputs mature after 100 blocks (consensus).
COINBASE_MATURITY = 100


@dataclass
class BitcoindConfig:
    binary: Path
    datadir: Path
    rpc_port: int = 0
    zmq_block_port: int = 0
    zmq_tx_port: int = 0
    # 127.0.0.1 for processes; 0.0.0.0 inside a container (RPC published on 127.0.0.1).
    listen_host: str = "127.0.0.1"
    # How LND reaches bitcoind: 127.0.0.1, or the container's name in Docker.
    peer_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.rpc_port = self.rpc_port or free_port()
        self.zmq_block_port = self.zmq_block_port or free_port()
        self.zmq_tx_port = self.zmq_tx_port or free_port()

    @property
    def log_path(self) -> Path:
        return self.datadir / "regtest" / "debug.log"

    @property
    def stdout_path(self) -> Path:
        return self.datadir / "bitcoind.stdout.log"

    def argv(self) -> list[str]:
        allow = "127.0.0.1" if self.listen_host == "127.0.0.1" else "0.0.0.0/0"
        return [
            str(self.binary),
            "-regtest",
            f"-datadir={self.datadir}",
            "-server",
            f"-rpcuser={RPC_USER}",
            f"-rpcpassword={RPC_PASS}",
            f"-rpcbind={self.listen_host}:{self.rpc_port}",
            f"-rpcport={self.rpc_port}",
            f"-rpcallowip={allow}",
            # Every LND node keeps RPC calls in flight (ZMQ covers notifications, not queries).
            "-rpcthreads=16",
            "-rpcworkqueue=256",
            f"-zmqpubrawblock=tcp://{self.listen_host}:{self.zmq_block_port}",
            f"-zmqpubrawtx=tcp://{self.listen_host}:{self.zmq_tx_port}",
            # No P2P at all: one node per lab, and no default ports to collide on.
            "-listen=0",
            "-connect=0",
            "-dnsseed=0",
            "-txindex",
            # The lab's fee service answers LND; Core's own estimator has no history on regtest.
            "-fallbackfee=0.0002",
            "-printtoconsole=0",
            "-debug=zmq",
            "-debug=rpc",
        ]

    def lnd_flags(self) -> list[str]:
        return [
            "--bitcoin.node=bitcoind",
            f"--bitcoind.rpchost={self.peer_host}:{self.rpc_port}",
            f"--bitcoind.rpcuser={RPC_USER}",
            f"--bitcoind.rpcpass={RPC_PASS}",
            f"--bitcoind.zmqpubrawblock=tcp://{self.peer_host}:{self.zmq_block_port}",
            f"--bitcoind.zmqpubrawtx=tcp://{self.peer_host}:{self.zmq_tx_port}",
        ]


class Bitcoind(ChainBackend):
    """A running bitcoind and the chain operations tests use."""

    kind = "bitcoind"
    # The faucet's coinbases (from height 1) mature: nothing else to activate.
    bootstrap_height = COINBASE_MATURITY + FAUCET_COINBASES
    keeps_data = True

    config: BitcoindConfig

    def __init__(self, config: BitcoindConfig, runtime: Runtime, *, mining_address: str):
        rpc = JsonRpc("bitcoind", f"http://127.0.0.1:{config.rpc_port}/", user=RPC_USER, password=RPC_PASS)
        super().__init__(config, runtime, rpc)
        self.mining_address = mining_address

    @property
    def log_path(self) -> Path:
        return self.config.log_path

    @property
    def stdout_path(self) -> Path:
        return self.config.stdout_path

    def lnd_flags(self) -> list[str]:
        return self.config.lnd_flags()

    def rpc_endpoint(self) -> tuple[str, int, str, str]:
        return (self.config.peer_host, self.config.rpc_port, RPC_USER, RPC_PASS)

    def _ready(self) -> bool:
        try:
            self.rpc.call("getblockcount", timeout_s=2)
        except RpcError as exc:
            if exc.code == RPC_IN_WARMUP:
                return False
            raise
        return True

    def _mine(self, n: int, address: str | None) -> list[str]:
        hashes = list(self.rpc.call("generatetoaddress", n, address or self.mining_address))
        if hashes:
            self._wait_txindex(self.height())
        return hashes

    def _wait_txindex(self, height: int) -> None:
        """Core's transaction index catches up with a new block in the
        background: until it does, ``getrawtransaction`` does not find the
        block's transactions. Mining waits for it, so a test can look up a
        transaction the moment the block that confirms it is mined."""

        def synced() -> bool:
            info = self.rpc.call("getindexinfo", "txindex").get("txindex") or {}
            return bool(info.get("synced")) and int(info.get("best_block_height", -1)) >= height

        wait_for(synced, what=f"bitcoind's txindex to reach height {height}", timeout_s="CHAIN_READY", log=self.log_path)

    def mine_branch(self, n: int) -> list[str]:
        """The first block of a competing branch pays a throwaway address:
        mined to the faucet in the same second as the block it replaces, with
        the same transactions, it would be that very (invalidated) block."""
        if n <= 0:
            return []
        return self.mine(1, address=throwaway_address()) + self.mine(n - 1)

    def death_reason(self) -> str | None:
        text = ""
        for path in (self.log_path, self.stdout_path):
            try:
                text += path.read_text(errors="replace")[-20_000:] + "\n"
            except OSError:
                pass
        if m := re.search(r"Binding RPC on address (\S+) port (\d+) failed", text):
            return f"{m[1]}:{m[2]} is in use, so bitcoind could not bind its RPC port there (a new start picks new ports)"
        if m := re.search(r"Failed to bind address, msg: (.+)", text):
            return f"bitcoind could not bind a ZMQ port ({m[1].strip()}; a new start picks new ports)"
        errors = re.findall(r"Error: (.+)", text)
        return errors[-1].strip() if errors else None

    def version(self) -> str:
        return str(self.rpc.call("getnetworkinfo")["subversion"])

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "zmq_block": f"tcp://{self.config.peer_host}:{self.config.zmq_block_port}",
            "zmq_tx": f"tcp://{self.config.peer_host}:{self.config.zmq_tx_port}",
        }
