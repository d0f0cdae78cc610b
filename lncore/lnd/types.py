"""Small typed results the LSP's services use (everything else is LND's protobuf message)."""

from __future__ import annotations

from dataclasses import dataclass


def txid_from_bytes(raw: bytes) -> str:
    """LND sends txids in internal byte order; humans and explorers use the reverse."""
    return raw[::-1].hex()


def txid_to_bytes(txid: str) -> bytes:
    return bytes.fromhex(txid)[::-1]


@dataclass(frozen=True)
class ChannelPointRef:
    funding_txid: str
    output_index: int

    def __str__(self) -> str:
        return f"{self.funding_txid}:{self.output_index}"

    @classmethod
    def parse(cls, channel_point: str) -> ChannelPointRef:
        txid, _, idx = channel_point.partition(":")
        return cls(txid, int(idx))


@dataclass(frozen=True)
class PaymentOutcome:
    """The final state of a payment. status: SUCCEEDED | FAILED (IN_FLIGHT only if a stream ended early)."""

    payment_hash: str
    status: str
    fee_sat: int
    fee_msat: int
    value_sat: int
    preimage: str | None
    failure_reason: str | None


@dataclass(frozen=True)
class OpenedChannel:
    """A zero-conf channel the LSP opened and can forward onto now."""

    channel_point: str
    chan_id: int  # LND's chan_id: for a zero-conf channel, its base alias
    base_scid: int
