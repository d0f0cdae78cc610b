"""Channel lifecycle verbs against live nodes."""

from __future__ import annotations

import pytest

from harness.harness import LightningTestHarness

# On-chain fees a close may cost a side on regtest (commitment/sweep fees at
# the static regtest fee rate), generous enough not to depend on weights.
MAX_CLOSE_FEES_SAT = 20_000


@pytest.mark.topology("pair")
def test_force_close_returns_funds_to_both_sides_after_csv(lab: LightningTestHarness) -> None:
    a, b = lab.node("nodea"), lab.node("nodeb")
    invoice = b.add_invoice(300_000)
    assert a.pay_invoice(invoice.payment_request).succeeded

    channel = a.channel_with(b)
    a_chan, b_chan = channel.local_balance_sat, channel.remote_balance_sat
    a_before, b_before = a.balances().onchain_confirmed_sat, b.balances().onchain_confirmed_sat

    lab.close_channel("nodea", channel.channel_point, force=True)
    lab.net.mine_until_swept("nodeb", channel.channel_point)

    a_gain = a.balances().onchain_confirmed_sat - a_before
    b_gain = b.balances().onchain_confirmed_sat - b_before
    assert a.list_channels() == [] and b.list_channels() == []
    # Each side gets its channel balance back minus on-chain fees (the
    # commitment fee is re-negotiated as fee estimates move, so allow both ways).
    assert abs(a_gain - a_chan) <= MAX_CLOSE_FEES_SAT, (a_gain, a_chan)
    assert abs(b_gain - b_chan) <= MAX_CLOSE_FEES_SAT, (b_gain, b_chan)
    assert b_gain > 290_000
    closed = a.ln.closed_channels()
    assert closed and closed[0].close_type == closed[0].LOCAL_FORCE_CLOSE


@pytest.mark.topology("pair")
def test_cooperative_close_and_new_channel(lab: LightningTestHarness) -> None:
    a, b = lab.node("nodea"), lab.node("nodeb")
    channel = a.channel_with(b)
    a_before = a.balances().onchain_confirmed_sat
    lab.close_channel("nodea", channel.channel_point)
    assert a.list_channels() == []
    a_gain = a.balances().onchain_confirmed_sat - a_before
    assert channel.local_balance_sat - MAX_CLOSE_FEES_SAT <= a_gain <= channel.capacity_sat

    point = lab.open_channel("nodeb", "nodea", 500_000, push_sat=100_000)
    reopened = b.channel_with(a)
    assert reopened.channel_point == point and reopened.active
    assert reopened.remote_balance_sat == 100_000
    invoice = a.add_invoice(10_000)
    assert b.pay_invoice(invoice.payment_request).succeeded
