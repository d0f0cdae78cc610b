"""The public, branded payment page in a real browser (Debian's Chromium, driven by Playwright) on a
live star5 LSP: the QR code Chromium draws decodes (zxing-cpp, not our code) to the invoice, the
page wears the client's colours and logo, and it turns to "Paid" without a reload when c1 pays.
A screenshot lands in the test's tmp dir (and in $PAY_PAGE_SHOTS when set)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest

from harness.wait import wait_for
from tests.lab.lsp.conftest import LiveLsp  # type: ignore[import-not-found]

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install '.[e2e]')")
zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp is not installed (pip install '.[e2e]')")
image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install '.[e2e]')")
pytestmark = [
    pytest.mark.topology("star5"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
LOGO = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_the_branded_payment_page_shows_the_qr_and_turns_paid_live(live_lsp: LiveLsp, tmp_path: Path) -> None:
    shots = Path(os.environ.get("PAY_PAGE_SHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    client, creds = live_lsp.client, live_lsp.creds
    client.request("PUT", "/api/enterprise/branding", json={"logo": LOGO, "colors": {"primary": "#a01b2c", "accent": "#f2a900"}})
    inv: dict[str, Any] = client.create_invoice(21_000, "Coffee for two")
    assert inv["paymentPage"] == f"/pay/{inv['invoiceId']}"

    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 420, "height": 900})  # a phone-sized window
            page.set_default_timeout(30_000)
            page.goto(live_lsp.base_url + inv["paymentPage"])
            assert page.locator("#amount").inner_text() == "21,000 sat"
            assert page.locator("#description").inner_text() == "Coffee for two"
            assert page.locator("#status").inner_text() == "Waiting for payment"
            assert page.locator(".merchant").inner_text() == "acme"
            header_bg = page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
            assert header_bg == "rgb(160, 27, 44)"  # the client's primary colour
            wait_for(  # the logo loaded (the CSP allows data: images)
                lambda: page.evaluate("document.getElementById('logo').complete")
                and page.evaluate("document.getElementById('logo').naturalWidth") == 1,
                what="the client's logo to load",
                timeout_s=30,
            )

            # The QR code as Chromium drew it decodes to the invoice.
            png = page.locator("#qr").screenshot()
            # Only QR codes: asked for every format, zxing once also "found" a linear code (6007)
            # inside the QR's modules (full run, 2026-12-05).
            found = zxingcpp.read_barcodes(image.open(io.BytesIO(png)).convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
            assert [b.text for b in found] == ["LIGHTNING:" + inv["paymentRequest"].upper()]
            page.screenshot(path=str(shots / "pay-1-open.png"), full_page=True)

            html = page.content()
            for secret in (creds.api_key, creds.api_secret, creds.client_id, inv["paymentHash"]):
                assert secret not in html

            page.evaluate("window.__sameDocument = 42")
            paid = live_lsp.lab.node("c1").pay_invoice(inv["paymentRequest"], fee_limit_sat=1000)
            assert paid.succeeded
            # (expect polls from outside: the page's CSP rightly refuses wait_for_function's eval)
            playwright_api.expect(page.locator("#status")).to_have_text("Paid", timeout=30_000)
            assert page.evaluate("window.__sameDocument") == 42  # no reload: the page updated itself
            assert not page.locator("#qr").is_visible()
            page.screenshot(path=str(shots / "pay-2-paid.png"), full_page=True)
        finally:
            browser.close()
