"""``walletrpc.WalletKit``: UTXOs, addresses, fee estimates, raw transactions."""

from __future__ import annotations

import os
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

    def leased(self, *, seconds: int = 300) -> Leases:
        """Lease every coin of the wallet (none can fund anything) until the context ends:
        ``with node.wallet.leased(): ...``"""
        return Leases(self, seconds)

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


class Leases:
    """Every UTXO of a wallet leased (LeaseOutput) for the ``with`` block, released after it."""

    def __init__(self, wallet: WalletRpc, seconds: int):
        self.wallet, self.seconds = wallet, seconds
        self.id = os.urandom(32)
        self.outpoints: list[Any] = []

    def __enter__(self) -> Leases:
        s = self.wallet.s.walletkit
        utxos = self.wallet._call("ListUnspent", s.ListUnspentRequest(min_confs=0, max_confs=10**6)).utxos
        for u in utxos:
            req = s.LeaseOutputRequest(id=self.id, outpoint=u.outpoint, expiration_seconds=self.seconds)
            self.wallet._call("LeaseOutput", req)
            self.outpoints.append(u.outpoint)
        return self

    def __exit__(self, *exc: object) -> None:
        for op in self.outpoints:
            self.wallet._call("ReleaseOutput", self.wallet.s.walletkit.ReleaseOutputRequest(id=self.id, outpoint=op))


@dataclass(frozen=True)
class PackageResult:
    message: str  # "success" when the whole package was accepted
    errors: dict[str, str]  # txid -> why it was rejected
    txids: list[str]
    replaced: list[str]
