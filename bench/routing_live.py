"""Live routing comparison on regtest: LND's own MPP (SendPaymentV2) against our MCF executor.

Network ``mpp6`` (topologies/mpp6.yaml): the payer reaches ``dest`` over four two-hop paths
whose capacities overstate their liquidity, and the payment needs two of them. Each round
pays one invoice with each strategy from the same starting balances: after every payment
``dest`` sends the amount back over exactly the channels it arrived on (``restore``), so the
channels into ``dest`` hold what they held before. The MCF executor keeps its liquidity model
across rounds (that is the learning being measured); LND keeps its mission control.

    python -m bench.routing_live --rounds 3 --out routing-live.json
    lab bench routing --live-rounds 3

The helpers here are also what tests/lab/routing uses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.harness import LightningTestHarness
from harness.node import LndNode
from lncore.lnd.client import LndClient
from lsp.routing.executor import ExecutionResult, McfExecutor
from lsp.routing.live import LiveGraph

TOPOLOGY = "mpp6"
AMOUNT_SAT = 700_000
FEE_LIMIT_SAT = 2_000


def client_for(node: LndNode) -> LndClient:
    """The LSP's own async client, pointed at a lab node (as the LSP would be)."""
    return LndClient.from_paths(f"127.0.0.1:{node.config.rpc_port}", node.config.tls_cert, node.config.macaroon)


def dest_balances(lab: LightningTestHarness) -> dict[int, int]:
    """``dest``'s local balance per channel (sat): what arrived there over each path."""
    return {c.chan_id: c.local_balance_sat for c in lab.node("dest").list_channels()}


def settle_all(lab: LightningTestHarness) -> None:
    for name in ("payer", "dest"):
        lab.node(name).wait_no_pending_htlcs()


async def restore(lab: LightningTestHarness, baseline: dict[int, int]) -> int:
    """Bring ``dest``'s channels back to ``baseline``: send back over each channel exactly what it
    gained there (and top up what it lost).

    A route dest -> r_i -> payer whose first hop carries the gain: r_i's fee to the payer is
    taken out of what the payer receives. Returns the number of channels restored."""
    dest, payer = lab.node("dest"), lab.node("payer")
    peers = {c.chan_id: c.remote_pubkey for c in dest.list_channels()}
    restored = 0
    async with client_for(dest) as lnd:
        for chan_id, now_sat in dest_balances(lab).items():
            gain_msat = (now_sat - baseline.get(chan_id, now_sat)) * 1000
            if gain_msat <= 0:
                continue
            router = peers[chan_id]
            # Deliver d so that d + fee(d) == gain: search down from the gain (fees are tiny).
            deliver = gain_msat
            for _ in range(8):
                route = await lnd.build_route(deliver, [router, payer.pubkey], outgoing_chan_id=chan_id)
                over = route.total_amt_msat - gain_msat
                if over == 0:
                    break
                deliver -= over
            inv = payer.add_invoice(amount_msat=deliver, memo="restore")
            dec = await lnd.decode_pay_req(inv.payment_request)
            route = await lnd.build_route(
                deliver,
                [router, payer.pubkey],
                outgoing_chan_id=chan_id,
                final_cltv_delta=int(dec.cltv_expiry),
                payment_addr=bytes(dec.payment_addr),
            )
            attempt = await lnd.send_to_route_v2(bytes.fromhex(inv.payment_hash), route, timeout_s=60)
            if attempt.status != lnd.pb.ln.HTLCAttempt.SUCCEEDED:
                raise RuntimeError(f"restore over channel {chan_id} failed: {attempt.failure}")
            restored += 1
        # Channels where dest lost balance (a circular rebalance went out that way): the payer
        # tops them up, the last hop carrying exactly the loss.
        async with client_for(payer) as plnd:
            for chan_id, now_sat in dest_balances(lab).items():
                loss_msat = (baseline.get(chan_id, now_sat) - now_sat) * 1000
                if loss_msat <= 0:
                    continue
                inv = dest.add_invoice(amount_msat=loss_msat, memo="restore")
                dec = await plnd.decode_pay_req(inv.payment_request)
                route = await plnd.build_route(
                    loss_msat,
                    [peers[chan_id], dest.pubkey],
                    final_cltv_delta=int(dec.cltv_expiry),
                    payment_addr=bytes(dec.payment_addr),
                )
                attempt = await plnd.send_to_route_v2(bytes.fromhex(inv.payment_hash), route, timeout_s=60)
                if attempt.status != plnd.pb.ln.HTLCAttempt.SUCCEEDED:
                    raise RuntimeError(f"top-up over channel {chan_id} failed: {attempt.failure}")
                restored += 1
    settle_all(lab)
    return restored


async def pay_lnd(
    lab: LightningTestHarness, invoice: str, *, fee_limit_sat: int, timeout_s: int = 60, fresh: bool = False
) -> dict[str, Any]:
    """LND's own pathfinding with MPP; attempts = HTLCs it sent (LND has no planning rounds).
    ``fresh``: reset LND's mission control first, so it starts as ignorant as a fresh MCF model."""
    async with client_for(lab.node("payer")) as lnd:
        if fresh:
            await lnd.reset_mission_control()
        t0 = time.monotonic()
        p = await lnd.send_payment_final(invoice, fee_limit_sat=fee_limit_sat, timeout_s=timeout_s, max_parts=16)
    ok = p.status == lnd.pb.ln.Payment.SUCCEEDED
    htlcs = list(p.htlcs)
    return {
        "strategy": "lnd",
        "success": ok,
        "htlcs": len(htlcs),
        "htlcs_failed": sum(1 for h in htlcs if h.status == lnd.pb.ln.HTLCAttempt.FAILED),
        "fee_msat": int(p.fee_msat) if ok else 0,
        "failure_reason": None if ok else lnd.pb.ln.PaymentFailureReason.Name(p.failure_reason),
        "duration_s": round(time.monotonic() - t0, 3),
    }


def mcf_row(res: ExecutionResult) -> dict[str, Any]:
    return {
        "strategy": "mcf",
        "success": res.status == "succeeded",
        "attempts": res.attempts,
        "htlcs": res.htlcs,
        "htlcs_failed": sum(1 for p in res.parts if p.status == "failed"),
        "fee_msat": res.fee_msat,
        "failure_reason": res.failure_reason,
        "duration_s": round(res.duration_s, 3),
        "first_plan_probability": res.first_plan_probability,
    }


async def compare(
    lab: LightningTestHarness,
    *,
    rounds: int = 2,
    amount_sat: int = AMOUNT_SAT,
    fee_limit_sat: int = FEE_LIMIT_SAT,
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    settle_all(lab)
    baseline = dest_balances(lab)
    async with client_for(lab.node("payer")) as lnd:
        live = LiveGraph(lnd)
        await live.load()
        executor = McfExecutor(live)
        for r in range(1, rounds + 1):
            for strategy in ("lnd", "mcf"):
                inv = lab.node("dest").add_invoice(amount_sat, memo=f"{strategy}-{r}")
                if strategy == "lnd":
                    row = await pay_lnd(lab, inv.payment_request, fee_limit_sat=fee_limit_sat, fresh=r == 1)
                else:
                    res = await executor.pay(inv.payment_request, fee_limit_msat=fee_limit_sat * 1000, timeout_s=60)
                    row = mcf_row(res)
                    names = {n.pubkey: name for name, n in lab.nodes.items()}
                    # Readable parts: "via r2: 350000 sat succeeded" (first hop after us).
                    row["parts"] = [
                        f"attempt {p.attempt} via {names.get(p.hops[0], p.hops[0][:8])}: "
                        f"{p.amount_msat // 1000} sat {p.status}"
                        for p in res.parts
                    ]
                row.update(round=r, amount_sat=amount_sat)
                rows.append(row)
                echo(
                    f"round {r} {strategy:4} success={row['success']} htlcs={row['htlcs']} "
                    f"failed={row['htlcs_failed']} attempts={row.get('attempts', '-')} fee={row['fee_msat']} msat "
                    f"time={row['duration_s']} s"
                )
                settle_all(lab)
                await restore(lab, baseline)
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| round | strategy | success | planning rounds | HTLCs (failed) | fee msat | fee ppm | time s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ppm = r["fee_msat"] * 1e6 / (r["amount_sat"] * 1000) if r["success"] else float("nan")
        lines.append(
            f"| {r['round']} | {r['strategy']} | {'yes' if r['success'] else 'no'} | {r.get('attempts', '-')} "
            f"| {r['htlcs']} ({r['htlcs_failed']}) | {r['fee_msat']:,} | {ppm:.0f} | {r['duration_s']:.2f} |"
        )
    return "\n".join(lines)


def run(
    *, rounds: int = 2, amount_sat: int = AMOUNT_SAT, out_path: Path | None = None, echo: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    t0 = time.monotonic()
    lab = LightningTestHarness(TOPOLOGY)
    lab.start(retries=lab.bringup_retries)
    echo(f"{TOPOLOGY} up in {time.monotonic() - t0:.0f} s")
    failed = True
    try:
        rows = asyncio.run(compare(lab, rounds=rounds, amount_sat=amount_sat, echo=echo))
        failed = False
    finally:
        lab.stop(failed=failed)
    echo(render_table(rows))
    if out_path is not None:
        out_path.write_text(json.dumps({"topology": TOPOLOGY, "rows": rows}, indent=2) + "\n")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--amount-sat", type=int, default=AMOUNT_SAT)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    run(rounds=args.rounds, amount_sat=args.amount_sat, out_path=args.out)


if __name__ == "__main__":
    main()
