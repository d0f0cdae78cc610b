"""The operator dashboard's hosted nodes page through the real app, with a fake orchestrator
standing in for Docker: each node's health, orphan containers, hosting off, an unreachable
orchestrator, and the login it needs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from lsp.app import create_app
from lsp.context import AppContext
from lsp.db import migrate
from lsp.db.base import session_scope, utcnow
from lsp.db.models_hosting import HostedNode
from lsp.hosting.orchestrator import Addresses, NodeSpec, NodeStatus, OrchestratorUnavailable
from lsp.hosting.service import HostedNodes
from tests.unit.lsp.conftest import make_settings, onboard

pytestmark = pytest.mark.unit
PASSWORD = "operator-test-password"
PUBKEY = "02" + "ab" * 32
PAID_UNTIL = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
UNREACHABLE = "cannot reach the Docker daemon: connection refused on /var/run/docker.sock"


class FakeOrchestrator:
    """A fake orchestrator (no Docker, no cluster): the containers it "runs" are a dict of
    node id -> NodeStatus; with ``unavailable`` set, every call raises OrchestratorUnavailable
    as the Docker orchestrator does when its daemon is down."""

    name = "fake"

    def __init__(self, nodes: dict[str, NodeStatus] | None = None, unavailable: str | None = None):
        self.nodes = dict(nodes or {})
        self.unavailable = unavailable

    def _check(self) -> None:
        if self.unavailable is not None:
            raise OrchestratorUnavailable(self.unavailable)

    def create(self, spec: NodeSpec) -> None:
        self._check()
        self.nodes[spec.node_id] = NodeStatus("running", started_at=utcnow())

    def start(self, node_id: str) -> None:
        self._check()
        self.nodes[node_id] = NodeStatus("running", started_at=utcnow())

    def stop(self, node_id: str) -> None:
        self._check()
        self.nodes[node_id] = replace(self.nodes[node_id], state="stopped", exit_code=0)

    def remove(self, node_id: str) -> None:
        self._check()
        self.nodes.pop(node_id, None)

    def status(self, node_id: str) -> NodeStatus:
        self._check()
        return self.nodes.get(node_id, NodeStatus("missing"))

    def list_nodes(self) -> dict[str, NodeStatus]:
        self._check()
        return dict(self.nodes)

    def read_file(self, node_id: str, path: str) -> bytes | None:
        self._check()
        return None

    def memory_bytes(self, node_id: str) -> int | None:
        self._check()
        return None

    def logs_tail(self, node_id: str, lines: int = 40) -> str:
        self._check()
        return ""

    def addresses(self, spec: NodeSpec) -> Addresses:
        return Addresses(rpc="127.0.0.1:1", endpoint_grpc="127.0.0.1:1", endpoint_rest="127.0.0.1:2", peer="127.0.0.1:3")


@pytest.fixture
def web(db_url: str) -> Iterator[TestClient]:
    migrate.upgrade(db_url)
    settings = make_settings(db_url, admin_password=PASSWORD)
    with TestClient(create_app(settings), raise_server_exceptions=False, follow_redirects=False) as tc:
        yield tc


def ctx_of(web: TestClient) -> AppContext:
    ctx: AppContext = web.app.state.ctx  # type: ignore[attr-defined]
    return ctx


def login(web: TestClient) -> None:
    r = web.post("/dashboard/login", data={"password": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"


def host(web: TestClient, orchestrator: FakeOrchestrator) -> HostedNodes:
    ctx = ctx_of(web)
    ctx.hosting = HostedNodes(ctx, orchestrator=orchestrator)
    return ctx.hosting


def add_node(web: TestClient, node_id: str, client_id: str, *, state: str, alias: str, reason: str | None = None) -> None:
    ctx = ctx_of(web)
    with session_scope(ctx.sessions) as s:
        s.add(
            HostedNode(
                id=node_id,
                client_id=client_id,
                orchestrator="docker",
                state=state,
                desired="running",
                reason=reason,
                config=json.dumps({"alias": alias, "color": "#3399ff", "features": [], "channels": []}),
                grpc_port=20009,
                rest_port=20080,
                p2p_port=29735,
                password_enc=ctx.box.encrypt("wallet-password"),
                pubkey=PUBKEY,
                paid_until=PAID_UNTIL,
            )
        )


def row(page: str, node_id: str) -> str:
    """The table row of one node (its health is the row's data-health)."""
    m = re.search(rf'<tr id="node-{re.escape(node_id)}" data-health="[^"]*">.*?</tr>', page, re.S)
    assert m, f"{node_id} is not listed"
    return m.group(0)


def test_the_page_needs_the_admin_login(web: TestClient) -> None:
    c = onboard(web, "Secret Client AG")
    add_node(web, "hn-000000000001", c.client_id, state="running", alias="secret-alias")
    host(web, FakeOrchestrator({"hn-000000000001": NodeStatus("running")}))
    r = web.get("/dashboard/nodes")
    assert (r.status_code, r.headers["location"]) == (303, "/dashboard/login")
    assert "hn-000000000001" not in r.text and "Secret Client AG" not in r.text
    web.cookies.set("lsp_admin", "9999999999.forged", path="/dashboard")
    assert web.get("/dashboard/nodes").status_code == 303


def test_nodes_with_their_health_and_the_orphan_containers(web: TestClient) -> None:
    c = onboard(web, "Acme Hosting GmbH")
    add_node(web, "hn-aaaaaaaaaaaa", c.client_id, state="running", alias="acme-main")
    add_node(
        web,
        "hn-bbbbbbbbbbbb",
        c.client_id,
        state="failed",
        alias="acme-spare",
        reason="its container is gone (removed outside the LSP); its data volume may remain",
    )
    add_node(web, "hn-dddddddddddd", c.client_id, state="deleted", alias="acme-gone")
    orch = FakeOrchestrator({"hn-aaaaaaaaaaaa": NodeStatus("running"), "hn-orphan00001": NodeStatus("running")})
    hosting = host(web, orch)
    hosting.orphans = ["hn-orphan00001"]  # what the supervisor's last pass found
    hosting.last_pass = datetime(2029, 6, 7, 8, 9, 10, tzinfo=UTC)
    login(web)
    page = web.get("/dashboard/nodes").text

    healthy = row(page, "hn-aaaaaaaaaaaa")
    assert 'data-health="healthy"' in healthy
    assert "Acme Hosting GmbH" in healthy and "acme-main" in healthy
    assert PUBKEY[:16] + "…" in healthy and "2030-01-02 03:04:05" in healthy
    gone = row(page, "hn-bbbbbbbbbbbb")
    assert 'data-health="degraded"' in gone and "<td>missing</td>" in gone
    assert "its container is gone (removed outside the LSP)" in gone
    assert "hn-dddddddddddd" not in page  # deleted nodes are history, not hosted
    # The orphan container: a warning to handle by hand, not a node row.
    orphans = page[page.index('id="orphans"') :]
    assert "hn-orphan00001" in orphans and "remove them by hand after checking" in orphans
    assert 'id="node-hn-orphan00001"' not in page
    assert "2029-06-07 08:09:10 UTC" in page
    assert 'id="orchestrator-error"' not in page and "does not host nodes" not in page
    # The page is in the navigation of the others.
    assert 'href="/dashboard/nodes"' in web.get("/dashboard/channels").text


def test_a_stopped_node_and_a_supervisor_that_has_not_looked_yet(web: TestClient) -> None:
    c = onboard(web, "Quiet Ltd")
    add_node(web, "hn-cccccccccccc", c.client_id, state="stopped", alias="quiet")
    host(web, FakeOrchestrator({"hn-cccccccccccc": NodeStatus("stopped", exit_code=0)}))
    login(web)
    page = web.get("/dashboard/nodes").text
    assert 'data-health="stopped"' in row(page, "hn-cccccccccccc")
    assert "has not looked yet" in page


def test_hosting_off_says_so(web: TestClient) -> None:
    assert ctx_of(web).hosting is None  # LSP_HOSTING_ENABLED is off by default
    login(web)
    r = web.get("/dashboard/nodes")
    assert r.status_code == 200
    assert "This LSP does not host nodes: LSP_HOSTING_ENABLED is off" in r.text
    assert "<table" not in r.text


def test_an_unreachable_orchestrator_is_shown_once_at_the_top(web: TestClient) -> None:
    orch = FakeOrchestrator(unavailable=UNREACHABLE)
    host(web, orch)
    login(web)
    # Even before any node exists the operator learns the orchestrator is down.
    page = web.get("/dashboard/nodes").text
    assert UNREACHABLE in page[page.index('id="orchestrator-error"') :].split("</div>")[0]

    c = onboard(web, "Acme Hosting GmbH")
    add_node(web, "hn-aaaaaaaaaaaa", c.client_id, state="running", alias="acme-main")
    add_node(web, "hn-bbbbbbbbbbbb", c.client_id, state="failed", alias="acme-spare", reason="LND: wallet locked")
    page = web.get("/dashboard/nodes").text
    top = page[page.index('id="orchestrator-error"') :].split("</div>")[0]
    assert UNREACHABLE in top and top.count(UNREACHABLE) == 1
    assert page.index('id="orchestrator-error"') < page.index("<table")
    for node_id in ("hn-aaaaaaaaaaaa", "hn-bbbbbbbbbbbb"):
        r = row(page, node_id)
        assert 'data-health="unknown"' in r and "<td>unknown</td>" in r
    assert UNREACHABLE in row(page, "hn-aaaaaaaaaaaa")  # health() puts it as the reason of a node without one
    assert "LND: wallet locked" in row(page, "hn-bbbbbbbbbbbb")  # a node's own reason stays

    orch.unavailable = None  # the daemon is back
    orch.nodes = {"hn-aaaaaaaaaaaa": NodeStatus("running")}
    page = web.get("/dashboard/nodes").text
    assert 'id="orchestrator-error"' not in page and 'data-health="healthy"' in row(page, "hn-aaaaaaaaaaaa")
