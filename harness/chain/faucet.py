"""The lab's faucet: a regtest key held in Python that blocks are mined to.

Holding the mining key in Python (instead of in an LND wallet) means no
extra LND process per lab and funding a whole network is one signed
transaction with an output per node and channel. Transactions are built and
signed with embit.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from embit import ec, script
from embit.networks import NETWORKS
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from harness.errors import LabError

if TYPE_CHECKING:
    from harness.chain.base import ChainBackend

REGTEST = NETWORKS["regtest"]
COIN = 100_000_000
COINBASE_MATURITY = 100
FEE_RATE_SAT_VB = 2
# Mature 50 BTC coinbases the faucet collects at start (1,000 BTC).
FAUCET_COINBASES = 20


def throwaway_address() -> str:
    """A fresh regtest address nobody keeps the key of (blocks mined to it are burnt)."""
    return str(script.p2wpkh(ec.PrivateKey(secrets.token_bytes(32)).get_public_key()).address(REGTEST))


@dataclass(frozen=True)
class Utxo:
    txid: str
    vout: int
    value_sat: int
    height: int = 0


class Faucet:
    """A deterministic regtest key (never for real money) and its coins."""

    def __init__(self, seed: bytes = b"lightning-lab regtest faucet"):
        self.key = ec.PrivateKey(hashlib.sha256(seed).digest())
        self.pub = self.key.get_public_key()
        self.script_pubkey = script.p2wpkh(self.pub)
        self.address = self.script_pubkey.address(REGTEST)

    def coinbase_utxos(
        self, chain: ChainBackend, tip_height: int, *, start: int = 1, limit: int = 1000
    ) -> list[Utxo]:
        """Up to ``limit`` mature coinbase outputs paying the faucet, from height ``start``."""
        spk = self.script_pubkey.data.hex()
        found: list[Utxo] = []
        for h in range(start, tip_height - COINBASE_MATURITY + 1):
            blk = chain.block(chain.block_hash(h))
            # btcd names the decoded transactions ``rawtx``, Core ``tx``.
            first = (blk.get("rawtx") or blk["tx"])[0]
            cb = first if isinstance(first, dict) else chain.raw_tx(first)
            for out in cb["vout"]:
                if out["scriptPubKey"]["hex"] == spk:
                    found.append(Utxo(cb["txid"], int(out["n"]), round(float(out["value"]) * COIN), h))
            if len(found) >= limit:
                break
        return found

    def build_funding_tx(self, utxos: list[Utxo], outputs: list[tuple[str, int]]) -> tuple[str, str, Utxo | None]:
        """Sign a transaction paying ``outputs`` [(address, sat)] from ``utxos``.

        Spends just enough of ``utxos`` (in order) and returns
        (txid, raw hex, change utxo or None). Change goes back to the faucet.
        """
        need = sum(v for _, v in outputs)
        chosen: list[Utxo] = []
        total = 0
        for u in utxos:
            chosen.append(u)
            total += u.value_sat
            if total >= need + self._fee(len(chosen), len(outputs) + 1):
                break
        fee = self._fee(len(chosen), len(outputs) + 1)
        if total < need + fee:
            raise LabError(
                f"faucet has {total} sat in {len(utxos)} mature coinbase outputs; "
                f"{need + fee} sat needed to fund the network (lower on-chain balances or capacities)"
            )
        vin = [TransactionInput(bytes.fromhex(u.txid), u.vout) for u in chosen]
        vout = [TransactionOutput(v, script.address_to_scriptpubkey(addr)) for addr, v in outputs]
        change = total - need - fee
        if change > 1000:
            vout.append(TransactionOutput(change, self.script_pubkey))
        tx = Transaction(vin=vin, vout=vout)
        self.sign(tx, chosen)
        txid = tx.txid().hex()
        change_utxo = Utxo(txid, len(vout) - 1, change) if change > 1000 else None
        return txid, tx.serialize().hex(), change_utxo

    def sign(self, tx: Transaction, spent: list[Utxo]) -> None:
        """Sign every input of ``tx`` (spending ``spent``, in order: outputs paying the faucet)."""
        code = script.p2pkh(self.pub)
        for i, u in enumerate(spent):
            h = tx.sighash_segwit(i, code, u.value_sat)
            sig = self.key.sign(h).serialize() + bytes([SIGHASH.ALL])
            tx.vin[i].witness = script.Witness([sig, self.pub.sec()])

    @staticmethod
    def _fee(n_in: int, n_out: int) -> int:
        vbytes = 11 + 68 * n_in + 43 * n_out
        return vbytes * FEE_RATE_SAT_VB
