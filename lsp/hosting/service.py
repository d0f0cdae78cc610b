"""Hosted Lightning nodes: a dedicated LND per client, created, supervised, billed and deleted by the LSP.

Life of a node (``HostedNode.state``)::

    provisioning -> running <-> stopped
         |           |   ^
         v           v   |   (its container died: node_failed, and the supervisor restarts it)
       failed      restarting -> failed (it did not come back: node_failed again)
                   running/stopped/failed -> deleting -> deleted

``create`` checks everything it can before anything exists (features, channel sizes, KYC
tier, balance, the orchestrator answering), debits the first period and the initial channels,
and returns; ``_provision`` then creates the container and volume, creates the wallet
(GenSeed + InitWallet: the password stays in the node's volume so it unlocks itself on every
start), bakes the client's macaroon, and opens the initial channels from the LSP's node in one
atomic batch. Any failure on the way removes the container and volume and refunds the charge:
no half-created node is left behind.

The supervisor (``run``, every ``LSP_HOSTING_MONITOR_INTERVAL_S``; its first pass is the
start-up reconciliation) moves every node towards what its client asked for: a node whose
container died is reported and restarted, a node asked to stop is stopped, a deleting node
is taken one step further (close its channels cooperatively, wait for the closes to confirm,
sweep its wallet to the client's address, remove it). Containers of this LSP instance with no
node behind them are reported, never deleted. It also bills: each period in advance, and
``transaction_fee`` per payment the node sent or received.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from embit import script as escript
from sqlalchemy import func, select

from lncore.lnd.client import LndClient
from lncore.lnd.unlocker import WalletUnlocker
from lncore.lnd.walletkit import WalletKit
from lsp.compliance import audit, kyc
from lsp.db.base import session_scope, utcnow
from lsp.db.models_hosting import HostedNode
from lsp.errors import (
    Conflict,
    Forbidden,
    InsufficientFunds,
    LndError,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from lsp.hosting import features as feature_flags
from lsp.hosting.orchestrator import (
    LND_DIR,
    Addresses,
    NodeSpec,
    NodeStatus,
    Orchestrator,
    OrchestratorError,
    OrchestratorUnavailable,
    Ports,
)
from lsp.services import ledger
from lsp.services.channels import check_size
from lsp.services.events import Event

if TYPE_CHECKING:
    from lsp.context import AppContext

log = logging.getLogger("lsp.hosting")
T = TypeVar("T")

# What the client's macaroon may do: run a Lightning wallet on its own node. Left out on purpose:
#   onchain:write  -- SendCoins, OpenChannel, CloseChannel: on-chain funds leave only through
#                     DELETE's sweep to the address the client names, channels come from the LSP;
#   peers:write    -- ConnectPeer dials any host:port from inside the LSP's network;
#   macaroon:*     -- BakeMacaroon would mint an admin macaroon (and delete root keys);
#   signer:*, uri:* and the sub-servers' other admin rights (wallet keys, watchtower, chain).
# Each node has its own macaroon root key, so nothing baked on one node opens another.
CLIENT_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("info", "read"),
    ("invoices", "read"),
    ("invoices", "write"),
    ("offchain", "read"),
    ("offchain", "write"),
    ("onchain", "read"),
    ("address", "read"),
    ("address", "write"),
    ("peers", "read"),
    ("message", "read"),
    ("message", "write"),
)
READY_STATES = ("RPC_ACTIVE", "SERVER_ACTIVE")
LIVE_STATES = ("provisioning", "running", "restarting", "stopped", "failed", "deleting")
POLL_S = 0.25


@dataclass(frozen=True)
class ChannelAsk:
    capacity: int
    push_amount: int = 0
    is_private: bool = False


@dataclass(frozen=True)
class NodeAsk:
    """The seed's HostedNodeConfig, validated by the API's model."""

    alias: str
    color: str
    features: list[str]
    channels: list[ChannelAsk]
    autopilot: bool = False
    autopilot_max_channels: int | None = None
    autopilot_allocation: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "alias": self.alias,
                "color": self.color,
                "features": self.features,
                "channels": [c.__dict__ for c in self.channels],
                "autopilot": {
                    "enabled": self.autopilot,
                    "maxChannels": self.autopilot_max_channels,
                    "allocation": self.autopilot_allocation,
                },
            },
            sort_keys=True,
        )


class ProvisionFailed(Exception):
    pass


@dataclass(frozen=True)
class Health:
    nodes: list[dict[str, Any]]
    error: str | None  # the orchestrator's own words when it did not answer


def valid_address(address: str, network: str) -> bool:
    """A Bitcoin address of ``network`` (bech32/bech32m, either case, or base58), checked by embit."""
    from lsp.swaps.scripts import embit_network

    params = embit_network(network)
    if address.isupper():  # BIP 173 allows an all-uppercase bech32 address (QR codes)
        address = address.lower()
    try:
        escript.address_to_scriptpubkey(address)
    except Exception:
        return False
    if address.lower().startswith(str(params["bech32"]) + "1"):
        return True
    from embit import base58

    try:
        version = base58.decode_check(address)[:1]
    except Exception:
        return False
    return version in (params["p2pkh"], params["p2sh"])


def payments_to_bill(billed: int, payments: list[tuple[int, str]]) -> tuple[int, int]:
    """(succeeded payments to bill, the new mark) for the node's payments after index ``billed``:
    the mark moves over finished payments only, so one still in flight is billed when it succeeds,
    not skipped by a later one that finished first."""
    count, mark = 0, billed
    for index, status in sorted(payments):
        if index <= mark:
            continue
        if status not in ("SUCCEEDED", "FAILED"):
            break
        count += status == "SUCCEEDED"
        mark = index
    return count, mark


def hosting_charge(settings: Any, ask: NodeAsk) -> int:
    """What creating the node debits: the first period, each channel's opening fee and push."""
    return int(settings.hosting.monthly_fee) + sum(int(settings.opening_fee(c.capacity)) + c.push_amount for c in ask.channels)


class HostedNodes:
    def __init__(self, ctx: AppContext, orchestrator: Orchestrator | None = None):
        self.ctx = ctx
        self.settings = ctx.settings.hosting
        self._orch = orchestrator
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._clients: dict[str, LndClient] = {}
        self.orphans: list[str] = []  # containers of this instance with no node behind them, last pass
        self.last_pass: datetime | None = None

    # -- plumbing ------------------------------------------------------------------------
    @property
    def orchestrator(self) -> Orchestrator:
        if self._orch is None:
            if self.settings.orchestrator == "kubernetes":
                from lsp.hosting.k8s import KubernetesOrchestrator

                self._orch = KubernetesOrchestrator(self.settings)
            else:
                from lsp.hosting.docker_orch import DockerOrchestrator

                self._orch = DockerOrchestrator(self.settings)
        return self._orch

    async def _orch_call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except OrchestratorUnavailable as exc:
            raise ServiceUnavailable(exc.reason, code="orchestrator_unavailable") from None

    def _lock(self, node_id: str) -> asyncio.Lock:
        return self._locks.setdefault(node_id, asyncio.Lock())

    async def _db(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kw)

    def _row(self, node_id: str) -> HostedNode | None:
        with session_scope(self.ctx.sessions) as s:
            row = s.get(HostedNode, node_id)
            if row is not None:
                s.expunge(row)
            return row

    def _must(self, node_id: str) -> HostedNode:
        row = self._row(node_id)
        assert row is not None, node_id
        return row

    def _update(self, node_id: str, **values: Any) -> HostedNode:
        with session_scope(self.ctx.sessions) as s:
            row = s.get(HostedNode, node_id)
            assert row is not None, node_id
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = utcnow()
            s.flush()
            s.expunge(row)
            return row

    def _spec(self, row: HostedNode, *, with_password: bool = True) -> NodeSpec:
        cfg = json.loads(row.config)
        ap = cfg.get("autopilot") or {}
        flags = feature_flags.flags(
            cfg.get("features") or [],
            autopilot=bool(ap.get("enabled")),
            max_channels=ap.get("maxChannels"),
            allocation=ap.get("allocation"),
        )
        return NodeSpec(
            node_id=row.id,
            client_id=row.client_id,
            alias=cfg["alias"],
            color=cfg["color"],
            ports=Ports(grpc=row.grpc_port, rest=row.rest_port, p2p=row.p2p_port),
            extra_flags=flags,
            password=self.ctx.box.decrypt(row.password_enc).encode() if with_password else b"",
        )

    def addresses(self, row: HostedNode) -> Addresses:
        """Where the LSP, its LND and the client reach the node (no secret is decrypted for it)."""
        return self.orchestrator.addresses(self._spec(row, with_password=False))

    def _publish(self, kind: str, row: HostedNode, **data: Any) -> None:
        self.ctx.bus.publish(Event(kind, row.client_id, {"nodeId": row.id, "state": row.state, "pubkey": row.pubkey, **data}))

    def admin_client(self, row: HostedNode) -> LndClient:
        """The LSP's own connection to the node (its admin macaroon)."""
        client = self._clients.get(row.id)
        if client is None:
            if row.admin_macaroon_enc is None or row.tls_cert is None:
                raise Conflict(f"node {row.id} has no wallet yet (state {row.state})", field="nodeId")
            macaroon = self.ctx.box.decrypt(row.admin_macaroon_enc)
            client = LndClient(self.addresses(row).rpc, row.tls_cert.encode(), macaroon, timeout_s=30)
            self._clients[row.id] = client
        return client

    async def _drop_client(self, node_id: str) -> None:
        client = self._clients.pop(node_id, None)
        if client is not None:
            await client.close()

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        for node_id in list(self._clients):
            await self._drop_client(node_id)

    # -- the API's verbs ------------------------------------------------------------------
    def get(self, client_id: str, node_id: str) -> HostedNode:
        row = self._row(node_id)
        if row is None or row.client_id != client_id:
            raise NotFound(f"no hosted node {node_id}", field="nodeId")
        return row

    def rows(self, client_id: str | None, *, live_only: bool = False) -> list[HostedNode]:
        """A client's nodes (every client's with None), newest first; ``live_only`` leaves the
        deleted ones out (the supervisor's and the operator's view: deleted nodes only pile up)."""
        with session_scope(self.ctx.sessions) as s:
            q = select(HostedNode).order_by(HostedNode.created_at.desc())
            if client_id is not None:
                q = q.where(HostedNode.client_id == client_id)
            if live_only:
                q = q.where(HostedNode.state != "deleted")
            rows = list(s.scalars(q))
            for r in rows:
                s.expunge(r)
            return rows

    def _check_ask(self, ask: NodeAsk) -> None:
        bad = feature_flags.unknown(ask.features)
        if bad:
            i = ask.features.index(bad[0])
            known = ", ".join(sorted(feature_flags.FEATURES))
            raise ValidationFailed(f"unknown feature {bad[0]!r} (known: {known})", field=f"body.features[{i}]")
        if len(ask.channels) > self.settings.max_channels:
            raise ValidationFailed(
                f"{len(ask.channels)} channels asked for; at most {self.settings.max_channels}", field="body.channels"
            )
        for i, c in enumerate(ask.channels):
            check_size(
                self.ctx.settings,
                c.capacity,
                c.push_amount,
                capacity_field=f"body.channels[{i}].capacity",
                push_field=f"body.channels[{i}].pushAmount",
            )

    async def create(self, client_id: str, ask: NodeAsk, *, request_id: str | None) -> HostedNode:
        if not self.settings.enabled:
            raise Forbidden("this LSP does not host nodes (LSP_HOSTING_ENABLED is off)", code="hosting_disabled")
        self._check_ask(ask)
        if ask.channels and self.ctx.lnd is None:
            raise ServiceUnavailable("the LSP has no LND node to open the initial channels from", code="lnd_unavailable")
        # The orchestrator must answer before anything is charged or written.
        await self._orch_call(self.orchestrator.list_nodes)
        node_id = f"hn-{secrets.token_hex(6)}"
        ports = await asyncio.to_thread(self._free_ports)
        password = secrets.token_urlsafe(32)
        charge = hosting_charge(self.ctx.settings, ask)

        def record() -> HostedNode:
            with session_scope(self.ctx.sessions) as s:
                balance = ledger.lock_client(s, client_id)
                for i, c in enumerate(ask.channels):
                    kyc.enforce_channel(s, self.ctx.settings, client_id, c.capacity, f"body.channels[{i}].capacity")
                kyc.enforce_approved(s, self.ctx.settings, client_id)
                tier_name = kyc.get_profile(s, self.ctx.settings, client_id).tier
                limit = kyc.policy_of(self.ctx.settings).tier(tier_name).max_hosted_nodes
                live = s.scalar(
                    select(func.count())
                    .select_from(HostedNode)
                    .where(
                        HostedNode.client_id == client_id,
                        HostedNode.state.in_(LIVE_STATES),
                        HostedNode.desired != "deleted",  # failed to provision, or on its way out
                    )
                )
                if int(live or 0) >= limit:
                    raise Forbidden(
                        f"tier {tier_name} allows {limit} hosted node(s) and you run {live}",
                        code="limit_hosted_nodes",
                    )
                if balance < charge:
                    raise InsufficientFunds(
                        f"creating this node costs {charge} sat (first period {self.settings.monthly_fee} sat, "
                        f"channel fees and push amounts) and the balance is {balance} sat"
                    )
                now = utcnow()
                row = HostedNode(
                    id=node_id,
                    client_id=client_id,
                    orchestrator=self.settings.orchestrator,
                    state="provisioning",
                    desired="running",
                    config=ask.to_json(),
                    grpc_port=ports.grpc,
                    rest_port=ports.rest,
                    p2p_port=ports.p2p,
                    password_enc=self.ctx.box.encrypt(password),
                    channel_points="[]",
                    charged_sat=charge,
                    paid_until=now + timedelta(seconds=self.settings.billing_period_s),
                    billed_payments=0,
                    billed_invoices=0,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                if charge:
                    ledger.record(s, client_id, -charge, "hosting_fee", f"node:{node_id}:create")
                audit.record(
                    s,
                    actor=f"client:{client_id}",
                    action="node.create",
                    target=f"node:{node_id}",
                    after={"config": json.loads(row.config), "charged_sat": charge, "orchestrator": row.orchestrator},
                    request_id=request_id,
                )
                s.flush()
                s.expunge(row)
                return row

        row: HostedNode = await self._db(record)
        self._spawn(node_id, self._provision(node_id, ask))
        return row

    def _free_ports(self) -> Ports:
        """Three ports free on the publish host and used by no other node of this LSP."""
        with session_scope(self.ctx.sessions) as s:
            taken: set[int] = set()
            for g, r, p in s.execute(
                select(HostedNode.grpc_port, HostedNode.rest_port, HostedNode.p2p_port).where(HostedNode.state != "deleted")
            ):
                taken |= {g, r, p}
        socks: list[socket.socket] = []
        ports: list[int] = []
        try:
            while len(ports) < 3:
                sock = socket.socket(socket.AF_INET6 if ":" in self.settings.publish_host else socket.AF_INET)
                sock.bind((self.settings.publish_host, 0))
                socks.append(sock)
                port = int(sock.getsockname()[1])
                if port not in taken:
                    ports.append(port)
        finally:
            for sock in socks:
                sock.close()
        return Ports(grpc=ports[0], rest=ports[1], p2p=ports[2])

    async def start(self, client_id: str, node_id: str) -> HostedNode:
        row = await self._db(self.get, client_id, node_id)
        if row.state not in ("stopped", "failed") or row.desired == "deleted":
            raise Conflict(f"node {node_id} is {row.state}; only a stopped node starts", field="nodeId")
        if row.admin_macaroon_enc is None:
            raise Conflict(f"node {node_id} never finished provisioning; delete it", field="nodeId")

        def renew() -> None:
            with session_scope(self.ctx.sessions) as s:
                r = s.get(HostedNode, node_id)
                assert r is not None
                ledger.lock_client(s, r.client_id)
                unpaid = self._renew(s, r)
                if unpaid is not None:
                    raise InsufficientFunds(unpaid.split(":")[0])
                r.desired, r.reason, r.updated_at = "running", None, utcnow()

        async with self._lock(node_id):
            await self._db(renew)  # a stopped node is not billed; starting it after its period ran out pays a new one
            await self._orch_call(self.orchestrator.start, node_id)
        self._spawn(node_id, self._await_running(node_id, "started by its client"))
        found = await self._db(self._row, node_id)
        assert found is not None
        return found

    async def stop(self, client_id: str, node_id: str) -> HostedNode:
        row = await self._db(self.get, client_id, node_id)
        if row.state != "running":
            raise Conflict(f"node {node_id} is {row.state}; only a running node stops", field="nodeId")
        async with self._lock(node_id):
            await self._db(self._update, node_id, desired="stopped")
            await self._drop_client(node_id)
            await self._orch_call(self.orchestrator.stop, node_id)
            row = await self._db(self._update, node_id, state="stopped")
        self._publish("node_stopped", row)
        return row

    async def delete(
        self,
        client_id: str,
        node_id: str,
        sweep_address: str | None,
        *,
        request_id: str | None,
        sweep_sat_per_vbyte: int | None = None,
    ) -> HostedNode:
        row = await self._db(self.get, client_id, node_id)
        if row.state in ("deleting", "deleted"):
            raise Conflict(f"node {node_id} is already {row.state}", field="nodeId")
        if row.state == "provisioning":
            raise Conflict(f"node {node_id} is still provisioning; delete it once it is running or failed", field="nodeId")
        network = self.ctx.settings.network
        if sweep_address is not None and not valid_address(sweep_address, network):
            raise ValidationFailed(f"{sweep_address!r} is not a {network} Bitcoin address", field="query.sweepAddress")
        if sweep_address is None and row.admin_macaroon_enc is not None:
            held = await self._funds(row)
            if held:
                raise Conflict(
                    f"node {node_id} holds {held} sat (channels and wallet); name sweepAddress to receive them",
                    code="sweep_address_required",
                    field="query.sweepAddress",
                )
        if sweep_address is not None and sweep_address.isupper():
            sweep_address = sweep_address.lower()
        if row.state == "running":  # the payments since the supervisor's last pass, billed before it goes
            try:
                await self._bill(row, renew=False)
            except Exception as exc:
                log.warning("hosted node %s: final billing failed: %s", node_id, _reason(exc))
        row = await self._db(self._mark_deleting, row, sweep_address, sweep_sat_per_vbyte, request_id)
        self._spawn(node_id, self._delete_steps(node_id))
        return row

    def _mark_deleting(
        self, row: HostedNode, sweep_address: str | None, sweep_sat_per_vbyte: int | None, request_id: str | None
    ) -> HostedNode:
        """The node's state and its audit entry, in one transaction."""
        with session_scope(self.ctx.sessions) as s:
            r = s.get(HostedNode, row.id)
            assert r is not None
            r.desired, r.state, r.updated_at = "deleted", "deleting", utcnow()
            r.sweep_address, r.sweep_sat_per_vbyte = sweep_address, sweep_sat_per_vbyte
            audit.record(
                s,
                actor=f"client:{row.client_id}",
                action="node.delete",
                target=f"node:{row.id}",
                before={"state": row.state, "pubkey": row.pubkey},
                after={"sweep_address": sweep_address},
                request_id=request_id,
            )
            s.flush()
            s.expunge(r)
            return r

    async def _funds(self, row: HostedNode) -> int:
        """Sats the node holds: its wallet and its side of every channel. A stopped node is started
        to look (it cannot be read otherwise): its funds are what DELETE would sweep."""
        if row.state != "running":
            return 1 if row.channel_points != "[]" else 0  # cannot read it: assume its channels hold funds
        lnd = self.admin_client(row)
        wallet = await lnd.wallet_balance()
        chans = await lnd.list_channels()
        pending = await lnd.pending_channels()
        return (
            int(wallet.total_balance)
            + sum(int(c.local_balance) for c in chans)
            + sum(int(p.channel.local_balance) for p in pending.pending_open_channels)
        )

    def _spawn(self, node_id: str, coro: Coroutine[Any, Any, None]) -> None:
        old = self._tasks.get(node_id)
        if old is not None and not old.done():
            coro.close()
            return
        task = asyncio.create_task(coro, name=f"lsp-node-{node_id}")
        self._tasks[node_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(node_id, None) if self._tasks.get(node_id) is task else None)

    # -- provisioning -----------------------------------------------------------------------
    async def _provision(self, node_id: str, ask: NodeAsk) -> None:
        row = await self._db(self._must, node_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.start_timeout_s
        try:
            async with self._lock(node_id):
                spec = self._spec(row)
                await self._orch_call(self.orchestrator.create, spec)
                cert = await self._wait_cert(node_id, deadline)
                addr = self.orchestrator.addresses(spec)
                async with WalletUnlocker(addr.rpc, cert) as unlocker:
                    await self._wait_state(unlocker, node_id, ("NON_EXISTING",), deadline)
                    mnemonic = await unlocker.gen_seed()
                    admin = await unlocker.init_wallet(spec.password, mnemonic)
                    await self._wait_state(unlocker, node_id, READY_STATES, deadline)
                row = await self._db(
                    self._update,
                    node_id,
                    tls_cert=cert.decode(),
                    seed_enc=self.ctx.box.encrypt(" ".join(mnemonic)),
                    admin_macaroon_enc=self.ctx.box.encrypt(admin.hex()),
                )
                lnd = self.admin_client(row)
                info = await self._wait_synced(lnd, node_id, deadline)
                baked = await lnd.bake_macaroon(list(CLIENT_PERMISSIONS))
                row = await self._db(
                    self._update, node_id, pubkey=info.identity_pubkey, client_macaroon_enc=self.ctx.box.encrypt(baked)
                )
                points: list[str] = []
                if ask.channels:
                    points = await self._open_channels(row, addr.peer, ask)
                row = await self._db(
                    self._update, node_id, state="running", running_at=utcnow(), channel_points=json.dumps(points)
                )
            log.info("hosted node %s running: %s, %d channel(s)", node_id, row.pubkey, len(points))
            self._publish("node_running", row)
        except asyncio.CancelledError:
            await self._abandon(node_id, "the LSP shut down while the node was provisioning")
            raise
        except Exception as exc:
            reason = _reason(exc)
            log.warning("hosted node %s failed to provision: %s", node_id, reason)
            await self._abandon(node_id, reason)

    async def _abandon(self, node_id: str, reason: str) -> None:
        """Undo a provisioning that failed: remove the container and volume, refund, state failed.
        LND's last words go to the LSP's log first (the container and its logs are removed)."""
        await self._drop_client(node_id)
        try:
            tail = await asyncio.shield(asyncio.to_thread(self.orchestrator.logs_tail, node_id))
            if tail:
                log.warning("hosted node %s failed (%s); LND's last lines:\n%s", node_id, reason, tail.rstrip())
        except Exception as exc:
            log.warning("hosted node %s: its logs could not be read: %s", node_id, _reason(exc))
        try:
            await asyncio.shield(asyncio.to_thread(self.orchestrator.remove, node_id))
        except Exception as exc:
            reason += f"; removing it failed too: {_reason(exc)} (the supervisor will report it as an orphan)"

        def refund() -> HostedNode:
            with session_scope(self.ctx.sessions) as s:
                row = s.get(HostedNode, node_id)
                assert row is not None
                if row.charged_sat and row.state == "provisioning":
                    ledger.lock_client(s, row.client_id)
                    ledger.record(s, row.client_id, row.charged_sat, "hosting_refund", f"node:{node_id}:failed")
                row.state, row.desired, row.reason, row.updated_at = "failed", "deleted", reason, utcnow()
                s.flush()
                s.expunge(row)
                return row

        row = await asyncio.shield(asyncio.to_thread(refund))
        self._publish("node_failed", row, reason=reason)

    async def _poll(self, node_id: str, deadline: float, doing: str, probe: Callable[[], Awaitable[T | None]]) -> T:
        """``probe()`` until it returns something (an LND not listening yet counts as not yet), the
        node's LND dies, or the deadline passes."""
        while True:
            try:
                got = await probe()
            except LndError:
                got = None
            if got is not None:
                return got
            await self._check_alive(node_id, deadline, doing)

    async def _wait_cert(self, node_id: str, deadline: float) -> bytes:
        async def cert() -> bytes | None:
            return await self._orch_call(self.orchestrator.read_file, node_id, f"{LND_DIR}/tls.cert") or None

        return await self._poll(node_id, deadline, "write its TLS certificate", cert)

    async def _check_alive(self, node_id: str, deadline: float, doing: str) -> None:
        status = await self._orch_call(self.orchestrator.status, node_id)
        if status.state in ("stopped", "missing"):
            detail = f" ({status.detail})" if status.detail else ""
            raise ProvisionFailed(f"LND exited with code {status.exit_code}{detail} before it could {doing}")
        if asyncio.get_running_loop().time() > deadline:
            raise ProvisionFailed(f"LND did not {doing} within {self.settings.start_timeout_s:.0f} s")
        await asyncio.sleep(POLL_S)

    async def _wait_state(self, unlocker: WalletUnlocker, node_id: str, wanted: tuple[str, ...], deadline: float) -> None:
        async def reached() -> str | None:
            state = await unlocker.state()
            return state if state in wanted else None

        await self._poll(node_id, deadline, f"reach {' or '.join(wanted)}", reached)

    async def _wait_synced(self, lnd: LndClient, node_id: str, deadline: float) -> Any:
        async def synced() -> Any:
            info = await lnd.get_info()
            return info if info.synced_to_chain else None

        return await self._poll(node_id, deadline, "sync to the chain", synced)

    async def _connect(self, pubkey: str, peer: str) -> None:
        """The LSP's LND connected to the node (asked only when it is not: LND logs an error for
        a ConnectPeer to a connected peer)."""
        lsp = self.ctx.lnd
        assert lsp is not None
        if pubkey not in {p.pub_key for p in await lsp.list_peers()}:
            await lsp.connect_peer(pubkey, peer, timeout_s=20)

    async def _open_channels(self, row: HostedNode, peer: str, ask: NodeAsk) -> list[str]:
        lsp = self.ctx.lnd
        assert lsp is not None
        assert row.pubkey is not None
        await self._connect(row.pubkey, peer)
        points = await lsp.batch_open_channels(
            row.pubkey,
            [(c.capacity, c.push_amount, c.is_private) for c in ask.channels],
            memo=f"lsp hosted node {row.id}",
        )
        return [str(p) for p in points]

    # -- the supervisor ---------------------------------------------------------------------
    async def run(self) -> None:
        """Supervise forever; the first pass reconciles what an earlier run left."""
        await self.reconcile_startup()
        while True:
            try:
                await self.tick()
            except ServiceUnavailable as exc:
                log.warning("hosted nodes: %s; looking again in %.0f s", exc.message, self.settings.monitor_interval_s)
            await asyncio.sleep(self.settings.monitor_interval_s)

    async def reconcile_startup(self) -> None:
        def stale() -> list[str]:
            with session_scope(self.ctx.sessions) as s:
                return list(s.scalars(select(HostedNode.id).where(HostedNode.state == "provisioning")))

        for node_id in await self._db(stale):
            if node_id not in self._tasks:
                await self._abandon(node_id, "the LSP restarted while the node was provisioning")

    async def tick(self) -> None:
        actual = await self._orch_call(self.orchestrator.list_nodes)
        rows = await self._db(self.rows, None, live_only=True)
        orphans = sorted(set(actual) - {r.id for r in rows})
        if orphans != self.orphans and orphans:
            log.warning("containers of this LSP with no hosted node behind them (left alone): %s", ", ".join(orphans))
        self.orphans = orphans
        for row in rows:
            if row.id in self._tasks or row.state == "provisioning":
                continue
            try:
                await self._supervise(row, actual.get(row.id))
            except ServiceUnavailable:
                raise
            except Exception as exc:
                log.warning("hosted node %s: %s", row.id, _reason(exc))
        self.last_pass = utcnow()

    async def _supervise(self, row: HostedNode, status: NodeStatus | None) -> None:
        if row.state == "deleting":
            self._spawn(row.id, self._delete_steps(row.id))
            return
        if row.desired == "running" and row.state in ("running", "restarting", "failed"):
            if status is None:
                if row.state != "failed":
                    reason = "its container is gone (removed outside the LSP); its data volume may remain"
                    row = await self._db(self._update, row.id, state="failed", reason=reason)
                    self._publish("node_failed", row, reason=reason)
                return
            if status.state == "stopped":
                detail = f" ({status.detail})" if status.detail else ""
                reason = f"its container exited with code {status.exit_code}{detail}; restarting it"
                log.warning("hosted node %s: %s", row.id, reason)
                await self._drop_client(row.id)
                row = await self._db(self._update, row.id, state="restarting", reason=reason)
                self._publish("node_failed", row, reason=reason)
                await self._orch_call(self.orchestrator.start, row.id)
                self._spawn(row.id, self._await_running(row.id, "restarted by the LSP"))
                return
            if status.state in ("running", "restarting") and row.state in ("restarting", "failed"):
                self._spawn(row.id, self._await_running(row.id, "running again"))
                return
        if row.desired == "stopped" and status is not None and status.state == "running":
            await self._orch_call(self.orchestrator.stop, row.id)
        if row.state == "running" and row.desired == "running":
            await self._bill(row)

    async def _await_running(self, node_id: str, why: str) -> None:
        row = await self._db(self._must, node_id)
        deadline = asyncio.get_running_loop().time() + self.settings.start_timeout_s
        try:
            async with self._lock(node_id):
                await self._drop_client(node_id)
                cert = (row.tls_cert or "").encode()
                addr = self.addresses(row)
                async with WalletUnlocker(addr.rpc, cert) as unlocker:
                    await self._wait_state(unlocker, node_id, READY_STATES, deadline)
                await self._wait_synced(self.admin_client(row), node_id, deadline)
                if row.pubkey and self.ctx.lnd is not None:  # reconnect the LSP, so its channels come back at once
                    await self._connect(row.pubkey, addr.peer)
                row = await self._db(self._update, node_id, state="running", reason=None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"did not come back ({why}): {_reason(exc)}"
            row = await self._db(self._update, node_id, state="failed", reason=reason)
            self._publish("node_failed", row, reason=reason)
            return
        self._publish("node_running", row, why=why)

    # -- deletion, one step per pass -----------------------------------------------------------
    async def _delete_steps(self, node_id: str) -> None:
        """Take a deleting node as far as it goes now; the next pass continues (closes confirm
        in blocks, not seconds)."""
        async with self._lock(node_id):
            row = await self._db(self._row, node_id)
            if row is None or row.state != "deleting":
                return
            try:
                done = await self._delete_step(row)
            except ServiceUnavailable:
                return
            except Exception as exc:
                log.warning("deleting hosted node %s: %s (retrying next pass)", node_id, _reason(exc))
                await self._db(self._update, node_id, reason=f"deleting: {_reason(exc)}")
                return
            if not done:
                return
            await self._drop_client(node_id)
            await self._orch_call(self.orchestrator.remove, node_id)
            row = await self._db(self._update, node_id, state="deleted", reason=None)
        log.info("hosted node %s deleted (sweep %s)", node_id, row.sweep_txid or "none")
        self._publish("node_stopped", row, sweepTxid=row.sweep_txid)

    async def _delete_step(self, row: HostedNode) -> bool:
        """True once nothing is left on the node to take out."""
        if row.admin_macaroon_enc is None:
            return True  # never had a wallet
        status = await self._orch_call(self.orchestrator.status, row.id)
        if status.state == "missing":
            return True
        if status.state != "running":
            await self._orch_call(self.orchestrator.start, row.id)
            return False
        lnd = self.admin_client(row)
        try:
            info = await lnd.get_info()
        except LndError:
            return False  # still starting
        if not info.synced_to_chain:
            return False
        channels = await lnd.list_channels()
        for ch in channels:
            await self._close(lnd, ch.channel_point)
        pending = await lnd.pending_channels()
        busy = (
            len(pending.pending_open_channels) + len(pending.waiting_close_channels) + len(pending.pending_force_closing_channels)
        )
        if channels or busy:
            return False
        # The sweep is found by its label too: the LSP may have died between broadcasting it and
        # recording its txid, and must not sweep twice or remove the node before it confirms.
        label = f"lsp hosted node {row.id} sweep"
        txid = row.sweep_txid or await WalletKit(lnd).labeled_txid(label)
        if txid:
            if txid != row.sweep_txid:
                await self._db(self._update, row.id, sweep_txid=txid)
            # Removed once the sweep has a confirmation: until then the wallet could still rebroadcast it.
            return bool(await WalletKit(lnd).tx_confirmations(txid))
        wallet = await lnd.wallet_balance()
        if int(wallet.unconfirmed_balance) > 0:
            return False  # a close's output still confirming
        if int(wallet.confirmed_balance) == 0:
            return True
        if row.sweep_address is None:
            await self._db(self._update, row.id, reason="funds arrived after delete and no sweepAddress was named")
            return False
        txid = await lnd.send_all(row.sweep_address, label=label, sat_per_vbyte=row.sweep_sat_per_vbyte)
        await self._db(self._update, row.id, sweep_txid=txid, reason="waiting for the sweep to confirm")
        log.info("hosted node %s: swept %s sat to %s in %s", row.id, wallet.confirmed_balance, row.sweep_address, txid)
        return False

    async def _close(self, lnd: LndClient, channel_point: str) -> None:
        try:
            await lnd.close_channel(channel_point)
        except LndError as exc:
            if "already" not in exc.message and "pending" not in exc.message:
                raise

    # -- billing ---------------------------------------------------------------------------
    async def _bill(self, row: HostedNode, *, renew: bool = True) -> None:
        """The period fee once due, and ``transaction_fee`` per new settled payment and invoice."""
        lnd = self.admin_client(row)
        # Only the payments after the last billed one; one still in flight holds the mark back.
        since = await lnd.list_payments(include_incomplete=True, index_offset=row.billed_payments)
        status = lnd.pb.ln.Payment.PaymentStatus.Name
        paid_count, mark = payments_to_bill(row.billed_payments, [(int(p.payment_index), status(p.status)) for p in since])
        settle_index = await self._settle_index(lnd)
        new_invoices = max(0, settle_index - row.billed_invoices)
        due_period = renew and row.paid_until <= utcnow()
        if not (mark > row.billed_payments or new_invoices or due_period):
            return
        fee = self.settings.transaction_fee

        def bill() -> str | None:
            with session_scope(self.ctx.sessions) as s:
                r = s.get(HostedNode, row.id)
                assert r is not None
                ledger.lock_client(s, r.client_id)
                # Usage is billed after the fact, even into debt: the payments happened.
                if r.billed_payments != row.billed_payments:
                    return None  # billed meanwhile (a DELETE's final bill): the next pass looks again
                count = paid_count + max(0, settle_index - r.billed_invoices)
                if count and fee:
                    ledger.record(s, r.client_id, -count * fee, "hosting_tx_fee", f"node:{r.id}:tx:{mark}:{settle_index}")
                r.billed_payments = mark
                r.billed_invoices = max(r.billed_invoices, settle_index)
                return self._renew(s, r) if renew else None

        unpaid = await self._db(bill)
        if unpaid is not None:
            await self._suspend(row.id, unpaid)

    def _renew(self, s: Any, r: HostedNode) -> str | None:
        """Debit the next period if the paid one ran out (in the caller's transaction, the client
        locked); why not, if the balance cannot cover it."""
        if r.paid_until > utcnow():
            return None
        fee = self.settings.monthly_fee
        balance = ledger.balance(s, r.client_id)
        if balance < fee:
            return f"the period fee of {fee} sat could not be paid (balance {balance} sat): top up and start the node"
        ledger.record(s, r.client_id, -fee, "hosting_fee", f"node:{r.id}:period:{utcnow().isoformat()}")
        r.paid_until = utcnow() + timedelta(seconds=self.settings.billing_period_s)
        return None

    async def _suspend(self, node_id: str, reason: str) -> None:
        """Stop a node whose period is unpaid; it keeps its data and channels until started or deleted."""
        async with self._lock(node_id):
            await self._drop_client(node_id)
            await self._orch_call(self.orchestrator.stop, node_id)
            row = await self._db(self._update, node_id, state="stopped", desired="stopped", reason=reason)
        log.warning("hosted node %s stopped: %s", node_id, reason)
        self._publish("node_stopped", row, reason=reason)

    async def _settle_index(self, lnd: LndClient) -> int:
        """The node's highest invoice settle index (LND numbers settlements 1, 2, 3...; 0 before the first)."""
        return max([int(i.settle_index) for i in await lnd.list_invoices()] or [0])

    # -- metrics ---------------------------------------------------------------------------
    async def metrics(self, client_id: str, node_id: str) -> dict[str, Any]:
        """The seed's NodeMetrics, read from the node's own LND."""
        row = await self._db(self.get, client_id, node_id)
        if row.state != "running":
            raise Conflict(f"node {node_id} is {row.state}; metrics come from a running node", field="nodeId")
        lnd = self.admin_client(row)
        channels = await lnd.list_channels()
        payments = await lnd.list_payments(include_incomplete=True)
        fwd = await lnd.forwarding_history(start_time=0, end_time=int(utcnow().timestamp()) + 60)
        status = await self._orch_call(self.orchestrator.status, node_id)
        succeeded = lnd.pb.ln.Payment.PaymentStatus.Value("SUCCEEDED")
        failed = lnd.pb.ln.Payment.PaymentStatus.Value("FAILED")
        done = [p for p in payments if p.status in (succeeded, failed)]
        events = list(fwd.forwarding_events)
        uptime = (utcnow() - status.started_at).total_seconds() if status.started_at and status.state == "running" else 0.0
        memory = await self._orch_call(self.orchestrator.memory_bytes, node_id)
        return {
            "channelCount": len(channels),
            "activeChannelCount": sum(1 for c in channels if c.active),
            "totalCapacity": sum(int(c.capacity) for c in channels),
            "localBalance": sum(int(c.local_balance) for c in channels),
            "routingRevenue": sum(int(e.fee_msat) for e in events) // 1000,
            "successRate": (sum(1 for p in done if p.status == succeeded) / len(done)) if done else None,
            "paymentsSent": sum(1 for p in done if p.status == succeeded),
            "uptime": round(uptime, 1),
            "memoryBytes": memory,
            "forwardingEvents": [
                {
                    "timestamp": int(e.timestamp_ns // 1_000_000_000),
                    "chanIdIn": str(e.chan_id_in),
                    "chanIdOut": str(e.chan_id_out),
                    "amtIn": int(e.amt_in),
                    "amtOut": int(e.amt_out),
                    "feeMsat": int(e.fee_msat),
                }
                for e in events
            ],
        }

    async def health(self) -> Health:
        """Every node this LSP hosts and what its orchestrator says of it (the operator's view);
        an orchestrator that does not answer is said once, in ``error``."""
        try:
            actual = await self._orch_call(self.orchestrator.list_nodes)
            error = None
        except ServiceUnavailable as exc:
            actual, error = {}, exc.message
        except OrchestratorError as exc:
            actual, error = {}, exc.reason
        out = []
        for row in await self._db(self.rows, None, live_only=True):
            st = actual.get(row.id)
            out.append(
                {
                    "nodeId": row.id,
                    "clientId": row.client_id,
                    "alias": json.loads(row.config).get("alias"),
                    "state": row.state,
                    "container": st.state if st is not None else ("unknown" if error else "missing"),
                    "reason": row.reason or error,
                    "pubkey": row.pubkey,
                    "paidUntil": row.paid_until.isoformat(),
                }
            )
        return Health(nodes=out, error=error)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, LndError):
        return f"LND: {exc.message}"
    if isinstance(exc, OrchestratorError):
        return exc.reason
    if isinstance(exc, ServiceUnavailable):
        return exc.message
    return str(exc) or type(exc).__name__
