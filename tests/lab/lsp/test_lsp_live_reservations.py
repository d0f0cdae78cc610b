"""Seed 001's exchange flow on a live star5 hub: reserve liquidity, then pay with ``reservationId``.

What the test expects comes from LND and the spec, not from the LSP: the hub's spendable
outbound is read from its own ListChannels (local balance minus the channel reserve), and a
payment over a direct channel pays no routing fee, so it uses exactly its amount.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from harness.wait import wait_for
from lsp.client import LSPAPIError, LSPClient
from tests.lab.lsp.conftest import LiveLsp  # type: ignore[import-not-found]

OPERATOR_PASSWORD = "reservations-operator"

HOUR_MS = 3_600_000
MAX_FEE_RATE = 10_000  # ppm the clients accept (the LSP charges 2000)


def refused(call: Any) -> tuple[int, str, str | None]:
    with pytest.raises(LSPAPIError) as exc:
        call()
    return exc.value.status, exc.value.code, exc.value.field


def spendable_outbound(live: LiveLsp) -> int:
    return sum(
        max(0, c.local_balance_sat - c.local_reserve_sat) for c in live.lab.node("hub").list_channels(active_only=True)
    )


@pytest.mark.topology("star5")
def test_reserved_liquidity_is_spendable_and_kept_whole(lsp_factory: Any) -> None:
    live_lsp: LiveLsp = lsp_factory(LSP_ADMIN_PASSWORD=OPERATOR_PASSWORD)
    lab, a = live_lsp.lab, live_lsp.client
    c3, c4 = lab.node("c3"), lab.node("c4")
    live_lsp.fund_client(400_000, payer="c1")
    _, b = live_lsp.onboard("beta")
    live_lsp.fund_client(150_000, payer="c2", client=b)

    # A small reservation: a payment above what is left is refused before LND is asked.
    small = a.request_liquidity(50_000, HOUR_MS, MAX_FEE_RATE)
    rid = small["reservationId"]
    assert (small["used"], small["remaining"]) == (0, 50_000)
    balance = a.balance()["balance"]
    too_big = c4.add_invoice(60_000, memo="over the reservation").payment_request
    assert refused(lambda: a.send_payment(too_big, max_fee_sat=10, reservation_id=rid)) == (
        402, "insufficient_liquidity", "body.reservationId"
    )
    assert a.balance()["balance"] == balance  # nothing held
    paid = a.send_payment(c4.add_invoice(30_000).payment_request, max_fee_sat=10, reservation_id=rid)
    assert (paid["status"], paid["fee"], paid["reservationId"]) == ("succeeded", 0, rid)
    view = a.get_reservation(rid)
    assert (view["used"], view["remaining"]) == (30_000, 20_000)
    # Another client cannot name it (and learns nothing about it).
    assert refused(lambda: b.send_payment(c4.add_invoice(1_000).payment_request, reservation_id=rid)) == (
        404, "not_found", "body.reservationId"
    )
    # An expired reservation is refused.
    short = a.request_liquidity(5_000, 1_500, MAX_FEE_RATE)
    wait_for(
        lambda: a.get_reservation(short["reservationId"])["status"] == "expired",
        what="the 1.5 s reservation to expire",
        timeout_s=30,
    )
    assert refused(
        lambda: a.send_payment(c4.add_invoice(1_000).payment_request, reservation_id=short["reservationId"])
    ) == (409, "conflict", "body.reservationId")

    # A reservation of all the hub's free outbound but 60,000 sat (the small one keeps its 20,000).
    big_amount = spendable_outbound(live_lsp) - 20_000 - 60_000
    big = a.request_liquidity(big_amount, HOUR_MS, MAX_FEE_RATE)
    # The LSP now refuses what it could not honour: a reservation, or a payment, bigger than what is free.
    assert refused(lambda: b.request_liquidity(100_000, HOUR_MS, MAX_FEE_RATE)) == (
        402, "insufficient_liquidity", "body.amount"
    )
    assert refused(lambda: b.send_payment(c3.add_invoice(100_000).payment_request, max_fee_sat=10)) == (
        402, "insufficient_liquidity", "body.invoice"
    )
    # Concurrent payments by the other client: 4 x (18,000 + 10 max fee) > 60,000 free, so at most
    # three of them can pass the book; the others are refused, never the reservation's owner.
    invoices = [c3.add_invoice(18_000, memo=f"race {i}").payment_request for i in range(4)]

    def try_pay(pr: str, client: LSPClient = b) -> str:
        try:
            return str(client.send_payment(pr, max_fee_sat=10)["status"])
        except LSPAPIError as exc:
            return exc.code

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(try_pay, invoices))
    assert set(outcomes) <= {"succeeded", "insufficient_liquidity"}, outcomes
    assert 1 <= outcomes.count("succeeded") <= 3, outcomes
    # The owner still gets its liquidity.
    mine = a.send_payment(c4.add_invoice(300_000).payment_request, max_fee_sat=10, reservation_id=big["reservationId"])
    assert mine["status"] == "succeeded"
    assert a.get_reservation(big["reservationId"])["used"] == 300_000

    # The operator sees the book on the dashboard's channels page.
    with httpx.Client(base_url=live_lsp.base_url, timeout=30) as web:
        assert web.post("/dashboard/login", data={"password": OPERATOR_PASSWORD}).status_code == 303
        page = web.get("/dashboard/channels").text
    assert "Outbound book" in page and big["reservationId"] in page and rid in page
    assert f"{big_amount - 300_000:,}" in page  # what the big reservation has left
