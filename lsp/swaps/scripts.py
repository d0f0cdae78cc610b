"""The swap HTLC: Boltz's legacy P2WSH script, built byte by byte.

    OP_HASH160 <RIPEMD160(payment_hash)> OP_EQUAL
    OP_IF
        <claim_pubkey>
    OP_ELSE
        <timeout_height> OP_CHECKLOCKTIMEVERIFY OP_DROP
        <refund_pubkey>
    OP_ENDIF
    OP_CHECKSIG

``payment_hash`` is the Lightning payment hash, SHA256(preimage), so the 20
bytes in the script are RIPEMD160(SHA256(preimage)) = HASH160(preimage): the
claimer reveals the 32-byte preimage itself and OP_HASH160 recomputes exactly
those 20 bytes. This is what Boltz's ``swapScript`` does (it pushes
``ripemd160(preimageHash)``). Spending paths:

- claim:  witness ``[sig(claim_key), preimage, script]``
- refund: witness ``[sig(refund_key), <empty>, script]`` with nLockTime >= timeout_height
  (the empty item hashes to something else, so OP_EQUAL is false and the ELSE runs).

embit has no opcode table or script-number encoder; both are a few lines and
kept here. Addresses and scriptPubKeys come from embit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from embit import script as escript
from embit.networks import NETWORKS

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_IF = 0x63
OP_ELSE = 0x67
OP_ENDIF = 0x68
OP_DROP = 0x75
OP_EQUAL = 0x87
OP_HASH160 = 0xA9
OP_CHECKSIG = 0xAC
OP_CHECKLOCKTIMEVERIFY = 0xB1

# Heights below this are block heights for nLockTime/CLTV; above, Unix times.
LOCKTIME_THRESHOLD = 500_000_000


class ScriptError(ValueError):
    """A script that is not the swap HTLC, or swap parameters that cannot make one."""


def ripemd160(data: bytes) -> bytes:
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError:  # OpenSSL 3 may disable ripemd160; embit carries a pure-Python one
        from embit.util import py_ripemd160

        return bytes(py_ripemd160.ripemd160(data))


def hash160(data: bytes) -> bytes:
    return ripemd160(hashlib.sha256(data).digest())


def script_num(n: int) -> bytes:
    """Minimal little-endian sign-magnitude encoding (CScriptNum) of a non-negative int."""
    if n < 0:
        raise ScriptError("negative script number")
    out = bytearray()
    while n:
        out.append(n & 0xFF)
        n >>= 8
    if out and out[-1] & 0x80:
        out.append(0)
    return bytes(out)


def push(data: bytes) -> bytes:
    if len(data) < OP_PUSHDATA1:
        return bytes([len(data)]) + data
    if len(data) <= 0xFF:
        return bytes([OP_PUSHDATA1, len(data)]) + data
    raise ScriptError("push too large")


def push_int(n: int) -> bytes:
    # Heights are always > 16 on any real chain, but encode 0..16 minimally anyway.
    if n == 0:
        return bytes([OP_0])
    if 1 <= n <= 16:
        return bytes([0x50 + n])
    return push(script_num(n))


def _check_pubkey(pub: bytes, name: str) -> None:
    if len(pub) != 33 or pub[0] not in (2, 3):
        raise ScriptError(f"{name} must be a 33-byte compressed public key")


def swap_script(payment_hash: bytes, claim_pubkey: bytes, refund_pubkey: bytes, timeout_height: int) -> bytes:
    if len(payment_hash) != 32:
        raise ScriptError("payment_hash must be 32 bytes")
    _check_pubkey(claim_pubkey, "claim_pubkey")
    _check_pubkey(refund_pubkey, "refund_pubkey")
    if not 0 < timeout_height < LOCKTIME_THRESHOLD:
        raise ScriptError("timeout_height must be a block height (0 < h < 500000000)")
    return b"".join(
        [
            bytes([OP_HASH160]),
            push(ripemd160(payment_hash)),
            bytes([OP_EQUAL, OP_IF]),
            push(claim_pubkey),
            bytes([OP_ELSE]),
            push_int(timeout_height),
            bytes([OP_CHECKLOCKTIMEVERIFY, OP_DROP]),
            push(refund_pubkey),
            bytes([OP_ENDIF, OP_CHECKSIG]),
        ]
    )


@dataclass(frozen=True)
class SwapScript:
    hash160: bytes
    claim_pubkey: bytes
    refund_pubkey: bytes
    timeout_height: int


def _read_push(s: bytes, i: int) -> tuple[bytes, int]:
    op = s[i]
    if 1 <= op < OP_PUSHDATA1:
        return s[i + 1 : i + 1 + op], i + 1 + op
    if op == OP_PUSHDATA1:
        n = s[i + 1]
        return s[i + 2 : i + 2 + n], i + 2 + n
    raise ScriptError(f"expected a push at byte {i}")


def parse_swap_script(s: bytes) -> SwapScript:
    """Decode a script and check it is exactly the swap HTLC (what a client verifies before funding)."""
    try:
        if s[0] != OP_HASH160:
            raise ScriptError("not a swap script: must start with OP_HASH160")
        h, i = _read_push(s, 1)
        if s[i : i + 2] != bytes([OP_EQUAL, OP_IF]):
            raise ScriptError("not a swap script: OP_EQUAL OP_IF expected")
        claim, i = _read_push(s, i + 2)
        if s[i] != OP_ELSE:
            raise ScriptError("not a swap script: OP_ELSE expected")
        t, i = _read_push(s, i + 1)
        if s[i : i + 2] != bytes([OP_CHECKLOCKTIMEVERIFY, OP_DROP]):
            raise ScriptError("not a swap script: OP_CHECKLOCKTIMEVERIFY OP_DROP expected")
        refund, i = _read_push(s, i + 2)
        if s[i:] != bytes([OP_ENDIF, OP_CHECKSIG]):
            raise ScriptError("not a swap script: OP_ENDIF OP_CHECKSIG expected at the end")
    except IndexError:
        raise ScriptError("not a swap script: truncated") from None
    timeout = int.from_bytes(t, "little")
    parsed = SwapScript(h, claim, refund, timeout)
    if len(h) != 20 or script_num(timeout) != t:
        raise ScriptError("not a swap script: bad hash or non-minimal timeout")
    _check_pubkey(claim, "claim_pubkey")
    _check_pubkey(refund, "refund_pubkey")
    return parsed


def p2wsh_script_pubkey(witness_script: bytes) -> bytes:
    return bytes(escript.p2wsh(escript.Script(witness_script)).data)


def embit_network(network: str) -> dict[str, object]:
    """embit's parameters for an LSP network name (signet shares testnet's address prefix)."""
    name = "main" if network == "mainnet" else "test" if network in ("testnet", "signet") else "regtest"
    return NETWORKS[name]  # type: ignore[no-any-return]


def p2wsh_address(witness_script: bytes, network: str) -> str:
    return str(escript.p2wsh(escript.Script(witness_script)).address(embit_network(network)))


def preimage_matches(preimage: bytes, payment_hash: bytes) -> bool:
    return len(preimage) == 32 and hashlib.sha256(preimage).digest() == payment_hash
