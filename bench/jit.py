"""`lab bench jit`: LSPS2 JIT time-to-settle on the ``jit`` topology.

Each run is a fresh ``lsps2.buy`` (fixed-amount), so every payment opens a new
zero-conf channel: the timed span is payer's SendPaymentV2 start -> SUCCEEDED
with the preimage, which covers the LSP holding the HTLC, opening the channel,
mapping the JIT SCID, resuming with the fee deducted, and the client node's
interceptor settling. After each run (untimed) one block is mined so the
funding transaction and the LSP's change confirm, as the next open needs a
confirmed coin.
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


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a measured run)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run(*, runs: int = 20, out_path: Path | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    runs = max(1, min(runs, MAX_RUNS))
    times: list[float] = []
    with LightningTestHarness("jit") as lab, tempfile.TemporaryDirectory() as tmp:
        lsp, payer, client = lab.node("lsp"), lab.node("payer"), lab.node("client")
        client.connect(lsp)
        with LspsRunner(lsp, Path(tmp) / "lsps.db"), LspsClient(client, lsp.pubkey) as c:
            params = c.get_info()["opening_fee_params_menu"][0]
            for i in range(runs):
                inv = c.jit_invoice(params, amount_msat=AMOUNT_MSAT)
                t0 = time.perf_counter()
                res = payer.router.pay_invoice(inv.payment_request, fee_limit_sat=0, timeout_s=60)
                elapsed = time.perf_counter() - t0
                if res.status != "SUCCEEDED" or not res.preimage:
                    raise RuntimeError(f"run {i + 1}: JIT payment {res.status} ({res.failure_reason})")
                times.append(elapsed)
                echo(f"run {i + 1:2}/{runs}: {elapsed * 1000:7.1f} ms")
                payer.wait_no_pending_htlcs()
                lab.mine(1)
    result = {
        "benchmark": "jit",
        "topology": "jit",
        "runs": runs,
        "amount_msat": AMOUNT_MSAT,
        "p50_s": percentile(times, 50),
        "p95_s": percentile(times, 95),
        "min_s": min(times),
        "max_s": max(times),
        "machine": f"{platform.machine()} {platform.python_version()}",
    }
    p50, p95 = percentile(times, 50), percentile(times, 95)
    echo(
        f"JIT time-to-settle over {runs} runs: p50 {p50 * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
    )
    if out_path is not None:
        out_path.write_text(json.dumps(result, indent=2) + "\n")
    return result
