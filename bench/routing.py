"""Routing benchmark: LND-style apriori Dijkstra vs our min-cost-flow planner on a synthetic graph.

    python -m bench.routing --nodes 15000 --channels 60000 --payments 50 --seed 1 --out r.json
    python -m bench.routing ... --report reports/routing.html     # also an HTML report with charts
    python -m bench.routing --from-json r.json --report r.html     # report from a saved run

Without arguments it runs a small graph that finishes in well under two minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_flow

from lsp.routing.mcf import McfConfig
from lsp.routing.simulate import (
    MAX_ROUTING_ATTEMPTS,
    LndStrategy,
    McfStrategy,
    PaymentResult,
    Strategy,
    SyntheticNetwork,
    generate_network,
    out_edges_by_node,
    pick_pairs,
    simulate_payment,
)
from lsp.routing.solver import ortools_available

DEFAULT_SIZES_SAT = (10_000, 100_000, 500_000, 1_000_000, 2_000_000, 5_000_000)
_FLOW_UNIT_MSAT = 10_000  # max-flow capacities must fit int32: count in 10-sat units


class FeasibilityOracle:
    """Whether the hidden liquidity could carry a payment at all (an upper bound for any router)."""

    def __init__(self, net: SyntheticNetwork) -> None:
        g = net.graph
        n = g.node_count
        cap = np.where(g.array("enabled"), net.liquidity_msat // _FLOW_UNIT_MSAT, 0)
        cap = np.minimum(cap, 2**31 - 1).astype(np.int64)
        mat = csr_matrix((cap, (g.array("src"), g.array("dst"))), shape=(n, n))
        mat.data = np.minimum(mat.data, 2**31 - 1)
        self.matrix = mat.astype(np.int32)
        self.index = g.node_index

    def feasible(self, source: str, target: str, amount_msat: int) -> bool:
        s, t = self.index[source], self.index[target]
        flow = maximum_flow(self.matrix, s, t).flow_value
        return bool(flow * _FLOW_UNIT_MSAT >= amount_msat * 1.01)  # fees need a little room too


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def summarize(results: list[PaymentResult], feasible: list[bool], other: list[PaymentResult] | None) -> dict[str, Any]:
    plans = [ms for r in results for ms in r.planning_ms]
    ok = [r for r in results if r.success]
    both = [r for r, o in zip(results, other or results, strict=True) if r.success and o.success]
    n_feasible = sum(feasible)
    return {
        "payments": len(results),
        "feasible": n_feasible,
        "success": len(ok),
        "success_rate": len(ok) / len(results),
        "success_rate_feasible": (
            sum(r.success for r, f in zip(results, feasible, strict=True) if f) / n_feasible if n_feasible else None
        ),
        "attempts_mean": statistics.fmean(r.attempts for r in results),
        "attempts_mean_success": statistics.fmean(r.attempts for r in ok) if ok else None,
        "parts_mean": statistics.fmean(r.parts_sent for r in results),
        "fee_ppm_median": statistics.median(r.fee_ppm for r in ok) if ok else None,
        "fee_ppm_median_both_ok": statistics.median(r.fee_ppm for r in both) if both else None,
        "both_ok": len(both),
        "plan_ms_p50": percentile(plans, 50),
        "plan_ms_p95": percentile(plans, 95),
    }


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def render_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| amount (sat) | strategy | success | success/feasible | attempts | parts | fee ppm (med, ok) "
        "| fee ppm (both ok) | plan p50 ms | plan p95 ms |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        s = r["summary"]
        lines.append(
            f"| {r['amount_sat']:,} | {r['strategy']} | {s['success']}/{s['payments']} "
            f"| {_fmt(s['success_rate_feasible'], '.0%')} ({s['feasible']}) | {s['attempts_mean']:.2f} "
            f"| {s['parts_mean']:.1f} | {_fmt(s['fee_ppm_median'], '.0f')} "
            f"| {_fmt(s['fee_ppm_median_both_ok'], '.0f')} "
            f"| {s['plan_ms_p50']:.1f} | {s['plan_ms_p95']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__)
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--channels", type=int, default=8000)
    ap.add_argument("--payments", type=int, default=20, help="payments per amount")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES_SAT), help="amounts in sat")
    ap.add_argument("--max-attempts", type=int, default=MAX_ROUTING_ATTEMPTS)
    ap.add_argument("--prior", default="uniform", choices=["bimodal", "uniform"])
    ap.add_argument("--mu", type=float, default=McfConfig().mu)
    ap.add_argument("--out", default=None, help="write JSON results here")
    ap.add_argument("--report", default=None, help="write an HTML report with charts here")
    ap.add_argument("--from-json", default=None, help="no simulation: report on the results in this JSON file")
    args = ap.parse_args(argv)
    # Bounded, and a graph the generator can build (found trying --nodes 1: an IndexError).
    for name, value, lo, hi in (
        ("--nodes", args.nodes, 10, 200_000),
        ("--channels", args.channels, args.nodes - 1, 2_000_000),
        ("--payments", args.payments, 1, 1000),
        ("--max-attempts", args.max_attempts, 1, 100),
    ):
        if not lo <= value <= hi:
            ap.error(f"{name} must be within [{lo}, {hi}] (got {value})")
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x]
    except ValueError:
        ap.error(f"--sizes must be amounts in sat separated by commas (got {args.sizes!r})")
    if not sizes or min(sizes) <= 0:
        ap.error(f"--sizes must be positive amounts in sat (got {args.sizes!r})")
    if args.from_json:
        with open(args.from_json) as f:
            data = json.load(f)
        print(render_table(data["rows"]))
        if args.report:
            print(f"report: {write_report(data, args.report)}")
        return 0

    t0 = time.perf_counter()
    net = generate_network(args.nodes, args.channels, args.seed)
    g = net.graph
    out_edges = out_edges_by_node(g)
    g.array("src")  # build the array view once, outside the timed planning
    oracle = FeasibilityOracle(net)
    strategies: list[Strategy] = [LndStrategy(g), McfStrategy(g, McfConfig(mu=args.mu), prior=args.prior)]
    print(f"graph: {g.node_count} nodes, {len(g)} directed channels, built in {time.perf_counter() - t0:.1f}s")
    if not ortools_available():
        print("warning: OR-tools is not importable, so MCF plans use networkx (10-100x slower); "
              "`pip install .` brings OR-tools", file=sys.stderr)

    rows: list[dict[str, Any]] = []
    for k, size in enumerate(sizes):
        pairs = pick_pairs(net, args.payments, args.seed * 1000 + k)
        amt = size * 1000
        feasible = [oracle.feasible(s, t, amt) for s, t in pairs]
        per: dict[str, list[PaymentResult]] = {}
        for strat in strategies:
            per[strat.name] = [simulate_payment(net, strat, s, t, amt, args.max_attempts, out_edges) for s, t in pairs]
        names = list(per)
        for i, name in enumerate(names):
            other = per[names[1 - i]] if len(names) == 2 else None
            rows.append({"amount_sat": size, "strategy": name, "summary": summarize(per[name], feasible, other)})
        print(f"  {size:>9,} sat done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    table = render_table(rows)
    print(table)
    data = {"args": vars(args), "elapsed_s": time.perf_counter() - t0, "rows": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(data, f, indent=2)
    if args.report:
        print(f"report: {write_report(data, args.report)}")
    return 0


def write_report(data: dict[str, Any], path: str) -> str:
    from pathlib import Path

    from harness.report.routing import write_routing_report

    return str(write_routing_report(data, Path(path)))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
