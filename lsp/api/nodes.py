"""/api/nodes: hosted Lightning nodes, one dedicated LND per request (docs/HOSTING.md).

Signed and tenant-isolated like every client endpoint: a client sees, drives and deletes only its
own nodes (another client's node is a 404). The operator's view is /api/admin/nodes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field, field_validator
from starlette.concurrency import run_in_threadpool

from lsp.api.deps import Ctx, CurrentClient, require_admin
from lsp.api.schemas import ERROR_RESPONSES, MAX_SAT, CamelModel
from lsp.context import AppContext
from lsp.db.models_hosting import HostedNode
from lsp.errors import Forbidden
from lsp.hosting.service import ChannelAsk, HostedNodes, NodeAsk

router = APIRouter(tags=["nodes"], responses=ERROR_RESPONSES)


class ChannelConfig(CamelModel):
    """One initial channel, opened from the LSP's node to the new node."""

    capacity: int = Field(gt=0, le=MAX_SAT, description="sats")
    push_amount: int = Field(default=0, ge=0, le=MAX_SAT, description="sats given to the new node at open (charged to you)")
    is_private: bool = Field(default=False, description="an unannounced channel")


class AutopilotConfig(CamelModel):
    enabled: bool = False
    max_channels: int | None = Field(default=None, ge=1, le=50)
    allocation: float | None = Field(default=None, gt=0, le=1, description="share of the wallet autopilot may commit")


class HostedNodeConfig(CamelModel):
    """The seed's HostedNodeConfig."""

    alias: str = Field(min_length=1, max_length=32, description="the node's alias (LND allows 32 bytes)")
    color: str = Field(default="#3399ff", pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb")
    features: list[str] = Field(default_factory=list, max_length=10, description="keysend, amp, wumbo, ...")
    channels: list[ChannelConfig] = Field(default_factory=list, max_length=50)
    autopilot: AutopilotConfig = Field(default_factory=AutopilotConfig)

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        if len(value.encode()) > 32:
            raise ValueError("is longer than 32 bytes in UTF-8")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("has control characters")
        return value

    def ask(self) -> NodeAsk:
        return NodeAsk(
            alias=self.alias,
            color=self.color.lower(),
            features=list(self.features),
            channels=[ChannelAsk(c.capacity, c.push_amount, c.is_private) for c in self.channels],
            autopilot=self.autopilot.enabled,
            autopilot_max_channels=self.autopilot.max_channels,
            autopilot_allocation=self.autopilot.allocation,
        )


class Endpoint(CamelModel):
    grpc: str = Field(description="host:port of the node's gRPC (TLS with tlsCert)")
    rest: str = Field(description="host:port of the node's REST proxy (TLS with tlsCert)")


class HostedNodeView(CamelModel):
    node_id: str
    state: str = Field(description="provisioning, running, restarting, stopped, failed, deleting or deleted")
    reason: str | None = Field(description="why it failed (or what deletion waits for), in words")
    alias: str
    color: str
    features: list[str]
    pubkey: str | None
    endpoint: Endpoint | None = Field(description="where to reach it, once it has a wallet")
    macaroon: str | None = Field(description="hex; the wallet permissions of docs/HOSTING.md, nothing more")
    tls_cert: str | None = Field(description="PEM")
    channel_points: list[str] = Field(description="the initial channels (funding txid:output)")
    paid_until: datetime
    sweep_address: str | None
    sweep_sat_per_vbyte: int | None
    sweep_txid: str | None
    created_at: datetime
    running_at: datetime | None


class NodeMetrics(CamelModel):
    """The seed's NodeMetrics, from the node's own LND."""

    channel_count: int
    active_channel_count: int
    total_capacity: int = Field(description="sats")
    local_balance: int = Field(description="sats")
    routing_revenue: int = Field(description="sats earned forwarding")
    success_rate: float | None = Field(description="succeeded / finished payments it sent; null before the first")
    payments_sent: int
    uptime: float = Field(description="seconds since its LND last started")
    memory_bytes: int | None = Field(description="what its container uses now, if the orchestrator measures it")
    forwarding_events: list[dict[str, Any]]


def hosting(ctx: Ctx) -> HostedNodes:
    if ctx.hosting is None:
        raise Forbidden("this LSP does not host nodes (LSP_HOSTING_ENABLED is off)", code="hosting_disabled")
    return ctx.hosting


Hosting = Annotated[HostedNodes, Depends(hosting)]


def view(ctx: AppContext, row: HostedNode, hosting: HostedNodes) -> HostedNodeView:
    cfg = json.loads(row.config)
    endpoint = None
    if row.tls_cert is not None:
        addr = hosting.addresses(row)
        endpoint = Endpoint(grpc=addr.endpoint_grpc, rest=addr.endpoint_rest)
    gone = row.state in ("deleting", "deleted")
    return HostedNodeView(
        node_id=row.id,
        state=row.state,
        reason=row.reason,
        alias=cfg["alias"],
        color=cfg["color"],
        features=cfg.get("features") or [],
        pubkey=row.pubkey,
        endpoint=None if gone else endpoint,
        macaroon=None if gone or row.client_macaroon_enc is None else ctx.box.decrypt(row.client_macaroon_enc),
        tls_cert=None if gone else row.tls_cert,
        channel_points=json.loads(row.channel_points),
        paid_until=row.paid_until,
        sweep_address=row.sweep_address,
        sweep_sat_per_vbyte=row.sweep_sat_per_vbyte,
        sweep_txid=row.sweep_txid,
        created_at=row.created_at,
        running_at=row.running_at,
    )


@router.post("/api/nodes", status_code=202, response_model=HostedNodeView)
async def create_node(body: HostedNodeConfig, client: CurrentClient, ctx: Ctx, h: Hosting) -> HostedNodeView:
    """Ask for a dedicated LND node. Answers 202 at once (state ``provisioning``); poll
    GET /api/nodes/{nodeId} (or wait for the ``node_running`` event) for its endpoint,
    macaroon and certificate. Charges the first period, each channel's opening fee and push."""
    row = await h.create(client.id, body.ask(), request_id=None)
    return view(ctx, row, h)


@router.get("/api/nodes", response_model=list[HostedNodeView])
async def list_nodes(client: CurrentClient, ctx: Ctx, h: Hosting) -> list[HostedNodeView]:
    rows = await run_in_threadpool(h.rows, client.id)
    return [view(ctx, r, h) for r in rows]


@router.get("/api/nodes/{node_id}", response_model=HostedNodeView)
async def get_node(node_id: str, client: CurrentClient, ctx: Ctx, h: Hosting) -> HostedNodeView:
    return view(ctx, await run_in_threadpool(h.get, client.id, node_id), h)


@router.get("/api/nodes/{node_id}/metrics", response_model=NodeMetrics)
async def node_metrics(node_id: str, client: CurrentClient, h: Hosting) -> NodeMetrics:
    return NodeMetrics.model_validate(await h.metrics(client.id, node_id))


@router.post("/api/nodes/{node_id}/stop", response_model=HostedNodeView)
async def stop_node(node_id: str, client: CurrentClient, ctx: Ctx, h: Hosting) -> HostedNodeView:
    return view(ctx, await h.stop(client.id, node_id), h)


@router.post("/api/nodes/{node_id}/start", status_code=202, response_model=HostedNodeView)
async def start_node(node_id: str, client: CurrentClient, ctx: Ctx, h: Hosting) -> HostedNodeView:
    """Start a stopped node; it is ``running`` again (event ``node_running``) once its LND is."""
    return view(ctx, await h.start(client.id, node_id), h)


@router.delete("/api/nodes/{node_id}", status_code=202, response_model=HostedNodeView)
async def delete_node(
    node_id: str,
    client: CurrentClient,
    ctx: Ctx,
    h: Hosting,
    sweep_address: Annotated[
        str | None, Query(alias="sweepAddress", max_length=100, description="where the node's on-chain funds go")
    ] = None,
    sweep_sat_per_vbyte: Annotated[
        int | None,
        Query(alias="sweepSatPerVbyte", ge=1, le=10_000, description="the sweep's fee rate (default: LND's 6-block estimate)"),
    ] = None,
) -> HostedNodeView:
    """Close the node's channels cooperatively, sweep its wallet to ``sweepAddress`` once the
    closes confirm, then remove the node and its data (state ``deleting`` until then). A node
    holding funds needs ``sweepAddress`` (409 ``sweep_address_required``)."""
    row = await h.delete(client.id, node_id, sweep_address, request_id=None, sweep_sat_per_vbyte=sweep_sat_per_vbyte)
    return view(ctx, row, h)


class HostingHealth(CamelModel):
    nodes: list[dict[str, Any]]
    orchestrator_error: str | None = Field(description="the orchestrator's words when it did not answer (containers unknown)")
    orphans: list[str] = Field(description="containers of this LSP instance with no node behind them (left alone)")
    last_pass: datetime | None = Field(description="when the supervisor last looked")


@router.get("/api/admin/nodes", response_model=HostingHealth, dependencies=[Depends(require_admin)], tags=["admin"])
async def admin_nodes(h: Hosting) -> HostingHealth:
    health = await h.health()
    return HostingHealth(nodes=health.nodes, orchestrator_error=health.error, orphans=h.orphans, last_pass=h.last_pass)
