"""btcd on regtest: the process, its JSON-RPC client and the chain handle.

btcd's RPC is JSON-RPC over HTTPS with basic auth; TLS is mandatory for LND,
so the lab lets btcd generate its own certificate and trusts exactly that
file. Blocks are mined with btcd's ``generate`` (it pays ``--miningaddr``,
which the lab sets to an address of its own faucet key).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.errors import NodeError, ProcessDied
from harness.runtime.base import NodeHandle, Runtime
from harness.runtime.ports import free_port
from harness.wait import wait_for

RPC_USER = "lab"
RPC_PASS = "lab"  # regtest only: the RPC listens on 127.0.0.1


class RpcError(NodeError):
    def __init__(self, method: str, code: int, message: str):
        self.method = method
        self.code = code
        super().__init__(f"btcd {method}: {message} (code {code})")


class BtcdRpc:
    """Minimal JSON-RPC client for btcd (httpx, verified against btcd's own cert)."""

    def __init__(self, host: str, port: int, cert: Path, user: str = RPC_USER, password: str = RPC_PASS):
        self.url = f"https://{host}:{port}/"
        self.cert = cert
        self._ids = itertools.count(1)
        self._client: httpx.Client | None = None
        self._auth = (user, password)

    def _http(self) -> httpx.Client:
        if self._client is None:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.cert))
            # btcd's self-signed cert names the host and 127.0.0.1; hostname
            # checks stay on.
            self._client = httpx.Client(verify=ctx, auth=self._auth, timeout=30.0)
        return self._client

    def call(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "1.0", "id": next(self._ids), "method": method, "params": list(params)}
        resp = self._http().post(self.url, json=body)
        if resp.status_code == 401:
            raise RpcError(method, 401, "unauthorized")
        data = resp.json()
        if data.get("error"):
            err = data["error"]
            raise RpcError(method, int(err.get("code", -1)), str(err.get("message")))
        return data["result"]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass
class BtcdConfig:
    binary: Path
    datadir: Path
    mining_address: str
    rpc_port: int = 0
    p2p_port: int = 0
    # 127.0.0.1 for processes; 0.0.0.0 inside a container (published on 127.0.0.1).
    listen_host: str = "127.0.0.1"

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


class Btcd:
    """A running btcd and the chain operations tests use."""

    def __init__(self, config: BtcdConfig, runtime: Runtime):
        self.config = config
        self.runtime = runtime
        self.proc: NodeHandle | None = None
        self.rpc = BtcdRpc("127.0.0.1", config.rpc_port, config.cert)

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        self.config.datadir.mkdir(parents=True, exist_ok=True)
        self.proc = self.runtime.start(
            "btcd", self.config.argv(), log_path=self.config.log_path, publish=[self.config.rpc_port]
        )

        def ready() -> bool:
            if self.proc is not None and not self.proc.is_running():
                raise ProcessDied(f"btcd exited with code {self.proc.returncode()}; see {self.config.log_path}")
            if not self.config.cert.exists():
                return False
            self.rpc.call("getblockcount")
            return True

        wait_for(ready, what="btcd RPC to answer", timeout_s="BTCD_READY", log=self.config.log_path)

    def stop(self) -> None:
        self.rpc.close()
        if self.proc is not None:
            self.proc.stop()

    @property
    def cert_pem(self) -> bytes:
        return self.config.cert.read_bytes()

    # -- chain ops ---------------------------------------------------------
    def height(self) -> int:
        return int(self.rpc.call("getblockcount"))

    def tip(self) -> tuple[int, str]:
        """(height, block hash) of the best block."""
        info = self.rpc.call("getblockchaininfo")
        return int(info["blocks"]), str(info["bestblockhash"])

    def mine(self, n: int = 1) -> list[str]:
        """Mine ``n`` blocks (to the faucet) and return their hashes."""
        if n <= 0:
            return []
        hashes: list[str] = []
        # btcd's generate is synchronous; large batches are chunked so a
        # single RPC never runs into the HTTP timeout.
        while len(hashes) < n:
            hashes += self.rpc.call("generate", min(200, n - len(hashes)))
        return hashes

    def mempool(self) -> list[str]:
        return list(self.rpc.call("getrawmempool"))

    def block(self, block_hash: str) -> dict[str, Any]:
        return dict(self.rpc.call("getblock", block_hash, 2))

    def block_hash(self, height: int) -> str:
        return str(self.rpc.call("getblockhash", height))

    def raw_tx(self, txid: str) -> dict[str, Any]:
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

        wait_for(seen, what=f"transaction {txid} to reach btcd", timeout_s=timeout_s)

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
