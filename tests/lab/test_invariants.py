"""The per-test invariant check itself (the pytest plugin runs it after every lab test): an HTLC
left pending and an unexplained error line in a node log are reported; expected ones are not."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from harness.errors import InvariantError
from harness.harness import LightningTestHarness
from harness.wait import wait_for

pytestmark = pytest.mark.topology("pair")


def test_an_unexplained_error_line_fails_the_check_and_an_expected_one_does_not(lab: LightningTestHarness) -> None:
    log = lab.node("nodeb").config.log_path
    with log.open("a") as f:
        f.write("2026-11-29 00:00:00.000 [ERR] TEST: the invariant check must see this\n")
    with pytest.raises(InvariantError, match=r"nodeb: .*\[ERR\] TEST: the invariant check must see this"):
        lab.check_invariants()
    lab.expect_log_errors("the invariant check must see this")
    lab.check_invariants()  # explained by the test: no longer a violation


def test_an_htlc_left_pending_fails_the_check(lab: LightningTestHarness) -> None:
    a, b = lab.node("nodea"), lab.node("nodeb")
    preimage = os.urandom(32)
    phash = hashlib.sha256(preimage).hexdigest()
    invoice = b.invoices.add_hold_invoice(phash, 5_000)
    payer = threading.Thread(target=lambda: a.pay_invoice(invoice, timeout_s=60, wait_settled=False))
    payer.start()
    try:
        wait_for(lambda: b.invoices.state(phash) == "ACCEPTED", what="the held HTLC to arrive", timeout_s="PAYMENT")
        with pytest.raises(InvariantError, match=r"HTLC\(s\) pending"):
            lab.check_invariants()
    finally:
        b.invoices.settle(preimage.hex())
        payer.join(timeout=60)
    a.wait_no_pending_htlcs()
    lab.check_invariants()
