"""The ``features`` a hosted node may ask for, and LND's flags for them and for autopilot."""

from __future__ import annotations

# name -> LND flags. Keysend and AMP let the node receive spontaneous payments; the protocol
# options are LND's own (lncfg/protocol.go).
FEATURES: dict[str, tuple[str, ...]] = {
    "keysend": ("--accept-keysend",),
    "amp": ("--accept-amp",),
    "wumbo": ("--protocol.wumbo-channels",),
    "scid-alias": ("--protocol.option-scid-alias",),
    "zero-conf": ("--protocol.option-scid-alias", "--protocol.zero-conf"),
    "simple-taproot-chans": ("--protocol.simple-taproot-chans",),
}


def unknown(names: list[str]) -> list[str]:
    return [n for n in names if n not in FEATURES]


def flags(names: list[str], *, autopilot: bool, max_channels: int | None, allocation: float | None) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        out += [f for f in FEATURES[name] if f not in out]
    if autopilot:
        out.append("--autopilot.active")
        if max_channels is not None:
            out.append(f"--autopilot.maxchannels={max_channels}")
        if allocation is not None:
            out.append(f"--autopilot.allocation={allocation}")
    return tuple(out)
