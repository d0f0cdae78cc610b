"""SendPaymentV2's request and the meaning of its updates (lncore/lnd/payments.py): pure logic on
LND's real generated message types, shared by the LSP's async client and the lab's sync one."""

from __future__ import annotations

import hashlib

import pytest

from lncore.lnd import payments
from lncore.stubs import load

pytestmark = pytest.mark.unit

# bLIP-0003 / LND: the custom record that carries a keysend preimage.
KEYSEND_TLV_TYPE = 5482373484


def test_invoice_request_carries_the_limits_and_skips_in_flight_updates() -> None:
    pb = load()
    req = payments.send_request(
        pb, payment_request="lnbcrt1...", timeout_s=45, fee_limit_sat=7, max_parts=1, outgoing_chan_ids=[11, 12]
    )
    assert (req.payment_request, req.timeout_seconds, req.fee_limit_sat, req.max_parts) == ("lnbcrt1...", 45, 7, 1)
    assert list(req.outgoing_chan_ids) == [11, 12]
    assert req.no_inflight_updates is True
    assert not req.dest and not req.amt and not req.max_shard_size_msat
    # msat limit wins over sat; watching updates asks LND for them.
    both = payments.send_request(pb, payment_request="x", timeout_s=1, fee_limit_sat=7, fee_limit_msat=1500,
                                 watch_updates=True)
    assert (both.fee_limit_msat, both.fee_limit_sat, both.no_inflight_updates) == (1500, 0, False)


def test_keysend_request_commits_to_the_preimage_it_carries() -> None:
    pb = load()
    preimage = bytes(range(32))
    dest = "02" + "ab" * 32
    req = payments.send_request(pb, keysend_to=dest, keysend_preimage=preimage, amount_sat=1234, timeout_s=30)
    assert req.dest.hex() == dest and req.amt == 1234
    assert req.payment_hash == hashlib.sha256(preimage).digest()
    assert dict(req.dest_custom_records) == {KEYSEND_TLV_TYPE: preimage}
    with pytest.raises(ValueError, match="preimage"):
        payments.send_request(pb, keysend_to=dest, timeout_s=30)


def test_only_succeeded_and_failed_are_final_and_an_outcome_says_what_happened() -> None:
    pb = load()
    ln = pb.ln
    assert not payments.is_final(pb, ln.Payment(status=ln.Payment.IN_FLIGHT))
    assert not payments.is_final(pb, ln.Payment(status=ln.Payment.INITIATED))
    ok = ln.Payment(
        payment_hash="aa" * 32, status=ln.Payment.SUCCEEDED, fee_msat=2500, fee_sat=2, value_sat=1000,
        payment_preimage="bb" * 32,
    )
    assert payments.is_final(pb, ok)
    got = payments.outcome(pb, ok)
    assert (got.status, got.fee_msat, got.fee_sat, got.preimage, got.failure_reason) == (
        "SUCCEEDED", 2500, 2, "bb" * 32, None
    )
    failed = ln.Payment(status=ln.Payment.FAILED, failure_reason=ln.FAILURE_REASON_NO_ROUTE, payment_preimage="00" * 32)
    out = payments.outcome(pb, failed)
    assert (out.status, out.failure_reason, out.preimage) == ("FAILED", "FAILURE_REASON_NO_ROUTE", None)
