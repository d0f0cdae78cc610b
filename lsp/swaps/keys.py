"""The LSP's per-swap keys: derived from LSP_SECRET_KEY and the swap id, never stored in clear.

key = secp256k1 scalar from HMAC-SHA256(secret, "lsp-swap-key/v1/" + swap_id). The
swap row stores the public key; ``derive`` checks the derivation still gives it,
so a changed LSP_SECRET_KEY is detected (and named) before the LSP signs anything
with a key that cannot spend the output.
"""

from __future__ import annotations

import hashlib
import hmac

from embit import ec

# secp256k1 group order: a derived scalar must be in [1, n-1].
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class KeyMismatch(RuntimeError):
    """The stored public key is not what the current secret derives (LSP_SECRET_KEY changed)."""


def derive(secret: str, swap_id: str, *, expected_pubkey: str | None = None) -> ec.PrivateKey:
    counter = 0
    while True:
        msg = f"lsp-swap-key/v1/{swap_id}/{counter}".encode()
        d = int.from_bytes(hmac.new(secret.encode(), msg, hashlib.sha256).digest(), "big")
        if 0 < d < N:
            break
        counter += 1  # probability ~2^-128; kept so the function is total
    key = ec.PrivateKey(d.to_bytes(32, "big"))
    if expected_pubkey is not None and key.get_public_key().sec().hex() != expected_pubkey:
        raise KeyMismatch(f"swap {swap_id}: LSP_SECRET_KEY no longer derives the swap's key")
    return key


def pubkey_hex(key: ec.PrivateKey) -> str:
    return str(key.get_public_key().sec().hex())
