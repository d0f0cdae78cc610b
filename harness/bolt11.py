"""A minimal BOLT11 encoder for invoices signed with a key the harness holds (regtest only).

The LSPS2 lab client issues invoices for a *virtual* payee behind the client
node (see harness/lsps_client.py), so no LND node can sign them. Only the
fields that client needs are supported: payment hash and secret,
description, expiry, min_final_cltv_expiry, route hints and features.
Decoding is left to LND (``DecodePayReq``), which also checks our encoding.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from embit.bech32 import CHARSET, Encoding, bech32_create_checksum, convertbits
from embit.util import secp256k1

HRP_REGTEST = "lnbcrt"

# Feature bits: var_onion_optin (8, required), payment_secret (14, required), basic_mpp (17, optional).
FEATURES = (8, 14, 17)


@dataclass(frozen=True)
class HopHint:
    node_id: str
    scid: int
    fee_base_msat: int = 0
    fee_ppm: int = 0
    cltv_delta: int = 40

    def to_bytes(self) -> bytes:
        return (
            bytes.fromhex(self.node_id)
            + self.scid.to_bytes(8, "big")
            + self.fee_base_msat.to_bytes(4, "big")
            + self.fee_ppm.to_bytes(4, "big")
            + self.cltv_delta.to_bytes(2, "big")
        )


def _int_words(value: int) -> list[int]:
    words: list[int] = []
    while value:
        words.insert(0, value & 31)
        value >>= 5
    return words or [0]


def _bytes_words(data: bytes) -> list[int]:
    out = convertbits(list(data), 8, 5, True)
    assert out is not None
    return list(out)


def _field(tag: int, words: list[int]) -> list[int]:
    return [tag, len(words) >> 5, len(words) & 31, *words]


def _feature_words(bits: tuple[int, ...]) -> list[int]:
    value = 0
    for b in bits:
        value |= 1 << b
    return _int_words(value)


def pubkey_of(secret: bytes) -> str:
    return bytes(secp256k1.ec_pubkey_serialize(secp256k1.ec_pubkey_create(secret))).hex()


def encode_invoice(
    *,
    secret_key: bytes,
    payment_hash: bytes,
    payment_secret: bytes,
    amount_msat: int,
    description: str,
    route: list[HopHint],
    expiry_s: int = 3600,
    min_final_cltv: int = 40,
    timestamp: int | None = None,
) -> str:
    """A signed regtest invoice; ``route`` is ONE route hint (its hops in order)."""
    ts = int(time.time()) if timestamp is None else timestamp
    hrp = f"{HRP_REGTEST}{amount_msat * 10}p"  # pico-bitcoin: 1 msat = 10 p, always exact
    ts_words = [(ts >> (5 * (6 - i))) & 31 for i in range(7)]
    data = ts_words
    data += _field(1, _bytes_words(payment_hash))
    data += _field(16, _bytes_words(payment_secret))
    data += _field(13, _bytes_words(description.encode()))
    data += _field(6, _int_words(expiry_s))
    data += _field(24, _int_words(min_final_cltv))
    if route:
        data += _field(3, _bytes_words(b"".join(h.to_bytes() for h in route)))
    data += _field(5, _feature_words(FEATURES))
    signing_bytes = bytes(convertbits(data, 5, 8, True) or [])
    digest = hashlib.sha256(hrp.encode() + signing_bytes).digest()
    sig = secp256k1.ecdsa_sign_recoverable(digest, secret_key)
    compact, recid = secp256k1.ecdsa_recoverable_signature_serialize_compact(sig)
    data += _bytes_words(bytes(compact) + bytes([recid]))
    checksum = bech32_create_checksum(Encoding.BECH32, hrp, data)
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)
