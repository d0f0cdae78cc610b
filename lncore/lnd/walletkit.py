"""walletrpc.WalletKit: fee estimates, publishing transactions, paying outputs from LND's wallet,
new addresses, outputs received at an address, sweeping given outputs, labelled transactions.
Composition over an ``LndClient`` connection: ``WalletKit(lnd)``."""

from __future__ import annotations

from typing import Any

from lncore.errors import LndError
from lncore.lnd.base import RpcBase


class WalletKit:
    def __init__(self, lnd: RpcBase):
        self._lnd = lnd
        self._pb = lnd.pb
        self._stub = lnd.walletkit_stub

    async def estimate_fee_sat_per_kw(self, conf_target: int = 6) -> int:
        """EstimateFee; never below LND's min relay fee (the estimate can be, on an idle regtest chain)."""
        resp: Any = await self._lnd._unary(
            self._stub.EstimateFee, self._pb.walletkit.EstimateFeeRequest(conf_target=conf_target), rpc="EstimateFee"
        )
        return max(int(resp.sat_per_kw), int(resp.min_relay_fee_sat_per_kw))

    async def publish(self, tx_hex: str, *, label: str = "") -> None:
        """PublishTransaction; an already-known transaction is success (rebroadcast after a restart)."""
        req = self._pb.walletkit.Transaction(tx_hex=bytes.fromhex(tx_hex), label=label)
        try:
            resp: Any = await self._lnd._unary(self._stub.PublishTransaction, req, rpc="PublishTransaction")
        except LndError as exc:
            if _already_known(exc.message):
                return
            raise
        if resp.publish_error and not _already_known(resp.publish_error):
            raise LndError(resp.publish_error, grpc_code="PUBLISH", rpc="PublishTransaction")

    async def send_outputs(
        self, outputs: list[tuple[bytes, int]], *, sat_per_kw: int, label: str = "", min_confs: int = 1
    ) -> bytes:
        """SendOutputs: pay [(script_pubkey, sat)] from LND's wallet; returns the signed, broadcast raw tx."""
        req = self._pb.walletkit.SendOutputsRequest(
            sat_per_kw=sat_per_kw,
            outputs=[self._pb.signer.TxOut(value=v, pk_script=spk) for spk, v in outputs],
            label=label,
            min_confs=min_confs,
            spend_unconfirmed=min_confs == 0,
        )
        resp: Any = await self._lnd._unary(self._stub.SendOutputs, req, rpc="SendOutputs", timeout=120)
        return bytes(resp.raw_tx)

    async def _transactions(self, start_height: int) -> list[Any]:
        req = self._pb.ln.GetTransactionsRequest(start_height=start_height, end_height=-1)
        resp: Any = await self._lnd._unary(self._lnd.lightning_stub.GetTransactions, req, rpc="GetTransactions")
        return list(resp.transactions)

    async def find_labeled(self, label: str, *, start_height: int) -> bytes | None:
        """The raw transaction LND's wallet recorded under ``label`` since ``start_height`` (mempool included)."""
        for t in await self._transactions(start_height):
            if t.label == label and t.raw_tx_hex:
                return bytes.fromhex(t.raw_tx_hex)
        return None

    async def labeled_txid(self, label: str) -> str | None:
        """The txid of the wallet transaction recorded under ``label`` (e.g. a sweep made before a restart)."""
        return next((str(t.tx_hash) for t in await self._transactions(0) if t.label == label), None)

    async def tx_confirmations(self, txid: str) -> int | None:
        """Confirmations of a wallet transaction (0 in the mempool); None if the wallet does not know it."""
        return next((int(t.num_confirmations) for t in await self._transactions(0) if t.tx_hash == txid), None)

    async def unspent(self, *, min_confs: int) -> list[tuple[str, int, str]]:
        """Unspent outputs of LND's wallet with at least ``min_confs`` confirmations, as
        ("txid:vout", sat, address)."""
        req = self._pb.ln.ListUnspentRequest(min_confs=min_confs, max_confs=2**31 - 1)
        resp: Any = await self._lnd._unary(self._lnd.lightning_stub.ListUnspent, req, rpc="ListUnspent")
        return [
            (f"{u.outpoint.txid_str}:{u.outpoint.output_index}", int(u.amount_sat), str(u.address))
            for u in resp.utxos
        ]

    async def sweep_to(self, address: str, outpoints: list[str], *, label: str) -> str:
        """Send exactly these outputs of LND's wallet, minus the miner fee (6-block target), to
        ``address``; returns the txid."""
        ops = []
        for op in outpoints:
            txid, vout = op.rsplit(":", 1)
            ops.append(self._pb.ln.OutPoint(txid_str=txid, output_index=int(vout)))
        req = self._pb.ln.SendCoinsRequest(addr=address, send_all=True, outpoints=ops, label=label, target_conf=6)
        resp: Any = await self._lnd._unary(self._lnd.lightning_stub.SendCoins, req, rpc="SendCoins", timeout=120)
        return str(resp.txid)

    async def confirmed_height(self, txid: str, *, start_height: int) -> int | None:
        """The block height of one of the wallet's own transactions, None while it is unconfirmed."""
        for t in await self._transactions(start_height):
            if t.tx_hash == txid and t.num_confirmations > 0:
                return int(t.block_height)
        return None

    async def new_address(self) -> str:
        """A fresh P2WPKH address of LND's wallet (where claims and refunds are swept)."""
        req = self._pb.ln.NewAddressRequest(type=self._pb.ln.AddressType.Value("WITNESS_PUBKEY_HASH"))
        resp: Any = await self._lnd._unary(self._lnd.lightning_stub.NewAddress, req, rpc="NewAddress")
        return str(resp.address)


def _already_known(message: str) -> bool:
    m = message.lower()
    return (
        "already have transaction" in m
        or "txn-already-in-mempool" in m
        or "already exists" in m
        or ("transaction already" in m)
    )
