"""The swap HTLC as a client checks and spends it, written for the lab from the published template.

The LSP builds its swap scripts and spends in ``lsp/swaps``; the lab must not check the
LSP with the LSP's own code (a wrong formula would pass its own test), so this module
builds the expected script from Boltz's legacy P2WSH template as documented
(docs/SWAPS.md), with embit's ``Script`` and opcode values from Bitcoin's opcode table,
and signs spends with embit's BIP143 sighash. The chain backend accepting the spend is the
final judge.

    OP_HASH160 <HASH160(preimage) = RIPEMD160(payment_hash)> OP_EQUAL
    OP_IF <claim_pubkey> OP_ELSE <timeout_height> OP_CHECKLOCKTIMEVERIFY OP_DROP <refund_pubkey> OP_ENDIF
    OP_CHECKSIG
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from embit import ec
from embit.networks import NETWORKS
from embit.script import Script, Witness, p2wsh
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

# Bitcoin's opcode table (script.h).
OPCODES = {
    "OP_IF": 0x63,
    "OP_ELSE": 0x67,
    "OP_ENDIF": 0x68,
    "OP_DROP": 0x75,
    "OP_EQUAL": 0x87,
    "OP_HASH160": 0xA9,
    "OP_CHECKSIG": 0xAC,
    "OP_CHECKLOCKTIMEVERIFY": 0xB1,
}
# A DER signature is at most 72 bytes, plus the sighash byte: the fee is sized for the longest.
MAX_SIG_LEN = 73
# Sequence numbers: final (no locktime) for a claim; one below final enables nLockTime for a refund.
SEQUENCE_FINAL = 0xFFFFFFFF
SEQUENCE_ENABLE_LOCKTIME = 0xFFFFFFFE


def _ripemd160(data: bytes) -> bytes:
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError:  # an OpenSSL 3 build without the legacy provider
        from embit.util import py_ripemd160

        return bytes(py_ripemd160.ripemd160(data))


def _data(item: bytes) -> bytes:
    """A direct push (every item in this script is shorter than 76 bytes)."""
    assert 0 < len(item) < 0x4C, len(item)
    return bytes([len(item)]) + item


def _number(n: int) -> bytes:
    """A positive script number: little-endian, with room for the sign bit (CScriptNum)."""
    assert n > 0, n
    return n.to_bytes((n.bit_length() + 8) // 8, "little")


def expected_script(payment_hash: bytes, claim_pubkey: bytes, refund_pubkey: bytes, timeout_height: int) -> bytes:
    """The script a client expects, item by item from the template above."""
    items: list[str | bytes] = [
        "OP_HASH160", _ripemd160(payment_hash), "OP_EQUAL",
        "OP_IF", claim_pubkey,
        "OP_ELSE", _number(timeout_height), "OP_CHECKLOCKTIMEVERIFY", "OP_DROP", refund_pubkey,
        "OP_ENDIF", "OP_CHECKSIG",
    ]  # fmt: skip
    return b"".join(bytes([OPCODES[i]]) if isinstance(i, str) else _data(i) for i in items)


def address_of(witness_script: bytes, network: str = "regtest") -> str:
    """The P2WSH address paying to ``witness_script`` (embit's bech32)."""
    return str(p2wsh(Script(witness_script)).address(NETWORKS[{"mainnet": "main", "testnet": "test"}.get(network, network)]))


@dataclass(frozen=True)
class Spend:
    txid: str
    hex: str
    fee_sat: int
    value_sat: int  # what the destination receives


def _vsize(tx: Transaction) -> int:
    full = len(tx.serialize())
    witnesses = [i.witness for i in tx.vin]
    for i in tx.vin:
        i.witness = Witness([])
    base = len(tx.serialize())
    for i, w in zip(tx.vin, witnesses, strict=True):
        i.witness = w
    return math.ceil((base * 3 + full) / 4)


def spend(
    *,
    outpoint: tuple[str, int],
    value_sat: int,
    witness_script: bytes,
    key: ec.PrivateKey,
    dest_script_pubkey: bytes,
    sat_per_vb: float,
    preimage: bytes | None,
    timeout_height: int | None,
) -> Spend:
    """Claim (with ``preimage``) or refund (at ``timeout_height``) the HTLC output ``outpoint``."""
    claim = preimage is not None
    tx = Transaction(
        version=2,
        vin=[TransactionInput(bytes.fromhex(outpoint[0]), outpoint[1],
                              sequence=SEQUENCE_FINAL if claim else SEQUENCE_ENABLE_LOCKTIME)],
        vout=[TransactionOutput(0, Script(dest_script_pubkey))],
        locktime=0 if claim else int(timeout_height or 0),
    )  # fmt: skip
    second = preimage if preimage is not None else b""
    tx.vin[0].witness = Witness([b"\x00" * MAX_SIG_LEN, second, witness_script])
    fee = math.ceil(_vsize(tx) * sat_per_vb)
    tx.vout[0].value = value_sat - fee
    digest = tx.sighash_segwit(0, Script(witness_script), value_sat, sighash=SIGHASH.ALL)
    signature = key.sign(digest).serialize() + bytes([SIGHASH.ALL])
    tx.vin[0].witness = Witness([signature, second, witness_script])
    return Spend(tx.txid().hex(), tx.serialize().hex(), fee, value_sat - fee)
