"""Chain backends behind one interface (``ChainBackend``): Bitcoin Core
(``bitcoind``, the default) and ``btcd``; the lab's faucet and fee service."""

from __future__ import annotations

from pathlib import Path

from harness.chain.base import CHAINS, RPC_PASS, RPC_USER, ChainBackend
from harness.chain.rpc import RpcError
from harness.errors import LabError, ToolchainError
from harness.runtime.base import Runtime
from harness.toolchain.build import Toolchain

__all__ = ["CHAINS", "RPC_PASS", "RPC_USER", "ChainBackend", "RpcError", "make_chain"]


def make_chain(kind: str, *, toolchain: Toolchain, datadir: Path, runtime: Runtime, mining_address: str) -> ChainBackend:
    """The (not yet started) backend ``kind`` for a lab, with ports of its own."""
    if kind == "bitcoind":
        from harness.chain.bitcoind import Bitcoind, BitcoindConfig

        if not toolchain.bitcoind.exists():
            raise ToolchainError(f"bitcoind is not built ({toolchain.bitcoind} is missing): run `lab setup` first")
        cfg = BitcoindConfig(
            binary=toolchain.bitcoind,
            datadir=datadir,
            listen_host=runtime.listen_host,
            peer_host=runtime.peer_host("bitcoind"),
        )
        return Bitcoind(cfg, runtime, mining_address=mining_address)
    if kind == "btcd":
        from harness.chain.btcd import Btcd, BtcdConfig

        if not toolchain.btcd.exists():
            raise ToolchainError(f"btcd is not built ({toolchain.btcd} is missing): run `lab setup` first")
        bcfg = BtcdConfig(
            binary=toolchain.btcd,
            datadir=datadir,
            mining_address=mining_address,
            listen_host=runtime.listen_host,
            peer_host=runtime.peer_host("btcd"),
        )
        return Btcd(bcfg, runtime)
    raise LabError(f"unknown chain backend {kind!r} (expected one of: {', '.join(CHAINS)})")
