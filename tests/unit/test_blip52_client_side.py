"""The lab's client-side bLIP-52 arithmetic (harness.blip52), from the bLIP's own worked rules."""

from __future__ import annotations

import pytest

from harness.blip52 import cheapest_fee_msat, opening_fee_msat, scid_from_str

pytestmark = pytest.mark.unit


def test_opening_fee_rounds_up_and_never_goes_below_the_minimum() -> None:
    # bLIP-52: opening_fee = max(min_fee_msat, ceil(payment_size_msat * proportional / 1_000_000)).
    assert opening_fee_msat(1_000_001, 0, 1) == 2
    assert opening_fee_msat(50_000_000, 2_000_000, 5_000) == 2_000_000
    assert opening_fee_msat(500_000_000, 2_000_000, 5_000) == 2_500_000


def test_a_client_picks_the_cheapest_entry_that_accepts_its_payment() -> None:
    menu = [
        {"min_fee_msat": "3000", "proportional": 100, "min_payment_size_msat": "1", "max_payment_size_msat": "100000000"},
        {"min_fee_msat": "1000", "proportional": 900, "min_payment_size_msat": "1", "max_payment_size_msat": "10000"},
    ]
    assert cheapest_fee_msat(menu, 5_000) == 1_000
    assert cheapest_fee_msat(menu, 50_000_000) == 5_000
    with pytest.raises(ValueError, match="no menu entry"):
        cheapest_fee_msat(menu, 200_000_000)


def test_scid_text_maps_to_the_bolt7_integer_layout() -> None:
    assert scid_from_str("0x0x1") == 1
    assert scid_from_str("0x1x0") == 1 << 16
    assert scid_from_str("1x0x0") == 1 << 40
    assert scid_from_str("16777215x16777215x65535") == (1 << 64) - 1


@pytest.mark.parametrize("bad", ["", "1x2", "1x2x3x4", "ax1x1", "16777216x0x0", "0x0x65536"])
def test_a_malformed_scid_is_refused_with_its_text(bad: str) -> None:
    with pytest.raises(ValueError, match=r"short channel id|out of range"):
        scid_from_str(bad)
