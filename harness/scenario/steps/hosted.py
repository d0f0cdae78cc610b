"""``hosted_node``: a hosted Lightning node bought from the scenario's LSP, used, and deleted.

The client asks ``POST /api/nodes`` for a dedicated LND (a Docker container the LSP runs, with
initial channels from the LSP's node) and waits for ``running``. From then on the node is driven
the way its owner would drive it: with only the endpoint, macaroon and certificate the API handed
back, through the lab's own gRPC client (``harness.rpc``), never the LSP's. ``receive_from`` pays an
invoice made on it, it pays ``pay_to``, the API's metrics are read, and with ``delete_sweep_to`` the
node is deleted (``DELETE /api/nodes/{id}?sweepAddress=``) while the step mines the closes and the
sweep, until the sweep reaches that node's wallet.

Every figure is measured on the lab's side (the client's ledger balance around the creation, the
invoices at the payees, the sweep address's wallet), so ``expect: results`` can hold them against
what the scenario's amounts and the LSP's fee schedule say, not against the LSP's own answers.

The engine starts the scenario's LSP with ``harness.lsp_process.hosting_env`` when a step is
``hosted_node`` and removes the instance's containers and volumes when the scenario ends
(``harness.hosted.remove_instance``), keeping their logs in the lab directory.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from harness.errors import WaitTimeout
from harness.hosted import dial, leftovers
from harness.rpc.lightning import LightningRpc
from harness.rpc.router import RouterRpc
from harness.scenario.context import StepContext, StepSkipped
from harness.scenario.model import HostedNodeStep
from harness.scenario.steps.expect import record
from harness.wait import wait_for

if TYPE_CHECKING:

    from lsp.client import LSPClient

ANNOUNCE_DEPTH = 6  # confirmations before a public channel is announced (BOLT 7)
SWEEP_MIN_SAT = 1_000  # a node holding less may legitimately have nothing to sweep (dust, fees)


# -- the step ---------------------------------------------------------------------------------------
def _body(step: HostedNodeStep) -> dict[str, Any]:
    body: dict[str, Any] = {
        "alias": step.alias,
        "features": list(step.features),
        "channels": [{"capacity": c.capacity_sat, "pushAmount": c.push_sat, "isPrivate": c.private} for c in step.channels],
    }
    if step.color is not None:
        body["color"] = step.color
    return body


def _await_state(client: LSPClient, node_id: str, state: str, *, timeout_s: str | float, mine: Any = None) -> dict[str, Any]:
    """The node's view once it is ``state`` or has ended up ``failed``/``deleted`` instead; ``mine``
    (a callable) is called on every look that finds it elsewhere (closes confirm in blocks)."""
    last: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        got = dict(client.get_node(node_id))
        last.update(got)
        if got["state"] == state or got["state"] in ("failed", "deleted"):
            return got
        if mine is not None:
            mine()
        return None

    return wait_for(
        check,
        what=f"hosted node {node_id} to be {state}",
        timeout_s=timeout_s,
        describe=lambda: f"state {last.get('state')!r}, reason {last.get('reason')!r}",
    )


def _wait_channels(ctx: StepContext, rpc: LightningRpc, want: int) -> int:
    """Mine the initial channels' funding and wait until ``want`` channels are active on the node."""
    if want == 0:
        return 0

    def active() -> int | None:
        n = len(rpc.list_channels(active_only=True))
        if n >= want:
            return n
        if rpc.pending_channels().pending_open_channels:
            ctx.lab.mine(1)  # waits for the lab's nodes to have it: the pace of this loop
        return None

    return wait_for(
        active,
        what=f"the hosted node's {want} initial channel(s) to be active",
        timeout_s="CHANNEL_OPEN",
        describe=lambda: (
            f"{len(rpc.list_channels(active_only=True))} active, {len(rpc.pending_channels().pending_open_channels)} pending"
        ),
    )


def _receive(ctx: StepContext, step: HostedNodeStep, rpc: LightningRpc, pubkey: str) -> None:
    assert step.receive_from is not None and step.receive_sat is not None
    payer = ctx.lab.node(step.receive_from)
    private = any(c.private for c in step.channels)
    if not private:
        # Only public channels: the payer finds the node once a channel is announced (LND hints
        # private channels only).
        ctx.lab.mine(ANNOUNCE_DEPTH)

    def payer_knows() -> bool:
        graph = payer.ln.describe_graph(include_unannounced=True)
        return any(pubkey in (e.node1, e.node2) for e in graph.edges)

    def invoice() -> Any:
        # LND hints a private channel once it holds the peer's policy for it (a moment after it is active).
        inv = rpc._call(
            "AddInvoice",
            rpc.s.ln.Invoice(value=step.receive_sat, memo=f"{ctx.scenario.name} step {ctx.index + 1}", private=private),
        )
        return inv if rpc.decode_invoice(inv.payment_request).route_hints or payer_knows() else None

    inv = wait_for(invoice, what=f"an invoice of the hosted node that {step.receive_from} can route to", timeout_s="GRAPH_SYNC")
    t0 = time.monotonic()
    paid = payer.pay_invoice(inv.payment_request, fee_limit_sat=step.fee_limit_sat)
    ctx.result.payments.append(
        record(
            step.receive_from, f"hosted:{step.alias}", step.receive_sat, paid, time.monotonic() - t0, expected_status="SUCCEEDED"
        )
    )
    out = ctx.result.outcome
    out["receive_fee_msat"] = paid.fee_msat
    if not paid.succeeded:
        out["received_sat"] = 0
        ctx.fail(f"{step.receive_from} could not pay the hosted node's invoice: {paid.failure_reason}")
        return
    out["received_sat"] = int(rpc.lookup_invoice(bytes(inv.r_hash).hex()).amt_paid_sat)


def _pay(ctx: StepContext, step: HostedNodeStep, rpc: LightningRpc, router: RouterRpc) -> None:
    assert step.pay_to is not None and step.pay_sat is not None
    payee = ctx.lab.node(step.pay_to)
    inv = payee.add_invoice(step.pay_sat, memo=f"{ctx.scenario.name} step {ctx.index + 1}")
    # The node learns the LSP's other channels from its gossip: wait until it has a route.
    query = rpc.s.ln.QueryRoutesRequest(pub_key=payee.pubkey, amt=step.pay_sat)
    wait_for(
        lambda: bool(rpc._call("QueryRoutes", query).routes),
        what=f"the hosted node to find a route to {step.pay_to}",
        timeout_s="GRAPH_SYNC",
    )
    t0 = time.monotonic()
    sent = router.pay_invoice(inv.payment_request, fee_limit_sat=step.fee_limit_sat)
    ctx.result.payments.append(
        record(f"hosted:{step.alias}", step.pay_to, step.pay_sat, sent, time.monotonic() - t0, expected_status="SUCCEEDED")
    )
    out = ctx.result.outcome
    out["send_fee_msat"] = sent.fee_msat
    if not sent.succeeded:
        out["sent_sat"] = 0
        ctx.fail(f"the hosted node could not pay {step.pay_to}: {sent.failure_reason}")
        return
    out["sent_sat"] = int(payee.ln.lookup_invoice(inv.payment_hash).amt_paid_sat)


def _metrics(ctx: StepContext, client: LSPClient, node_id: str) -> None:
    sent = 1 if ctx.result.outcome.get("sent_sat") else 0
    m = wait_for(
        lambda: got if (got := client.node_metrics(node_id))["paymentsSent"] >= sent else None,
        what="the hosted node's metrics to show its payment",
        timeout_s="PAYMENT",
    )
    ctx.result.outcome.update(
        {
            "metrics_channel_count": int(m["channelCount"]),
            "metrics_active_channel_count": int(m["activeChannelCount"]),
            "metrics_total_capacity": int(m["totalCapacity"]),
            "metrics_payments_sent": int(m["paymentsSent"]),
        }
    )


def _delete(ctx: StepContext, step: HostedNodeStep, client: LSPClient, node_id: str, instance: str) -> str:
    from lsp.client import LSPAPIError

    assert step.delete_sweep_to is not None
    lab, out = ctx.lab, ctx.result.outcome
    to = lab.node(step.delete_sweep_to)
    address = to.new_address()
    t0 = time.monotonic()
    try:
        asked = client.delete_node(node_id, sweep_address=address)
    except LSPAPIError as exc:
        ctx.fail(f"DELETE /api/nodes/{node_id}: {exc}")
        return "not deleted"
    if asked["state"] != "deleting":
        ctx.fail(f"DELETE answered state {asked['state']!r}, expected 'deleting'")
    ctx.progress(f"        deleting {node_id}: mining its closes and sweep")
    gone = _await_state(client, node_id, "deleted", timeout_s="CHANNEL_CLOSE", mine=lambda: lab.mine(1))
    out["time_to_deleted_s"] = round(time.monotonic() - t0, 2)
    out["final_state"] = gone["state"]
    out["sweep_txid"] = txid = gone.get("sweepTxid")
    if gone["state"] != "deleted":
        ctx.fail(f"hosted node {node_id} ended {gone['state']} instead of deleted: {gone.get('reason')}")
        return f"ended {gone['state']}"
    if gone.get("macaroon") or gone.get("tlsCert") or gone.get("endpoint"):
        ctx.fail("the API still hands out the deleted node's credentials or endpoint")
    left = leftovers(instance, node_id)
    if left:
        ctx.fail(f"the LSP reports {node_id} deleted but its containers/volumes remain: {', '.join(left)}")
    # What the node held, from the scenario's own figures (msat, rounded down on-chain).
    held = (
        sum(c.push_sat for c in step.channels) * 1000
        + out.get("received_sat", 0) * 1000
        - out.get("sent_sat", 0) * 1000
        - (out.get("send_fee_msat", 0) if out.get("sent_sat") else 0)
    ) // 1000
    if not txid:
        out["swept_sat"] = 0
        if held >= SWEEP_MIN_SAT:
            ctx.fail(f"the node held about {held:,} sat and was deleted without a sweep")
        return f"deleted in {out['time_to_deleted_s']:.1f}s, nothing swept (it held about {held:,} sat)"

    def arrived() -> int | None:
        # The sweep address's confirmed outputs in the receiving node's own wallet.
        got = sum(int(u.amount_sat) for u in to.ln._call("ListUnspent", unspent).utxos if u.address == address)
        if got > 0:
            return got
        if txid in lab.chain.mempool():
            lab.mine(1)
        return None

    unspent = to.ln.s.ln.ListUnspentRequest(min_confs=1, max_confs=2**31 - 1)
    try:
        out["swept_sat"] = wait_for(
            arrived, what=f"the sweep {txid} to reach {step.delete_sweep_to}'s wallet", timeout_s="WALLET_BALANCE"
        )
    except WaitTimeout:
        out["swept_sat"] = 0
        ctx.fail(f"the sweep {txid} did not reach {address} in {step.delete_sweep_to}'s wallet")
    return (
        f"deleted in {out['time_to_deleted_s']:.1f}s, {out['swept_sat']:,} of the {held:,} sat it held swept "
        f"to {step.delete_sweep_to}"
    )


def run(step: HostedNodeStep, ctx: StepContext) -> None:
    if ctx.lsp is None:
        raise StepSkipped("no LSP runs in this scenario (set `lsp: <node>` on the scenario)")
    setup = ctx.hosting
    if setup is None or setup.unavailable is not None:
        why = setup.unavailable if setup is not None else "the scenario's LSP was started without hosting"
        ctx.fail(f"hosted nodes cannot run here: {why}")
        return
    from lsp.client import LSPAPIError

    client, out = ctx.lsp, ctx.result.outcome
    before = int(client.balance()["balance"])
    t0 = time.monotonic()
    try:
        created = client.create_node(_body(step))
    except LSPAPIError as exc:
        ctx.fail(f"POST /api/nodes: {exc}")
        return
    node_id = str(created["nodeId"])
    out["node_id"] = node_id
    # Debited in the same transaction that records the node (the first period, opening fees, push).
    out["charged_sat"] = before - int(client.balance()["balance"])
    if created["state"] != "provisioning" or created.get("macaroon") is not None:
        ctx.fail(f"POST /api/nodes answered state {created['state']!r} (expected provisioning, without credentials)")
    ctx.progress(f"        {node_id} provisioning (instance {setup.instance})")
    node = _await_state(client, node_id, "running", timeout_s=step.timeout_s or "HOSTED_NODE")
    out["time_to_running_s"] = round(time.monotonic() - t0, 2)
    if node["state"] != "running":
        ctx.fail(f"hosted node {node_id} is {node['state']}: {node.get('reason')}")
        return
    missing = [k for k in ("pubkey", "endpoint", "macaroon", "tlsCert") if not node.get(k)]
    if missing:
        ctx.fail(f"the running node's view lacks {', '.join(missing)}")
        return
    out["pubkey"] = node["pubkey"]
    if len(node["channelPoints"]) != len(step.channels):
        ctx.fail(f"{len(node['channelPoints'])} channel point(s) returned for {len(step.channels)} channel(s) asked for")

    hosted = dial(node, setup.workdir)
    rpc, router = hosted.ln, hosted.router
    try:
        info = rpc.get_info()
        if info.pubkey != node["pubkey"]:
            ctx.fail(f"the endpoint answers as {info.pubkey}, the API says {node['pubkey']}")
        out["channels_active"] = _wait_channels(ctx, rpc, len(step.channels))
        out["capacity_sat"] = sum(c.capacity_sat for c in rpc.list_channels(active_only=True))
        if step.receive_from is not None:
            _receive(ctx, step, rpc, node["pubkey"])
        if step.pay_to is not None:
            _pay(ctx, step, rpc, router)
    finally:
        hosted.close()
    _metrics(ctx, client, node_id)
    out["final_state"] = "running"
    parts = [
        f"{node_id} running in {out['time_to_running_s']:.1f}s, {out['channels_active']} channel(s) active, "
        f"charged {out['charged_sat']:,} sat"
    ]
    if "received_sat" in out:
        parts.append(f"received {out['received_sat']:,} sat from {step.receive_from}")
    if "sent_sat" in out:
        parts.append(f"sent {out['sent_sat']:,} sat to {step.pay_to}")
    if step.delete_sweep_to is not None:
        parts.append(_delete(ctx, step, client, node_id, setup.instance))
    ctx.result.detail = "; ".join(parts)
