"""SendPaymentV2 without the I/O: the request, when an update is final, and what a final one means.

Written once and shared by the two transports over LND's router: the LSP's async client
(``lncore/lnd/router.py``, grpc.aio) and the lab's synchronous one (``harness/rpc/router.py``,
plain grpc). The lab stays synchronous on purpose: it forks node processes, and grpc's asyncio
poller must not be running in a process that forks.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, TypedDict

from typing_extensions import Unpack

from lncore.lnd.types import PaymentOutcome
from lncore.stubs import Stubs

if TYPE_CHECKING:
    from lnd_grpc import lightning_pb2 as ln
    from lnd_grpc.routerrpc import router_pb2 as routerrpc

FINAL = ("SUCCEEDED", "FAILED")
# The stream's own deadline beyond LND's payment timeout, so LND, not grpc, decides the outcome.
STREAM_MARGIN_S = 60
KEYSEND_RECORD = 5482373484  # the custom record that carries a keysend preimage


class PaymentOptions(TypedDict, total=False):
    """SendPaymentV2's options (all optional)."""

    fee_limit_sat: int | None
    fee_limit_msat: int | None
    amount_sat: int | None
    max_parts: int | None
    max_shard_size_msat: int | None
    outgoing_chan_ids: list[int] | None
    last_hop_pubkey: str | None
    allow_self_payment: bool
    cltv_limit: int | None


def send_request(
    pb: Stubs,
    *,
    timeout_s: int,
    payment_request: str = "",
    keysend_to: str | None = None,
    keysend_preimage: bytes | None = None,
    watch_updates: bool = False,
    **opts: Unpack[PaymentOptions],
) -> routerrpc.SendPaymentRequest:
    """The SendPaymentRequest for an invoice (``payment_request``) or a keysend (``keysend_to``, a
    pubkey, with its ``keysend_preimage``). ``watch_updates`` False skips LND's in-flight updates:
    a message and a decode less per HTLC attempt."""
    req: routerrpc.SendPaymentRequest = pb.router.SendPaymentRequest(
        payment_request=payment_request, timeout_seconds=timeout_s, no_inflight_updates=not watch_updates
    )
    if keysend_to is not None:
        if keysend_preimage is None:
            raise ValueError("a keysend needs its preimage")
        req.dest = bytes.fromhex(keysend_to)
        req.payment_hash = hashlib.sha256(keysend_preimage).digest()
        req.dest_custom_records[KEYSEND_RECORD] = keysend_preimage
    fee_msat, fee_sat = opts.get("fee_limit_msat"), opts.get("fee_limit_sat")
    if fee_msat is not None:
        req.fee_limit_msat = fee_msat
    elif fee_sat is not None:
        req.fee_limit_sat = fee_sat
    if amount := opts.get("amount_sat"):
        req.amt = amount
    if parts := opts.get("max_parts"):
        req.max_parts = parts
    if shard := opts.get("max_shard_size_msat"):
        req.max_shard_size_msat = shard  # forces MPP: no part above it
    # Circular rebalancing: leave through one of our channels, come back through another.
    if chans := opts.get("outgoing_chan_ids"):
        req.outgoing_chan_ids.extend(chans)
    if last_hop := opts.get("last_hop_pubkey"):
        req.last_hop_pubkey = bytes.fromhex(last_hop)
    if opts.get("allow_self_payment"):
        req.allow_self_payment = True
    if (cltv := opts.get("cltv_limit")) is not None:
        req.cltv_limit = cltv
    return req


def track_request(pb: Stubs, payment_hash: str, *, watch_updates: bool = False) -> routerrpc.TrackPaymentRequest:
    """The TrackPaymentRequest for a payment by its hash (in-flight updates only when watched)."""
    req: routerrpc.TrackPaymentRequest = pb.router.TrackPaymentRequest(
        payment_hash=bytes.fromhex(payment_hash), no_inflight_updates=not watch_updates
    )
    return req


def status(pb: Stubs, payment: ln.Payment) -> str:
    return str(pb.ln.Payment.PaymentStatus.Name(payment.status))


def is_final(pb: Stubs, payment: ln.Payment) -> bool:
    return status(pb, payment) in FINAL


def outcome(pb: Stubs, payment: ln.Payment) -> PaymentOutcome:
    """What a payment update means: SUCCEEDED with its preimage and fee, FAILED with LND's reason."""
    st = status(pb, payment)
    return PaymentOutcome(
        payment_hash=payment.payment_hash,
        status=st,
        fee_sat=payment.fee_msat // 1000 if payment.fee_msat else payment.fee_sat,
        fee_msat=payment.fee_msat,
        value_sat=payment.value_sat,
        preimage=payment.payment_preimage if st == "SUCCEEDED" else None,
        failure_reason=pb.ln.PaymentFailureReason.Name(payment.failure_reason) if st == "FAILED" else None,
    )
