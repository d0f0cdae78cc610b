"""``lab load``: star5 + the LSP on the hub + Locust (headless) against its API.

Bounded on purpose (users, spawn rate, duration, a hard subprocess timeout);
the figures land in the same HTML report as scenario runs: Locust's
requests/s, percentiles and failures next to what LND saw (payments settled,
HTLCs in flight) and what each process cost (CPU seconds, peak memory from
/proc).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import LabError
from harness.harness import LightningTestHarness
from harness.lsp_process import LspServer, OnboardedClient
from harness.runtime.ports import free_port
from harness.scenario.engine import channel_snapshot, new_run_id, running, start_lab, versions
from harness.scenario.results import LoadResult, LoadStats, RunResult, ScenarioResult
from harness.topology import load_topology
from harness.wait import wait_for

LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"
CLIENTS = 4
FUND_SAT = 400_000
# A load run fails when more than this share of requests failed.
MAX_FAILURE_RATIO = 0.01
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_sample(pid: int) -> tuple[float, float] | None:
    """(CPU seconds used so far, resident memory in MB) of a process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    rss_kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return cpu, rss_kb / 1024


class Sampler(threading.Thread):
    """Every second: CPU and memory per process, and HTLCs in flight on the hub."""

    def __init__(self, pids: dict[str, int], htlcs: Callable[[], int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.htlcs = htlcs
        self.stop_event = threading.Event()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.peak_rss: dict[str, float] = {}
        self.max_htlcs = 0
        self.htlc_samples: list[int] = []
        self.t0 = self.t1 = time.monotonic()

    def sample(self) -> None:
        for name, pid in self.pids.items():
            s = proc_sample(pid)
            if s is None:
                continue
            self.first.setdefault(name, s[0])
            self.last[name] = s[0]
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), s[1])
        try:
            n = self.htlcs()
            self.htlc_samples.append(n)
            self.max_htlcs = max(self.max_htlcs, n)
        except Exception:  # a busy node may miss a sample; the next one counts
            pass
        self.t1 = time.monotonic()

    def run(self) -> None:
        self.t0 = time.monotonic()
        while not self.stop_event.wait(1.0):
            self.sample()

    def resources(self) -> dict[str, dict[str, float]]:
        span = max(self.t1 - self.t0, 1e-6)
        out = {}
        for name in self.last:
            cpu = self.last[name] - self.first[name]
            out[name] = {
                "cpu_s": round(cpu, 2),
                "cpu_pct": round(100 * cpu / span, 1),
                "rss_mb": round(self.peak_rss[name], 1),
            }
        return out


def parse_stats(csv_prefix: Path) -> tuple[list[LoadStats], list[dict[str, object]]]:
    stats = []
    with open(f"{csv_prefix}_stats.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            stats.append(
                LoadStats(
                    name=row["Name"],
                    method=row["Type"],
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    rps=float(row["Requests/s"]),
                    p50_ms=float(row["50%"] if row["50%"] != "N/A" else 0),
                    p95_ms=float(row["95%"] if row["95%"] != "N/A" else 0),
                    p99_ms=float(row["99%"] if row["99%"] != "N/A" else 0),
                    avg_ms=float(row["Average Response Time"]),
                    max_ms=float(row["Max Response Time"]),
                )
            )
    failures: list[dict[str, object]] = []
    fpath = Path(f"{csv_prefix}_failures.csv")
    if fpath.exists():
        with fpath.open(newline="") as fh:
            for row in csv.DictReader(fh):
                failures.append(
                    {
                        "method": row["Method"],
                        "name": row["Name"],
                        "error": row["Error"],
                        "occurrences": int(row["Occurrences"]),
                    }
                )
    return stats, failures


def _fund(
    lab: LightningTestHarness, lsp_url: str, clients: list[OnboardedClient], progress: Callable[[str], None]
) -> None:
    """Give each client a balance at the LSP: it invoices, c1/c2 pay (as customers would)."""
    from lsp.client import LSPClient

    for i, c in enumerate(clients):
        payer = lab.node("c1" if i % 2 == 0 else "c2")
        with LSPClient(lsp_url, c.api_key, c.api_secret) as api:
            inv = api.create_invoice(FUND_SAT, "load test float")
            res = payer.pay_invoice(inv["paymentRequest"], fee_limit_sat=1000)
            if not res.succeeded:
                raise LabError(f"funding {c.client_id} failed: {res.failure_reason}")

            def credited(api: LSPClient = api) -> bool:
                return bool(api.balance()["balance"] >= FUND_SAT)

            wait_for(
                credited,
                what=f"the LSP to credit {c.client_id}'s invoice",
                timeout_s="LSP_CREDIT",
            )
    progress(f"funded {len(clients)} clients with {FUND_SAT:,} sat each")


def _locust_cmds(
    *, host: str, users: int, spawn_rate: float, duration_s: int, workers: int, csv_prefix: Path
) -> tuple[list[str], list[list[str]]]:
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", host]
    common = [
        "--headless",
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        f"{duration_s}s",
        "--csv",
        str(csv_prefix),
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
    ]
    if workers <= 0:
        return [*base, *common], []
    port = free_port()
    master = [
        *base,
        *common,
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--expect-workers",
        str(workers),
        "--expect-workers-max-wait",
        "60",
    ]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port), "--loglevel", "INFO"]
    return master, [worker for _ in range(workers)]


def run_load(
    *,
    users: int,
    spawn_rate: float,
    duration_s: int,
    workers: int,
    report_root: Path,
    progress: Callable[[str], None] = print,
) -> tuple[RunResult, Path]:
    import importlib.util

    if importlib.util.find_spec("locust") is None:
        raise LabError("lab load needs Locust: pip install 'lightning-lab[load]' (or: pip install locust)")
    run = RunResult(
        run_id=new_run_id(),
        target="load",
        runtime="process",
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        versions=versions(),
    )
    t_start = time.monotonic()
    sc = ScenarioResult("load", f"Locust against the LSP API: {users} users", "star5", 0, str(LOCUSTFILE))
    lab, retried = start_lab(load_topology("star5"), runtime="process", progress=progress)
    if retried:
        sc.message = "network came up on the second attempt; first: " + retried[0]
    with running(lab):
        sc.nodes = [n.name for n in lab.topology.nodes]
        sc.chain = lab.topology.chain
        hub = lab.node("hub")
        with LspServer.on_node(hub, lab.lab_dir) as lsp:
            progress(f"LSP API on {lsp.base_url}")
            clients = [lsp.onboard(f"load client {i}", client_id=f"load{i}") for i in range(CLIENTS)]
            _fund(lab, lsp.base_url, clients, progress)
            sc.channels_before = channel_snapshot(lab)
            work = lab.lab_dir / "load"
            work.mkdir()
            clients_file = work / "clients.json"
            clients_file.write_text(json.dumps([c.__dict__ for c in clients]))
            payee = lab.node("c3")
            env = {
                **os.environ,
                "LOAD_CLIENTS": str(clients_file),
                "LOAD_PAYEE_REST": f"127.0.0.1:{payee.config.rest_port}",
                "LOAD_PAYEE_MACAROON_HEX": payee.config.macaroon.read_bytes().hex(),
                "LOAD_PAYEE_CERT": str(payee.config.tls_cert),
                "PYTHONPATH": os.pathsep.join([str(LOCUSTFILE.parent.parent), os.environ.get("PYTHONPATH", "")]),
            }
            settled_before = sum(p.status == 2 for p in hub.ln.list_payments())
            csv_prefix = work / "locust"
            master_cmd, worker_cmds = _locust_cmds(
                host=lsp.base_url,
                users=users,
                spawn_rate=spawn_rate,
                duration_s=duration_s,
                workers=workers,
                csv_prefix=csv_prefix,
            )
            assert lsp.proc is not None and hub.proc is not None
            pids = {"lnd hub": hub.proc.pid, "lsp serve": lsp.proc.pid}
            if lab.net.backend is not None and lab.net.backend.proc is not None:
                pids[lab.net.backend.kind] = lab.net.backend.proc.pid
            progress(
                f"locust: {users} users, spawn rate {spawn_rate}/s, {duration_s}s"
                + (f", 1 master + {workers} workers" if workers else "")
            )
            log = (work / "locust.log").open("wb")
            procs: list[subprocess.Popen[bytes]] = []
            sampler = Sampler(pids, lambda: sum(len(c.pending_htlcs) for c in hub.list_channels()))
            try:
                master = subprocess.Popen(master_cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
                procs.append(master)
                pids["locust master" if workers else "locust"] = master.pid
                for i, cmd in enumerate(worker_cmds):
                    w = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
                    procs.append(w)
                    pids[f"locust worker {i + 1}"] = w.pid
                sampler.start()
                try:
                    master.wait(timeout=duration_s + 120)
                except subprocess.TimeoutExpired as exc:
                    raise LabError(
                        f"locust did not finish within {duration_s + 120}s; see {work / 'locust.log'}"
                    ) from exc
                for w in procs[1:]:
                    try:
                        w.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        w.terminate()
            finally:
                sampler.stop_event.set()
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
                        try:
                            p.wait(timeout=10)
                        except subprocess.TimeoutExpired:
                            p.kill()
                log.close()
            if not Path(f"{csv_prefix}_stats.csv").exists():
                raise LabError(f"locust wrote no statistics; see {work / 'locust.log'}")
            stats, failures = parse_stats(csv_prefix)
            locust_log = (work / "locust.log").read_bytes()
            hub.wait_no_pending_htlcs()
            payments = hub.ln.list_payments()
            sc.channels_after = channel_snapshot(lab)
            run.load = LoadResult(
                users=users,
                spawn_rate=spawn_rate,
                duration_s=duration_s,
                workers=workers,
                stats=stats,
                failures=failures,
                resources=sampler.resources(),
                lnd={
                    "payments settled by the hub during the run": sum(p.status == 2 for p in payments) - settled_before,
                    "payments failed at the hub (all time)": sum(p.status == 3 for p in payments),
                    "HTLCs in flight on the hub (max of 1 s samples)": sampler.max_htlcs,
                    "HTLCs in flight on the hub (mean)": round(
                        sum(sampler.htlc_samples) / max(len(sampler.htlc_samples), 1), 2
                    ),
                    "hub channels": len(sc.channels_after),
                },
            )
    agg = next((s for s in stats if s.name == "Aggregated"), None)
    ok = agg is not None and agg.requests > 0 and agg.failures <= MAX_FAILURE_RATIO * agg.requests
    sc.status = "passed" if ok else "failed"
    if not ok:
        sc.message = (
            f"{agg.failures} of {agg.requests} requests failed (limit {MAX_FAILURE_RATIO:.0%})"
            if agg
            else "no requests were made"
        )
    sc.duration_s = round(time.monotonic() - t_start, 2)
    run.scenarios.append(sc)
    run.status = sc.status
    run.duration_s = sc.duration_s
    from harness.report.render import write_report

    report = write_report(run, report_root)
    # Locust's own output (errors, worker hand-shakes) next to the report: the lab directory is gone.
    (report.parent / "locust.log").write_bytes(locust_log)
    return run, report
