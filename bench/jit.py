"""`lab bench jit`: LSPS2 JIT time-to-settle with two clients in one run, on ``ldk-lsp``.

The same LSP (our LSPS2 service on stock LND) sells to both clients in turn:
``lnd`` is our own client on an LND node (``harness/lsps_client.py``), ``ldk``
is ldk-node 0.7.1's LSPS2 client (lightning-liquidity) in the lab's LDK driver,
trusting the LSP for the anchor reserve. Each run is a fresh buy (fixed amount),
so every payment opens a new zero-conf channel: the timed span is the payer's
SendPaymentV2 start -> SUCCEEDED with the preimage, which covers the LSP holding
the HTLC, opening the channel, mapping the JIT SCID, resuming with the fee
deducted, and the client claiming. The LDK buy itself (get_info + buy, before
the invoice exists) is timed apart. After each run (untimed) one block is mined
so the funding transaction and the LSP's change confirm, as the next open needs
a confirmed coin.
"""

from __future__ import annotations

import json
import math
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.harness import LightningTestHarness
from harness.lsps_client import LspsClient
from harness.lsps_lsp import LspsRunner

MAX_RUNS = 100
AMOUNT_MSAT = 25_000_000
TOPOLOGY = "ldk-lsp"
CLIENTS = ("lnd", "ldk")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a measured run)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _stats(times: list[float]) -> dict[str, float]:
    return {"p50_s": percentile(times, 50), "p95_s": percentile(times, 95), "min_s": min(times), "max_s": max(times)}


def run(
    *, runs: int = 20, clients: tuple[str, ...] = CLIENTS, out_path: Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    runs = max(1, min(runs, MAX_RUNS))
    times: dict[str, list[float]] = {c: [] for c in clients}
    buy_times: list[float] = []
    with LightningTestHarness(TOPOLOGY) as lab, tempfile.TemporaryDirectory() as tmp:
        lsp, payer = lab.node("lsp"), lab.node("payer")
        lab.node("client").connect(lsp)
        with LspsRunner(lsp, Path(tmp) / "lsps.db", probe=lab.node("client")), LspsClient(lab.node("client"), lsp.pubkey) as ours:
            params = ours.get_info()["opening_fee_params_menu"][0]
            wallet = lab.ldk("wallet")
            for i in range(runs):
                for client in clients:
                    if client == "lnd":
                        request = ours.jit_invoice(params, amount_msat=AMOUNT_MSAT).payment_request
                    else:
                        b0 = time.perf_counter()
                        request = wallet.jit_invoice(AMOUNT_MSAT, max_total_lsp_fee_msat=5_000_000).payment_request
                        buy_times.append(time.perf_counter() - b0)
                    t0 = time.perf_counter()
                    res = payer.router.pay_invoice(request, fee_limit_sat=0, timeout_s=60)
                    elapsed = time.perf_counter() - t0
                    if res.status != "SUCCEEDED" or not res.preimage:
                        raise RuntimeError(f"run {i + 1} ({client}): JIT payment {res.status} ({res.failure_reason})")
                    times[client].append(elapsed)
                    echo(f"run {i + 1:2}/{runs} {client}: {elapsed * 1000:7.1f} ms")
                    payer.wait_no_pending_htlcs()
                    lab.mine(1)
    result: dict[str, Any] = {
        "benchmark": "jit",
        "topology": TOPOLOGY,
        "runs": runs,
        "amount_msat": AMOUNT_MSAT,
        "clients": {c: _stats(t) for c, t in times.items()},
        "ldk_buy": _stats(buy_times) if buy_times else None,
        "machine": f"{platform.machine()} {platform.python_version()}",
    }
    for c, t in times.items():
        st = _stats(t)
        echo(
            f"JIT time-to-settle, {c} client, {runs} runs: p50 {st['p50_s'] * 1000:.0f} ms, "
            f"p95 {st['p95_s'] * 1000:.0f} ms (min {st['min_s'] * 1000:.0f}, max {st['max_s'] * 1000:.0f})"
        )
    if buy_times:
        st = _stats(buy_times)
        echo(f"LDK's buy (lsps2.get_info + lsps2.buy): p50 {st['p50_s'] * 1000:.0f} ms, p95 {st['p95_s'] * 1000:.0f} ms")
    if out_path is not None:
        out_path.write_text(json.dumps(result, indent=2) + "\n")
    return result
