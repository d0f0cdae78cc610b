"""A live LSP on the star5 hub: ``lsp serve`` as a process, configured by LSP_* variables as an
operator would (a compliance policy file, clients starting ``pending`` as on a non-regtest LSP),
its LND the lab's hub, its database a SQLite file. Clients are onboarded through the admin API,
approved, and funded by paying their invoices from c1/c2. The tests see it only over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.harness import LightningTestHarness
from harness.lsp_process import LspServer, free_port, lsp_env
from harness.wait import wait_for
from lsp.client import LSPClient

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
    server: LspServer
    admin: httpx.Client
    clients: list[LSPClient] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def settled_monitoring(self) -> None:
        """Wait until the LSP's compliance monitor has handled every event so far (its backlog, a
        Prometheus gauge on /metrics, is 0): alerts are raised off the request path."""

        wait_for(
            lambda: self.server.metric("lsp_compliance_pending_events") == 0,
            what="the compliance monitor to catch up",
            timeout_s=30,
        )

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
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    env = lsp_env(
        lab.node("hub"),
        f"sqlite:///{tmp_path / 'lsp.db'}",
        admin_key=ADMIN_KEY,
        LSP_ADMIN_PASSWORD=ADMIN_PASSWORD,
        LSP_COMPLIANCE_CONFIG_PATH=str(policy),
        LSP_KYC_INITIAL_STATE="pending",
        LSP_MIN_CHANNEL_SIZE="20000",
    )
    server = LspServer(env, free_port(), tmp_path / "lsp.log")
    server.start()
    admin = httpx.Client(base_url=server.base_url, headers={"X-Admin-Key": ADMIN_KEY}, timeout=120)
    live = LiveLSP(lab, server, admin)
    try:
        yield live
    finally:
        for c in live.clients:
            c.close()
        admin.close()
        server.stop()
    assert "Traceback" not in server.log_text(), server.log_tail(80)
