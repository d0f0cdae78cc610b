"""``jit_receive``: a channel-less client is paid through the LSP's JIT channel, wrapped-invoice mode.

The same code path as tests/lab/lsps/test_jit.py: the LSPS daemon (``lsp lsps``) runs against
the LSP node as a process (``harness.lsps_lsp.LspsRunner``), the client asks for
the fee menu and has the LSP wrap its own invoice (``LspsClient.wrapped_invoice``
-> ``lab.jit_wrap_invoice``), the payer pays the LSP's hold invoice. Works with a
stock client: it only makes an ordinary invoice and accepts a zero-conf channel.
"""

from __future__ import annotations

import time

from harness.blip52 import entry_fee_msat
from harness.errors import LabError
from harness.lsps_client import LspsClient
from harness.lsps_lsp import LspsRunner
from harness.scenario.context import StepContext
from harness.scenario.model import JitReceiveStep
from harness.scenario.steps.expect import record

PAYER_FEE_LIMIT_SAT = 100
# Which client spoke to the LSP (the report names it per scenario).
LAB_CLIENT = "lab client on LND (harness/lsps_client.py, wrapped invoice)"


def run(step: JitReceiveStep, ctx: StepContext) -> None:
    lab = ctx.lab
    lsp, client, payer = lab.node(step.lsp), lab.node(step.client), lab.node(step.payer)
    before = {c.channel_point for c in client.list_channels() if c.remote_pubkey == lsp.pubkey}
    client.connect(lsp)
    db = lab.lab_dir / f"lsps-step{ctx.index}.db"
    with LspsRunner(lsp, db, probe=client), LspsClient(client, lsp.pubkey) as lsps:
        menu = lsps.get_info()["opening_fee_params_menu"]
        if step.menu_index >= len(menu):
            raise LabError(f"menu_index {step.menu_index}: the LSP offers {len(menu)} fee entries")
        params = menu[step.menu_index]
        wrapped = lsps.wrapped_invoice(params, amount_msat=step.amount_msat, memo=f"{ctx.scenario.name} jit")
        t0 = time.monotonic()
        paid = payer.pay_invoice(wrapped["invoice"], fee_limit_sat=PAYER_FEE_LIMIT_SAT, timeout_s=step.timeout_s)
        latency = time.monotonic() - t0
    size = int(wrapped["payment_size_msat"])
    ctx.result.payments.append(record(step.payer, step.client, size // 1000, paid, latency, expected_status="SUCCEEDED"))
    # Confirm the zero-conf funding (and the LSP's change) so later steps start on a quiet chain.
    if lab.chain.mempool():
        lab.mine(1)
    if not paid.succeeded:
        ctx.fail(f"{step.payer} could not pay the wrapped invoice: {paid.failure_reason}")
        return
    received = int(client.ln.lookup_invoice(wrapped["payment_hash"]).amt_paid_msat)
    lsp_got = int(lsp.ln.lookup_invoice(wrapped["payment_hash"]).amt_paid_msat)
    formula = entry_fee_msat(params, size)
    after = {c.channel_point for c in client.list_channels() if c.remote_pubkey == lsp.pubkey}
    ctx.result.outcome = {
        "client_implementation": LAB_CLIENT,
        "amount_msat": step.amount_msat,
        "received_msat": received,
        "payment_size_msat": size,
        "lsp_fee_msat": lsp_got - received,
        "formula_fee_msat": formula,
        "fee_matches_formula": lsp_got - received == formula,
        "payer_fee_msat": paid.fee_msat,
        "new_channel": bool(after - before),
    }
    # The mode's contract: the client gets exactly what its own invoice asked for.
    if received != step.amount_msat:
        ctx.fail(f"{step.client} received {received:,} msat, its invoice asked for {step.amount_msat:,}")
    ctx.result.detail = (
        f"{step.client} received {received:,} msat; {step.payer} paid {lsp_got:,} msat to {step.lsp}, "
        f"which kept {lsp_got - received:,} msat (formula {formula:,}); "
        f"{'new JIT channel' if after - before else 'existing channel'}"
    )
