"""chainrpc.ChainNotifier (confirmations, spends, blocks) and chainrpc.ChainKit (raw blocks, tip).

Wrappers over an existing ``LndClient`` connection (composition, so the
client's class stays as it is): ``ChainNotifier(lnd)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from lncore.lnd.base import RpcBase
from lncore.lnd.types import txid_from_bytes, txid_to_bytes


@dataclass(frozen=True)
class Confirmation:
    raw_tx: bytes
    block_height: int
    block_hash: str


@dataclass(frozen=True)
class Spend:
    raw_spending_tx: bytes
    spending_txid: str
    spending_input_index: int
    spending_height: int


class ChainNotifier:
    def __init__(self, lnd: RpcBase):
        self._lnd = lnd
        self._pb = lnd.pb
        self._stub = lnd.pb.chainnotifier_grpc.ChainNotifierStub(lnd._channel)
        self._kit = lnd.pb.chainkit_grpc.ChainKitStub(lnd._channel)

    async def confirmations(
        self, script_pubkey: bytes, *, num_confs: int, height_hint: int, txid: str | None = None
    ) -> AsyncIterator[Confirmation | None]:
        """RegisterConfirmationsNtfn: yields a Confirmation once the tx (or, without ``txid``, the first
        tx paying ``script_pubkey``) has ``num_confs``; yields None on a reorg that undid it."""
        req = self._pb.chainnotifier.ConfRequest(
            txid=txid_to_bytes(txid) if txid else b"\x00" * 32,
            script=script_pubkey,
            num_confs=num_confs,
            height_hint=height_hint,
        )
        async for ev in self._lnd._stream(self._stub.RegisterConfirmationsNtfn, req, rpc="RegisterConfirmationsNtfn"):
            if ev.HasField("conf"):
                yield Confirmation(
                    bytes(ev.conf.raw_tx), int(ev.conf.block_height), txid_from_bytes(ev.conf.block_hash)
                )
            elif ev.HasField("reorg"):
                yield None

    async def spend(self, txid: str, vout: int, script_pubkey: bytes, *, height_hint: int) -> Spend:
        """RegisterSpendNtfn: returns once the outpoint is spent in a block (LND watches blocks, not its mempool)."""
        req = self._pb.chainnotifier.SpendRequest(
            outpoint=self._pb.chainnotifier.Outpoint(hash=txid_to_bytes(txid), index=vout),
            script=script_pubkey,
            height_hint=height_hint,
        )
        async for ev in self._lnd._stream(self._stub.RegisterSpendNtfn, req, rpc="RegisterSpendNtfn"):
            if ev.HasField("spend"):
                d = ev.spend
                return Spend(
                    bytes(d.raw_spending_tx),
                    txid_from_bytes(d.spending_tx_hash),
                    int(d.spending_input_index),
                    int(d.spending_height),
                )
        raise RuntimeError("RegisterSpendNtfn stream ended without a spend")

    async def block_epochs(self) -> AsyncIterator[int]:
        """RegisterBlockEpochNtfn: the current tip height first, then every new block's height."""
        req = self._pb.chainnotifier.BlockEpoch()
        async for ev in self._lnd._stream(self._stub.RegisterBlockEpochNtfn, req, rpc="RegisterBlockEpochNtfn"):
            yield int(ev.height)

    async def best_block(self) -> tuple[str, int]:
        resp: Any = await self._lnd._unary(
            self._kit.GetBestBlock, self._pb.chainkit.GetBestBlockRequest(), rpc="GetBestBlock"
        )
        return txid_from_bytes(resp.block_hash), int(resp.block_height)

    async def block_hash(self, height: int) -> str:
        resp: Any = await self._lnd._unary(
            self._kit.GetBlockHash, self._pb.chainkit.GetBlockHashRequest(block_height=height), rpc="GetBlockHash"
        )
        return txid_from_bytes(resp.block_hash)

    async def raw_block(self, block_hash: str) -> bytes:
        resp: Any = await self._lnd._unary(
            self._kit.GetBlock, self._pb.chainkit.GetBlockRequest(block_hash=txid_to_bytes(block_hash)), rpc="GetBlock"
        )
        return bytes(resp.raw_block)
