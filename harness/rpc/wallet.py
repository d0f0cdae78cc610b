"""``walletrpc.WalletKit``: UTXOs, addresses, fee estimates, raw transactions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from harness.rpc.base import Service


@dataclass(frozen=True)
class WalletUtxo:
    outpoint: str
    amount_sat: int
    confirmations: int
    address: str


class WalletRpc(Service):
    stub_factory = staticmethod(lambda s: s.walletkit_grpc.WalletKitStub)

    def list_unspent(self, *, min_confs: int = 0, max_confs: int = 9_999_999) -> list[WalletUtxo]:
        req = self.s.walletkit.ListUnspentRequest(min_confs=min_confs, max_confs=max_confs)
        return [
            WalletUtxo(
                f"{u.outpoint.txid_str}:{u.outpoint.output_index}", int(u.amount_sat), int(u.confirmations), u.address
            )
            for u in self._call("ListUnspent", req).utxos
        ]

    @contextmanager
    def leased(self, *, seconds: int = 300) -> Iterator[None]:
        """Lease every coin of the wallet (none can fund anything) for a with-block, then release
        them: ``with node.wallet.leased(): ...``"""
        w = self.s.walletkit
        lease_id = os.urandom(32)
        leased: list[Any] = []
        try:
            for u in self._call("ListUnspent", w.ListUnspentRequest(min_confs=0, max_confs=10**6)).utxos:
                self._call("LeaseOutput", w.LeaseOutputRequest(id=lease_id, outpoint=u.outpoint, expiration_seconds=seconds))
                leased.append(u.outpoint)
            yield
        finally:
            for op in leased:
                self._call("ReleaseOutput", w.ReleaseOutputRequest(id=lease_id, outpoint=op))

    def estimate_fee_sat_per_kw(self, conf_target: int = 6) -> int:
        return int(self._call("EstimateFee", self.s.walletkit.EstimateFeeRequest(conf_target=conf_target)).sat_per_kw)

    def publish(self, tx_hex: str, label: str = "") -> None:
        r = self._call("PublishTransaction", self.s.walletkit.Transaction(tx_hex=bytes.fromhex(tx_hex), label=label))
        if r.publish_error:
            raise RuntimeError(f"publish failed: {r.publish_error}")

    def submit_package(self, raw_txs: list[str], *, max_sat_per_vbyte: int | None = None) -> PackageResult:
        """Submit related transactions (parents first, the child last) for
        atomic acceptance (bitcoind's ``submitpackage``; LND's btcd backend refuses).
        ``max_sat_per_vbyte`` 0 lifts the per-transaction fee-rate ceiling."""
        req = self.s.walletkit.SubmitPackageRequest(raw_txs=[bytes.fromhex(t) for t in raw_txs])
        if max_sat_per_vbyte is not None:
            req.sat_per_vbyte = max_sat_per_vbyte
        r = self._call("SubmitPackage", req)
        return PackageResult(
            message=r.package_msg,
            errors={res.txid: res.error for res in r.tx_results.values() if res.error},
            txids=sorted(res.txid for res in r.tx_results.values()),
            replaced=list(r.replaced_transactions),
        )


@dataclass(frozen=True)
class PackageResult:
    message: str  # "success" when the whole package was accepted
    errors: dict[str, str]  # txid -> why it was rejected
    txids: list[str]
    replaced: list[str]
