"""The operator dashboard end to end in headless Chromium (Debian's ``chromium``, driven by Playwright)
against a live star5 LSP: log in, approve a client from the KYC queue, watch its payments appear live
on the overview, and review the alert they raise. Screenshots land in the test's tmp dir
(and in $DASHBOARD_SHOTS when set) for a person to look at."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from harness.harness import LightningTestHarness
from harness.wait import wait_for
from tests.lab.compliance.conftest import ADMIN_PASSWORD, LiveLSP

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
pytestmark = [
    pytest.mark.topology("star5", shared=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install -y chromium (Debian package)"
    ),
]
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_operator_approves_sees_payments_live_and_reviews_the_alert(
    lab: LightningTestHarness, live_lsp: LiveLSP, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("DASHBOARD_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    cid, client = live_lsp.onboard("Browser Test AG", approve=False)  # lands in the KYC queue as pending

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.set_default_timeout(30_000)
            # Log in.
            page.goto(f"{live_lsp.base_url}/dashboard")
            assert page.url.endswith("/dashboard/login")
            page.fill("input[name=password]", "not-it")
            page.click("button[type=submit]")
            assert page.locator(".flash.err").inner_text() == "wrong password"
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/dashboard")
            page.screenshot(path=str(shots / "1-overview.png"), full_page=True)

            # Approve the pending client from the KYC queue, supplying the tier's required fields.
            page.click("text=Clients & KYC")
            row = page.locator(f"#client-{cid}")
            assert row.get_attribute("data-state") == "pending"
            page.screenshot(path=str(shots / "2-kyc-queue.png"), full_page=True)
            row.locator("input[name=f_legal_name]").fill("Browser Test AG")
            row.locator("input[name=f_email]").fill("ops@browser.test")
            row.locator("button[name=approve]").click()
            page.wait_for_selector(f"#client-{cid}[data-state=approved]")
            assert "is now approved" in page.locator(".flash.ok").inner_text()
            page.screenshot(path=str(shots / "3-approved.png"), full_page=True)

            # Payments appear live on the overview (server-sent events).
            page.click("text=Overview")
            page.wait_for_selector("#live-state:text('live')")
            live_lsp.fund(client, 300_000, payer="c2")
            amounts = [96_000, 98_000, 93_000]
            done = threading.Event()
            errors: list[BaseException] = []

            def pay() -> None:
                try:
                    for a in amounts:
                        p = client.send_payment(live_lsp.invoice_from("c4", a).payment_request)
                        assert p["status"] == "succeeded", p
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    done.set()

            threading.Thread(target=pay).start()
            sent = page.locator("#live tbody tr[data-type=payment_sent]")
            wait_for(lambda: sent.count() >= len(amounts), what="3 live payment rows", timeout_s=120)
            assert done.wait(60) and not errors, errors
            texts = sent.all_inner_texts()
            assert any("96,000" in t for t in texts) and any("93,000" in t for t in texts)
            page.screenshot(path=str(shots / "4-live-payments.png"), full_page=True)
            # The alert the third payment raised reaches the operator's counter live, too.
            wait_for(lambda: page.locator("#live-alerts").inner_text() == "1", what="live alert counter", timeout_s=30)
            page.reload()  # server-rendered figures and charts now include the payments
            assert page.locator("#live-payments").inner_text() == "3"
            # The hourly success chart counts all three (in one bar, or two when the run crosses an hour).
            bars = page.locator("svg.chart rect title", has_text="succeeded:").all_text_contents()
            assert sum(int(t.rsplit(": ", 1)[1]) for t in bars) == 3, bars
            page.screenshot(path=str(shots / "4b-overview-reloaded.png"), full_page=True)

            # The pattern raised a structuring alert: review it, escalate it, close it with a reason.
            page.click("text=Alerts")
            alert = page.locator("tr[data-status=open]", has_text="structuring")
            assert alert.count() == 1
            alert_id = alert.get_attribute("id")
            alert.locator("summary").click()
            assert "93000" in alert.locator("pre").inner_text()
            page.screenshot(path=str(shots / "5-alert-open.png"), full_page=True)
            alert.locator("button[name=to-reviewing]").click()
            page.wait_for_selector(f"#{alert_id}[data-status=reviewing]")
            row = page.locator(f"#{alert_id}")
            row.locator("button[name=to-closed]").click()  # no reason: refused, with the reason shown
            assert "needs a reason" in page.locator(".flash.err").inner_text()
            row = page.locator(f"#{alert_id}")
            row.locator("input[name=reason]").fill("supplier invoices, documents on file")
            row.locator("button[name=to-closed]").click()
            page.wait_for_selector(f"#{alert_id}[data-status=closed]")
            page.screenshot(path=str(shots / "6-alert-closed.png"), full_page=True)

            # Every step is in the audit log, and the chain verifies.
            page.click("text=Audit log")
            assert page.locator(".badge.s-intact").count() == 1
            body = page.locator("table").inner_text()
            for action in ("kyc.change", "alert.raise", "alert.reviewing", "alert.closed", "payment.start"):
                assert action in body, action
            page.screenshot(path=str(shots / "7-audit.png"), full_page=True)
            page.click("text=Channels")
            # One row per hub channel, each with the health its balances imply.
            expected = {
                c.channel_point: ("healthy" if 0.1 <= c.local_balance_sat / c.capacity_sat <= 0.9 else "depleted")
                for c in lab.node("hub").ln.list_channels()
            }
            rows = page.locator("table").first.locator("tbody tr")
            assert rows.count() == len(expected) == 4
            shown = sorted("healthy" if t.endswith("healthy") else "depleted" for t in rows.all_inner_texts())
            assert shown == sorted(expected.values())
            page.screenshot(path=str(shots / "8-channels.png"), full_page=True)
            page.click("text=Orders & swaps")
            assert page.locator("h2", has_text="swaps").count() >= 1  # lsp/swaps' table, shown generically
            page.screenshot(path=str(shots / "9-orders.png"), full_page=True)
        finally:
            browser.close()
    if shots != tmp_path:
        return
    keep = Path("/tmp/compliance-dashboard-shots")
    shutil.rmtree(keep, ignore_errors=True)
    shutil.copytree(shots, keep)
