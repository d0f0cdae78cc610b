"""The chain-backend interface: what the lab, its faults and tests need from
a regtest chain, whichever node serves it.

Two implementations: ``bitcoind`` (Bitcoin Core, the default: what the seed's
production LND and every other lab run) and ``btcd``. Both speak Bitcoin
Core's JSON-RPC dialect for everything here except mining, start-up and the
flags LND needs to reach them, so the shared operations live in this base
class and each backend adds its process, its mining call and its LND flags.

Each backend's config builds the node's command line once (``argv``); both
runtimes start exactly that (Docker picks the image by ``argv[0]``'s name and
passes the rest), so a process lab and a Docker lab run the same node.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol

from harness.chain.rpc import JsonRpc, RpcError
from harness.errors import LabError, ProcessDied
from harness.runtime.base import NodeHandle, Runtime
from harness.wait import wait_for

# Regtest RPC credentials (the RPC listens on 127.0.0.1 or inside the lab's
# own Docker network only).
RPC_USER = "lab"
RPC_PASS = "lab"

CHAINS = ("bitcoind", "btcd")


class ChainConfig(Protocol):
    """A backend's command line and where it keeps its data (one builder for both runtimes)."""

    datadir: Path
    rpc_port: int

    def argv(self) -> list[str]: ...


class ChainBackend(ABC):
    """A running regtest chain node and the chain operations the lab uses."""

    kind: ClassVar[str]
    # Blocks the lab mines on a fresh chain before opening anything: soft forks
    # active and the faucet's first coinbases mature.
    bootstrap_height: ClassVar[int]
    # Whether the node keeps its chain across a restart (btcd deletes its
    # regtest database at every start).
    keeps_data: ClassVar[bool]

    rpc: JsonRpc
    proc: NodeHandle | None

    def __init__(self, config: ChainConfig, runtime: Runtime, rpc: JsonRpc):
        self.config = config
        self.runtime = runtime
        self.rpc = rpc
        self.proc = None

    @property
    def datadir(self) -> Path:
        return self.config.datadir

    def argv(self) -> list[str]:
        return self.config.argv()

    def publish(self) -> list[int]:
        """Ports the host must reach: the RPC."""
        return [self.config.rpc_port]

    # -- what each backend provides ------------------------------------------
    @property
    @abstractmethod
    def log_path(self) -> Path:
        """The node's own log (for timeouts' log tails and `lab status`)."""

    @property
    @abstractmethod
    def stdout_path(self) -> Path:
        """Where the runtime writes the process's stdout/stderr."""

    @abstractmethod
    def lnd_flags(self) -> list[str]:
        """LND's flags for this backend, as LND reaches it from where it runs."""

    @abstractmethod
    def _mine(self, n: int, address: str | None) -> list[str]: ...

    @abstractmethod
    def _ready(self) -> bool:
        """The RPC answers and the node serves the chain (raises while it cannot yet)."""

    def rpc_endpoint(self) -> tuple[str, int, str, str]:
        """(host, port, user, password) of a bitcoind-compatible RPC, as a node next to LND reaches it
        (ldk-node's chain source). Only Bitcoin Core has one the LDK node can use."""
        raise LabError(f"{self.kind} has no RPC ldk-node can use as its chain source: use chain: bitcoind")

    def death_reason(self) -> str | None:
        """Why the node exited, in one phrase, when its logs say (None otherwise)."""
        return None

    def describe(self) -> dict[str, Any]:
        """What `lab up` prints and stores: pid, RPC endpoint, credentials, log, argv."""
        return {
            "kind": self.kind,
            "pid": self.proc.pid if self.proc else 0,
            "rpc": f"127.0.0.1:{self.config.rpc_port}",
            "rpc_user": RPC_USER,
            "rpc_pass": RPC_PASS,
            "log": str(self.log_path),
            "argv": self.proc.argv if self.proc else [],
        }

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.proc = self.runtime.start(self.kind, self.argv(), log_path=self.stdout_path, publish=self.publish())
        self.wait_ready()

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc is not None and not self.proc.is_running():
                why = self.death_reason()
                raise ProcessDied(
                    f"{self.kind} exited with code {self.proc.returncode()}" + (f": {why}" if why else "")
                    + f"; see {self.stdout_path} and {self.log_path}"
                )
            return self._ready()

        wait_for(ready, what=f"{self.kind} RPC to answer", timeout_s="CHAIN_READY", log=self.log_path)

    def stop(self) -> None:
        self.rpc.close()
        if self.proc is not None:
            self.proc.stop()

    def kill(self) -> None:
        self.rpc.close()
        if self.proc is not None:
            self.proc.kill()

    def restart(self) -> None:
        """Start a stopped node again with its data (bitcoind only)."""
        if not self.keeps_data:
            raise LabError(
                f"{self.kind} cannot be restarted with its data: btcd deletes its regtest chain at every start. "
                "Use a topology with `chain: bitcoind` for chain stop/start faults."
            )
        if self.proc is None:
            raise LabError(f"{self.kind} was never started")
        if self.proc.is_running():
            raise LabError(f"{self.kind} is already running")
        self.proc = self.runtime.restart(self.proc)
        self.wait_ready()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.is_running()

    # -- chain operations --------------------------------------------------------
    def height(self) -> int:
        return int(self.rpc.call("getblockcount"))

    def tip(self) -> tuple[int, str]:
        """(height, block hash) of the best block."""
        info = self.rpc.call("getblockchaininfo")
        return int(info["blocks"]), str(info["bestblockhash"])

    def mine(self, n: int = 1, *, address: str | None = None) -> list[str]:
        """Mine ``n`` blocks (to the lab's faucet unless ``address``) and return their hashes."""
        if n <= 0:
            return []
        hashes: list[str] = []
        # Mining is synchronous; large batches are chunked so a single RPC
        # never runs into the HTTP timeout.
        while len(hashes) < n:
            hashes += self._mine(min(200, n - len(hashes)), address)
        return hashes

    def mine_branch(self, n: int) -> list[str]:
        """Mine ``n`` blocks on the current tip after ``invalidate_block``: a
        competing branch (see ``Faults.reorg``)."""
        return self.mine(n)

    def invalidate_block(self, block_hash: str) -> None:
        """Mark ``block_hash`` and its descendants invalid; their transactions return to the mempool."""
        self.rpc.call("invalidateblock", block_hash)

    def mempool(self) -> list[str]:
        return list(self.rpc.call("getrawmempool"))

    def block(self, block_hash: str) -> dict[str, Any]:
        """The block with its transactions decoded (``tx``, or ``rawtx`` on btcd)."""
        return dict(self.rpc.call("getblock", block_hash, 2))

    def block_hash(self, height: int) -> str:
        return str(self.rpc.call("getblockhash", height))

    def raw_tx(self, txid: str) -> dict[str, Any]:
        """A transaction in the mempool or the chain, decoded (``confirmations`` once mined)."""
        return dict(self.rpc.call("getrawtransaction", txid, 1))

    def send_raw(self, tx_hex: str) -> str:
        return str(self.rpc.call("sendrawtransaction", tx_hex))

    def wait_for_tx(self, txid: str, *, timeout_s: str | float = "TX_IN_MEMPOOL") -> None:
        """Wait until ``txid`` is in the mempool or already mined."""

        def seen() -> bool:
            if txid in self.mempool():
                return True
            try:
                self.raw_tx(txid)
                return True
            except RpcError:
                return False

        wait_for(seen, what=f"transaction {txid} to reach {self.kind}", timeout_s=timeout_s)

    def wait_mempool(self, count: int, *, timeout_s: str | float = "TX_IN_MEMPOOL") -> list[str]:
        """Wait until the mempool holds at least ``count`` transactions."""
        return wait_for(
            lambda: (m if len(m := self.mempool()) >= count else None),
            what=f"{count} transaction(s) in the mempool",
            timeout_s=timeout_s,
            describe=lambda: f"mempool has {len(self.mempool())}",
        )

    def confirmations(self, txid: str) -> int:
        try:
            return int(self.raw_tx(txid).get("confirmations", 0) or 0)
        except RpcError:
            return 0

    def tip_age(self) -> float:
        """Seconds since the best block's timestamp."""
        _, best = self.tip()
        return time.time() - float(self.rpc.call("getblockheader", best, True)["time"])
