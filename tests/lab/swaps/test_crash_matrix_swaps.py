"""The crash matrix, swaps: ``lsp serve`` SIGKILLs itself just before it commits a swap's move into
one state (``LSP_CRASH_AT=swap.enter.<state>``, lsp/faults.py): the side effect that led there (a
payment, a broadcast, a settle) has happened, its record has not. Started again unarmed, the swap
completes: the client's invoice is paid once (swap-in) or its hold invoice settled once (reverse),
the lockup is spent once, every state is recorded once, and ``lsp reconcile`` finds nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.harness import LightningTestHarness
from harness.lsp_process import LspServer, free_port, lsp_env, reconcile
from harness.swaps import SwapClient, lockup_of
from lsp.client import LSPClient

from .conftest import LAB_SWAPS, SWAPS_TOPOLOGY

pytestmark = pytest.mark.topology(SWAPS_TOPOLOGY)
SIGKILL = -9


@pytest.fixture
def server(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LspServer]:
    swap_env = {f"LSP_SWAP_{k.upper()}": str(v) for k, v in LAB_SWAPS.items()}
    env = lsp_env(lab.node("hub"), f"sqlite:///{tmp_path / 'lsp.db'}", admin_key="swap-matrix-admin", **swap_env)
    srv = LspServer(env, free_port(), tmp_path / "lsp.log")
    try:
        yield srv
    finally:
        srv.stop()
    assert "Traceback" not in srv.log_text(), srv.log_text()[-6000:]


def drive(
    lab: LightningTestHarness,
    server: LspServer,
    api: LSPClient,
    swap_id: str,
    act: Callable[[dict[str, Any]], None],
    until: str,
    *,
    timeout_s: float = 120,
) -> dict[str, Any] | None:
    """Poll the swap, letting ``act`` move the world on (mine, claim), until it reaches ``until``
    (its view) or the server dies at its crash point (None)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            return None
        try:
            view = api.request("GET", f"/api/swaps/{swap_id}")
        except Exception:  # the server died between the poll and the request
            continue
        if view["state"] == until:
            return view
        act(view)
        time.sleep(0.3)
    raise AssertionError(f"swap {swap_id} did not reach {until} in {timeout_s} s:\n{server.log_tail()}")


def restart_unarmed(server: LspServer) -> None:
    assert server.wait_killed() == SIGKILL, server.log_tail()
    server.env.pop("LSP_CRASH_AT")
    server.start()


def recorded_once(view: dict[str, Any]) -> None:
    states = [e["toState"] for e in view["events"]]
    assert len(states) == len(set(states)), states


@pytest.mark.parametrize("state", ["lockup_confirmed", "invoice_pending", "invoice_paid", "claim_pending", "claimed"])
def test_swap_in_killed_before_each_transition_pays_once_and_claims_once(
    lab: LightningTestHarness, server: LspServer, state: str
) -> None:
    server.env["LSP_CRASH_AT"] = f"swap.enter.{state}"
    server.start()
    creds = server.onboard("swapper", requestsPerMinute=10_000, monthlyVolume=10**9)
    c1, hub = lab.node("c1"), lab.node("hub")
    amount = 30_000
    with LSPClient(server.base_url, creds.api_key, creds.api_secret) as api:
        client = SwapClient()
        inv = c1.add_invoice(amount, memo=f"swap in, crash before {state}")
        swap = api.request(
            "POST", "/api/swaps/submarine", json={"invoice": inv.payment_request, "refundPublicKey": client.pubkey}
        )
        client.verify(swap, payment_hash=inv.payment_hash)
        lockup = client.fund(lab, swap)
        lab.mine(1)

        def act(view: dict[str, Any]) -> None:
            if view["state"] == "claim_pending":
                lab.mine(1)

        assert drive(lab, server, api, swap["swapId"], act, "claimed") is None, "never reached its crash point"
        restart_unarmed(server)
        done = drive(lab, server, api, swap["swapId"], act, "claimed")

    assert done is not None
    recorded_once(done)
    assert c1.ln.lookup_invoice(inv.payment_hash).amt_paid_sat == amount  # paid once
    assert len([p for p in hub.ln.list_payments() if p.payment_hash == inv.payment_hash]) == 1
    claim = lab.chain.raw_tx(done["spendTxid"])
    assert [(i["txid"], i["vout"]) for i in claim["vin"]] == [(lockup.txid, lockup.vout)]
    report = reconcile(server.env)
    assert report["ok"] and report["pendingHtlcs"] == 0, report


@pytest.mark.parametrize("state", ["invoice_accepted", "lockup_mempool", "claimed", "invoice_settled"])
def test_reverse_swap_killed_before_each_transition_settles_once(
    lab: LightningTestHarness, server: LspServer, state: str
) -> None:
    server.env["LSP_CRASH_AT"] = f"swap.enter.{state}"
    server.start()
    if state == "invoice_settled":  # settled before the kill; the restarted LSP settles again, harmlessly
        lab.expect_log_errors("invoice already settled")
    creds = server.onboard("swapper", requestsPerMinute=10_000, monthlyVolume=10**9)
    c2, hub = lab.node("c2"), lab.node("hub")
    amount = 60_000
    c2_before = c2.channel_with(hub).local_balance_sat
    with LSPClient(server.base_url, creds.api_key, creds.api_secret) as api:
        client = SwapClient()
        preimage, payment_hash = client.new_preimage()
        swap = api.request(
            "POST",
            "/api/swaps/reverse",
            json={"amount": amount, "paymentHash": payment_hash, "claimPublicKey": client.pubkey},
        )
        client.verify(swap, payment_hash=payment_hash)
        paid: list[Any] = []
        payer = threading.Thread(target=lambda: paid.append(c2.pay_invoice(swap["invoice"], timeout_s=180)), daemon=True)
        payer.start()
        claims: list[str] = []

        def act(view: dict[str, Any]) -> None:
            if view["state"] in ("lockup_mempool", "lockup_confirmed") and not claims:
                claims.append(client.claim(lab, view, lockup_of(view), preimage, c2.new_address()).txid)
                lab.mine(1)

        assert drive(lab, server, api, swap["swapId"], act, "invoice_settled") is None, "never reached its crash point"
        restart_unarmed(server)
        done = drive(lab, server, api, swap["swapId"], act, "invoice_settled")
        payer.join(timeout=60)

    assert done is not None
    recorded_once(done)
    assert paid and paid[0].status == "SUCCEEDED", paid
    assert len(claims) == 1  # the client's claim, the lockup's only spend
    lockup = lockup_of(done)
    assert [(i["txid"], i["vout"]) for i in lab.chain.raw_tx(claims[0])["vin"]] == [(lockup.txid, lockup.vout)]
    assert hub.ln.lookup_invoice(payment_hash).amt_paid_sat == amount  # the hold invoice, settled once
    c2.wait_no_pending_htlcs()
    assert c2_before - c2.channel_with(hub).local_balance_sat == amount
    report = reconcile(server.env)
    assert report["ok"] and report["pendingHtlcs"] == 0, report
