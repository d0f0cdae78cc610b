"""A live LSP on the star5 hub: the real app served by uvicorn on 127.0.0.1, its LND the lab's hub,
its database a migrated SQLite file. Clients are onboarded through the admin API, approved (the
server starts clients as ``pending``, as a non-regtest LSP would) and funded by paying their
invoices from c1/c2."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from harness.harness import LightningTestHarness
from harness.runtime.ports import free_port
from harness.wait import wait_for
from lsp.app import create_app
from lsp.client import LSPClient
from lsp.config import Settings, load_settings
from lsp.db import migrate

ADMIN_KEY = "lab-admin-key"
ADMIN_PASSWORD = "lab-operator-password"
STRUCTURING_THRESHOLD = 100_000
POLICY: dict[str, Any] = {
    "default_tier": "standard",
    "tiers": {
        "standard": {
            "required_fields": ["legal_name", "email"],
            "per_payment_sat": 2_000_000,
            "daily_volume_sat": 50_000_000,
            "monthly_volume_sat": 500_000_000,
            "max_channel_sat": 10_000_000,
        },
        "small": {
            "required_fields": ["legal_name", "email"],
            "per_payment_sat": 50_000,
            "daily_volume_sat": 200_000,
            "monthly_volume_sat": 1_000_000,
            "max_channel_sat": 1_000_000,
        },
    },
    "rules": {
        "large_amount": {"threshold_sat": 3_000_000},
        "velocity": {"max_count": 1000, "max_sum_sat": 1_000_000_000},
        "structuring": {"threshold_sat": STRUCTURING_THRESHOLD, "band": 0.1, "window_s": 3600, "min_count": 3},
        "rapid_in_out": {"min_ratio": 0.95, "min_amount_sat": 5_000_000},
        "new_client": {"max_sum_sat": 1_000_000_000},
    },
}


@dataclass
class LiveLSP:
    lab: LightningTestHarness
    base_url: str
    settings: Settings
    admin: httpx.Client
    app: Any
    clients: list[LSPClient] = field(default_factory=list)

    def onboard(self, name: str, *, approve: bool = True, tier: str = "standard") -> tuple[str, LSPClient]:
        r = self.admin.post("/api/enterprise/onboard", json={"name": name})
        assert r.status_code == 201, r.text
        body = r.json()
        client = LSPClient(self.base_url, body["apiKey"], body["apiSecret"])
        self.clients.append(client)
        if approve:
            self.kyc(body["clientId"], "approved", tier=tier, fields={"legal_name": name, "email": f"{name}@x.test"})
        return body["clientId"], client

    def kyc(self, client_id: str, state: str, **body: Any) -> dict[str, Any]:
        r = self.admin.post(f"/api/admin/clients/{client_id}/kyc", json={"state": state, **body})
        assert r.status_code == 200, r.text
        return r.json()

    def fund(self, client: LSPClient, amount: int, payer: str = "c1") -> None:
        """The client invoices, a lab node pays; wait until the LSP's invoice watcher credits the ledger."""
        before = client.balance()["balance"]
        inv = client.create_invoice(amount, "funding")
        paid = self.lab.node(payer).pay_invoice(inv["paymentRequest"], fee_limit_sat=1000)
        assert paid.succeeded, paid.failure_reason
        wait_for(lambda: client.balance()["balance"] == before + amount, what=f"ledger credit of {amount}", timeout_s=60)

    def invoice_from(self, node: str, amount: int) -> Any:
        return self.lab.node(node).add_invoice(amount)


@pytest.fixture
def live_lsp(lab: LightningTestHarness, tmp_path: Path) -> Iterator[LiveLSP]:
    hub = lab.node("hub")
    db = f"sqlite:///{tmp_path / 'lsp.db'}"
    migrate.upgrade(db)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    settings = load_settings(
        database_url=db,
        admin_api_key=ADMIN_KEY,
        admin_password=ADMIN_PASSWORD,
        lnd_host=f"127.0.0.1:{hub.config.rpc_port}",
        lnd_tls_cert_path=hub.config.tls_cert,
        lnd_macaroon_path=hub.config.macaroon,
        compliance_config_path=policy,
        kyc_initial_state="pending",
        min_channel_size=20_000,
    )
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="lsp-uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: server.started, what="LSP server start", timeout_s=60)
    admin = httpx.Client(base_url=base, headers={"X-Admin-Key": ADMIN_KEY}, timeout=120)
    live = LiveLSP(lab, base, settings, admin, app)
    try:
        yield live
    finally:
        for c in live.clients:
            c.close()
        admin.close()
        server.should_exit = True
        thread.join(timeout=30)
