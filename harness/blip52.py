"""bLIP-52's opening fee, computed on the client side from the ``opening_fee_params`` an LSP
served on the wire (JSON as received). The lab's checks use this, not the LSP's own code, so a
misreading of the bLIP on the LSP side shows up as a difference."""

from __future__ import annotations

from typing import Any


def opening_fee_msat(payment_size_msat: int, min_fee_msat: int, proportional: int) -> int:
    """max(min_fee_msat, ceil(payment_size_msat * proportional / 1_000_000))."""
    return max(min_fee_msat, -(-payment_size_msat * proportional // 1_000_000))


def entry_fee_msat(entry: dict[str, Any], payment_size_msat: int) -> int:
    """The fee of one served menu entry (its amounts are decimal strings, ``proportional`` a number)."""
    return opening_fee_msat(payment_size_msat, int(entry["min_fee_msat"]), int(entry["proportional"]))


def cheapest_fee_msat(menu: list[dict[str, Any]], payment_size_msat: int) -> int:
    """The fee of the cheapest served entry whose payment size range holds ``payment_size_msat``
    (what a client that picks the cheapest offer pays)."""
    fees = [
        entry_fee_msat(e, payment_size_msat)
        for e in menu
        if int(e["min_payment_size_msat"]) <= payment_size_msat <= int(e["max_payment_size_msat"])
    ]
    if not fees:
        raise ValueError(f"no menu entry accepts a payment of {payment_size_msat} msat")
    return min(fees)


def scid_from_str(text: str) -> int:
    """A short channel id as bLIP-52 carries it (``jit_channel_scid``, BOLT 7's human form
    ``BLOCKxTXxOUTPUT``) to the 64-bit integer LND's route hints take: 3 bytes block height,
    3 bytes transaction index, 2 bytes output index."""
    try:
        block, tx, out = (int(part) for part in text.split("x"))
    except ValueError:
        raise ValueError(f"{text!r} is not a short channel id of the form BLOCKxTXxOUTPUT") from None
    if not (0 <= block < 1 << 24 and 0 <= tx < 1 << 24 and 0 <= out < 1 << 16):
        raise ValueError(f"{text!r}: a part is out of range")
    return block << 40 | tx << 16 | out
