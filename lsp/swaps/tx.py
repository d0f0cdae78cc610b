"""Claim and refund transactions that spend the swap HTLC (one input, one output), signed with embit.

Fee = ceil(vsize x rate). The vsize is measured on the real transaction shape
with a 73-byte (worst case DER + sighash byte) placeholder signature, so the
fee never undershoots the rate; the real signature is at most that long.

A refund sets nLockTime = timeout_height and nSequence = 0xFFFFFFFE: CLTV
needs a non-final sequence for nLockTime to be enforced, and 0xFFFFFFFE does
not signal replace-by-fee (BIP 125), which the claim does not need either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from embit import ec
from embit.script import Script, Witness
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

DUST_LIMIT_SAT = 330  # P2WPKH/P2TR outputs below this are non-standard (Bitcoin Core's dust relay rule)
SEQUENCE_FINAL = 0xFFFFFFFF
SEQUENCE_LOCKTIME = 0xFFFFFFFE
PLACEHOLDER_SIG = b"\x30" + b"\x00" * 71 + b"\x01"  # 73 bytes


class TxBuildError(ValueError):
    """The output cannot pay the fee (or would be dust)."""


@dataclass(frozen=True)
class SignedTx:
    txid: str
    hex: str
    fee_sat: int
    vsize: int
    value_sat: int  # what the output receives


def vsize_of(tx: Transaction) -> int:
    full = len(tx.serialize())
    stripped = Transaction(version=tx.version, vin=[], vout=tx.vout, locktime=tx.locktime)
    stripped.vin = [TransactionInput(i.txid, i.vout, script_sig=i.script_sig, sequence=i.sequence) for i in tx.vin]
    base = len(stripped.serialize())
    return math.ceil((3 * base + full) / 4)


def sat_per_kw_to_vb(sat_per_kw: int) -> float:
    """LND quotes sat per 1000 weight units; 1 vbyte = 4 weight units."""
    return sat_per_kw * 4 / 1000


def _unsigned(
    lockup_txid: str, lockup_vout: int, dest_script_pubkey: bytes, value: int, *, locktime: int, sequence: int
) -> Transaction:
    vin = [TransactionInput(bytes.fromhex(lockup_txid), lockup_vout, sequence=sequence)]
    vout = [TransactionOutput(value, Script(dest_script_pubkey))]
    return Transaction(version=2, vin=vin, vout=vout, locktime=locktime)


def spend_vsize(witness_script: bytes, dest_script_pubkey: bytes, *, claim: bool) -> int:
    """The vsize of a claim (``claim``) or refund spending ``witness_script`` to ``dest_script_pubkey``."""
    tx = _unsigned("00" * 32, 0, dest_script_pubkey, 0, locktime=0, sequence=SEQUENCE_FINAL)
    tx.vin[0].witness = Witness([PLACEHOLDER_SIG, b"\x00" * 32 if claim else b"", witness_script])
    return vsize_of(tx)


def fee_for(vsize: int, sat_per_vb: float) -> int:
    return math.ceil(vsize * sat_per_vb)


def build_spend(
    *,
    lockup_txid: str,
    lockup_vout: int,
    lockup_value_sat: int,
    witness_script: bytes,
    key: ec.PrivateKey,
    dest_script_pubkey: bytes,
    sat_per_vb: float,
    preimage: bytes | None = None,
    timeout_height: int | None = None,
) -> SignedTx:
    """Claim (give ``preimage``) or refund (give ``timeout_height``) the HTLC output to ``dest_script_pubkey``."""
    if (preimage is None) == (timeout_height is None):
        raise TxBuildError("give exactly one of preimage (claim) or timeout_height (refund)")
    claim = preimage is not None
    vsize = spend_vsize(witness_script, dest_script_pubkey, claim=claim)
    fee = fee_for(vsize, sat_per_vb)
    value = lockup_value_sat - fee
    if value < DUST_LIMIT_SAT:
        raise TxBuildError(f"output {lockup_value_sat} sat cannot pay a {fee} sat fee and stay above dust")
    locktime = 0 if claim else int(timeout_height or 0)
    sequence = SEQUENCE_FINAL if claim else SEQUENCE_LOCKTIME
    tx = _unsigned(lockup_txid, lockup_vout, dest_script_pubkey, value, locktime=locktime, sequence=sequence)
    h = tx.sighash_segwit(0, Script(witness_script), lockup_value_sat)
    sig = key.sign(h).serialize() + bytes([SIGHASH.ALL])
    tx.vin[0].witness = Witness([sig, preimage if claim else b"", witness_script])
    return SignedTx(tx.txid().hex(), tx.serialize().hex(), fee, vsize_of(tx), value)


def parse(raw: bytes | str) -> Transaction:
    return Transaction.parse(bytes.fromhex(raw) if isinstance(raw, str) else raw)


def outputs_to(tx: Transaction, script_pubkey: bytes) -> list[tuple[int, int]]:
    """[(vout, value)] of ``tx``'s outputs paying ``script_pubkey``."""
    return [(i, int(o.value)) for i, o in enumerate(tx.vout) if bytes(o.script_pubkey.data) == script_pubkey]


def spends(tx: Transaction, txid: str, vout: int) -> int | None:
    """The index of the input of ``tx`` that spends txid:vout, or None."""
    for i, inp in enumerate(tx.vin):
        if inp.txid.hex() == txid and inp.vout == vout:
            return i
    return None


def witness_preimage(tx: Transaction, input_index: int) -> bytes | None:
    """The preimage revealed by a claim spend of the HTLC (witness item 1), None for a refund."""
    items = tx.vin[input_index].witness.items
    if len(items) == 3 and len(items[1]) == 32:
        return bytes(items[1])
    return None


def signals_rbf(tx: Transaction) -> bool:
    return any(i.sequence < SEQUENCE_LOCKTIME for i in tx.vin)
