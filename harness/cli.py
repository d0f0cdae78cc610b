"""The ``lab`` command: set up the toolchain, bring networks up and down, benchmark."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from harness.errors import LabError, LabStateError
from harness.runtime import CONCRETE_RUNTIMES, RUNTIMES

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@contextmanager
def _progress(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step; each finished step is printed."""
    with console.status(title) as status:

        def step(msg: str) -> None:
            console.print(f"[dim]•[/dim] {msg}")
            status.update(f"{title}: {msg}")

        yield step


class LabGroup(click.Group):
    """Prints lab errors as one clear message instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LabError as exc:
            console.print(f"[red]error:[/red] {exc}", highlight=False)
            sys.exit(1)


@click.group(cls=LabGroup)
@click.version_option(package_name="lightning-lab")
def main() -> None:
    """A Lightning regtest lab: real LND on Bitcoin Core (or btcd), shaped by topology files."""
    import warnings

    from harness.errors import BringupRetried

    warnings.simplefilter("ignore", BringupRetried)  # the progress output already says it, in words


@main.command()
@click.option("--release", is_flag=True, help="also build the release-tag LND that operators deploy")
def setup(release: bool) -> None:
    """Build the pinned lnd, lncli, bitcoind, bitcoin-cli, btcd, btcctl and LND's gRPC stubs (idempotent)."""
    from harness.toolchain.build import setup as do_setup

    with _progress("lab setup") as step:
        tc = do_setup(release=release, progress=step)
    out.print(f"lnd:      {tc.lnd}\nbitcoind: {tc.bitcoind}\nbtcd:     {tc.btcd}")


@main.command()
@click.argument("topology")
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default="auto",
    show_default=True,
    help="auto: Docker when a daemon answers (DOCKER_HOST or scripts/dockerd.sh), else local processes",
)
@click.option(
    "--chain", type=click.Choice(["bitcoind", "btcd"]), default=None,
    help="chain backend (default: what the topology names; bitcoind unless it says btcd)",
)
@click.option("--cold", is_flag=True, help="build the network from scratch instead of from its saved snapshot")
@click.option(
    "--lsp", "with_lsp", is_flag=True,
    help="also run the LSP (API and LSPS daemon) on the topology's lsp-role node, with one demo client",
)
def up(topology: str, runtime: str, chain: str | None, cold: bool, with_lsp: bool) -> None:
    """Start TOPOLOGY (a name in topologies/ or a YAML path) in the background."""
    from harness.harness import LightningTestHarness
    from harness.labstate import STATE_FILE, active_lab, set_active

    current = active_lab()
    if current is not None and any(current.alive().values()):
        raise LabStateError(
            f"a lab is already up ({current.topology}, {current.lab_dir}); run `lab down` first"
        )
    from harness.harness import resolve_runtime

    runtime = resolve_runtime(runtime)
    console.print(f"runtime: {runtime}")
    with _progress(f"lab up {topology}") as step:
        lab = LightningTestHarness(
            topology, runtime=runtime, tie_to_parent=False, progress=step, chain=chain, snapshot=False if cold else None
        )
        lsp_node = _lsp_node(lab.topology) if with_lsp else None
        lab.start(retries=lab.bringup_retries)
    net = lab.net
    state = net.describe()
    if lsp_node is not None:
        from harness.lsp_process import start_lab_lsp

        with _progress(f"LSP on {lsp_node}"):
            try:
                state["lsp"] = start_lab_lsp(lab.node(lsp_node), lab.lab_dir).describe()
            except BaseException:
                lab.stop(failed=True)  # nothing left running; the lab directory (logs) is kept
                raise
    (lab.lab_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
    set_active(lab.lab_dir)
    _print_lab(state)


def _lsp_node(topo: Any) -> str:
    """The lsp-role node ``--lsp`` runs the LSP on (an LND node)."""
    names = [n.name for n in topo.nodes if n.role == "lsp" and n.implementation == "lnd"]
    if not names:
        raise click.UsageError(
            f"topology {topo.name!r} has no LND node with role lsp; --lsp runs the LSP on it "
            "(e.g. star5, whose hub is the LSP)"
        )
    return str(names[0])


def _print_lab(state: dict[str, Any], alive: dict[str, bool] | None = None) -> None:
    t = Table(title=f"lab {state['topology']}", title_justify="left")
    for col in ("node", "pubkey", "gRPC", "p2p", "REST", *(["up"] if alive else [])):
        t.add_column(col)
    for name, n in state["nodes"].items():
        row = [name, n["pubkey"], n["rpc"], n["p2p"], n["rest"]]
        if alive is not None:
            row.append("yes" if alive.get(name) else "[red]no[/red]")
        t.add_row(*row)
    for name, n in state.get("ldk_nodes", {}).items():
        row = [f"{name} (ldk)", n["pubkey"], f"api {n['api']}", n["p2p"], "-"]
        if alive is not None:
            row.append("yes" if alive.get(name) else "[red]no[/red]")
        t.add_row(*row)
    out.print(t)
    c = state["chain"]
    cert = f", cert {c['cert']}" if c.get("cert") else ""
    out.print(f"{c['kind']} RPC: {c['rpc']} (user {c['rpc_user']}, password {c['rpc_pass']}{cert})" + (
        "" if alive is None else ("" if alive.get(c["kind"]) else " [red]down[/red]")))
    first = next(iter(state["nodes"].values()))
    out.print(f"credentials: <lab>/<node>/tls.cert, macaroon e.g. {first['macaroon']}")
    lsp = state.get("lsp")
    if lsp:
        up_ = "" if alive is None else ("" if all(alive.get(p["name"]) for p in lsp["processes"]) else " [red]down[/red]")
        c = lsp["client"]
        out.print(f"LSP on {lsp['node']}: {lsp['url']}{up_} (API docs {lsp['url']}/docs)")
        out.print(f"  admin key:  {lsp['admin_key']}  (X-Admin-Key: onboarding, operator endpoints)")
        out.print(f"  demo client {c['client_id']}: api key {c['api_key']}  api secret {c['api_secret']}")
        out.print(f"  dashboard:  {lsp['dashboard']}  password {lsp['dashboard_password']}")
        out.print(f"  logs:       {', '.join(p['log'] for p in lsp['processes'])}")
    out.print(f"lab directory: {state['lab_dir']}")


@main.command()
def status() -> None:
    """Show the running lab: nodes, ports, chain height, channels."""
    from harness.labstate import active_lab

    lab = active_lab()
    if lab is None:
        out.print("no lab is up (start one with `lab up TOPOLOGY`)")
        return
    alive = lab.alive()
    _print_lab(lab.state, alive)
    for name in lab.state["nodes"]:
        if not alive.get(name):
            continue
        try:
            node = lab.node(name)
            info = node.get_info()
            out.print(
                f"{name}: height {info.block_height}, synced {info.synced_to_chain}, "
                f"{info.num_active_channels} active channel(s), {info.num_peers} peer(s)"
            )
            node.close_rpc()
        except LabError as exc:
            out.print(f"{name}: [red]{exc}[/red]")


@main.command()
@click.option("--keep", is_flag=True, help="keep the lab directory (logs, data) even on a clean stop")
def down(keep: bool) -> None:
    """Stop the running lab and remove its directory (kept if a node had crashed)."""
    from harness.labstate import active_lab, clear_active

    lab = active_lab()
    if lab is None:
        out.print("no lab is up; nothing to stop")
        return
    if lab.runtime == "attached":
        clear_active(remove_dir=lab.lab_dir)
        out.print(f"detached from {lab.topology}; the compose network keeps running (docker-compose ... down stops it)")
        return
    dead = lab.stop()
    if dead or keep:
        clear_active()
        why = f"{', '.join(dead)} had already stopped on its own; " if dead else ""
        out.print(f"lab stopped; {why}kept {lab.lab_dir}")
    else:
        clear_active(remove_dir=lab.lab_dir)
        out.print(f"lab {lab.topology} stopped and removed")


@main.command()
@click.argument("payer")
@click.argument("payee")
@click.argument("amount_sat", type=click.IntRange(1))
@click.option("--fee-limit", "fee_limit_sat", type=click.IntRange(0), default=100, show_default=True)
def pay(payer: str, payee: str, amount_sat: int, fee_limit_sat: int) -> None:
    """PAYEE creates an invoice for AMOUNT_SAT and PAYER pays it (running lab)."""
    from harness.labstate import active_lab

    lab = active_lab()
    if lab is None:
        raise LabStateError("no lab is up (start one with `lab up TOPOLOGY`)")
    src, dst = lab.node(payer), lab.node(payee)
    inv = dst.add_invoice(amount_sat, memo=f"lab pay {payer}->{payee}")
    res = src.pay_invoice(inv.payment_request, fee_limit_sat=fee_limit_sat)
    out.print(
        f"{res.status}: {payer} -> {payee} {amount_sat} sat, fee {res.fee_msat} msat, "
        f"{len(res.route)} hop(s), {res.attempts} attempt(s)"
        + ("" if res.succeeded else f", reason {res.failure_reason}")
    )
    if not res.succeeded:
        sys.exit(1)


@main.command()
@click.option("--project", default="lightning-lab-regtest", show_default=True, help="the compose project name (-p)")
def attach(project: str) -> None:
    """Attach to a network started with docker-compose.regtest.yml (profile lab)."""
    from harness.attach import attach_compose
    from harness.harness import runs_root
    from harness.labstate import STATE_FILE, active_lab, set_active

    current = active_lab()
    if current is not None and any(current.alive().values()):
        raise LabStateError(f"a lab is already up ({current.topology}, {current.lab_dir}); run `lab down` first")
    lab_dir = runs_root() / f"attached-{project}"
    with _progress(f"lab attach {project}") as step:
        step("copying credentials out of the containers and syncing nodes")
        net = attach_compose(project, lab_dir)
    net.write_state(lab_dir / STATE_FILE)
    set_active(lab_dir)
    _print_lab(net.describe())
    out.print("attached: `lab down` detaches and leaves the compose network running")


@main.command()
def topologies() -> None:
    """List the topologies shipped in topologies/."""
    from harness.topology import TOPOLOGY_DIR, load_topology

    for p in sorted(TOPOLOGY_DIR.glob("*.yaml")):
        t = load_topology(p)
        out.print(f"{p.stem:8} {len(t.nodes)} nodes, {len(t.channels)} channels  {t.description}")


def _resolve_topologies(names: tuple[str, ...]) -> list[Any]:
    """Each TOPOLOGY argument loaded and validated before anything starts; a bad one is named."""
    from harness.errors import TopologyError
    from harness.topology import load_topology

    loaded = []
    for name in names:
        try:
            loaded.append(load_topology(name))
        except TopologyError as exc:
            if exc.problems and not exc.problems[0][0] and len(exc.problems) == 1:
                raise LabError(f"TOPOLOGY {name!r}: {exc.problems[0][1]}") from None
            raise LabError(f"TOPOLOGY {name!r}: {exc}") from None
    return loaded


@main.command()
@click.argument("topologies_", metavar="[TOPOLOGY]...", nargs=-1)
@click.option("--count", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="rounds: each topology is brought up this many times")
@click.option("--max-minutes", type=click.FloatRange(0, 24 * 60, min_open=True), default=60.0, show_default=True,
              help="start no bring-up after this much wall time")
@click.option("--chain", type=click.Choice(["bitcoind", "btcd"]), default=None,
              help="chain backend (default: what each topology names)")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="write every sample as JSON")
def soak(topologies_: tuple[str, ...], count: int, max_minutes: float, chain: str | None, out_path: Path | None) -> None:
    """Bring each TOPOLOGY (default: star5 mesh8) up cold and down again, COUNT times, and count the flakes.

    Prints per topology the bring-ups, how many needed a retry or failed, the rounds of gossip repair
    and time to ready (p50, p95, max); lists the lab directories kept. Exit 1 if any bring-up needed a
    retry or failed."""
    from bench.soak import as_rows, needs_attention, run

    topos = _resolve_topologies(topologies_ or ("star5", "mesh8"))
    summaries = run(topos, count=count, max_minutes=max_minutes, chain=chain, out_path=out_path, echo=out.print)
    rows = as_rows(summaries)
    t = Table(title=f"lab soak (cold, up to {count} round(s), {max_minutes:g} min)", title_justify="left")
    for col in rows[0]:
        t.add_column(col)
    for r in rows:
        t.add_row(*r.values())
    out.print(t)
    for s in summaries:
        for path in s.kept:
            out.print(f"kept ({s.topology}): {path}")
    if needs_attention(summaries):
        sys.exit(1)


@main.command()
@click.option("--nodes", type=click.IntRange(2, 500), required=True, help="number of nodes")
@click.option("--degree", type=float, default=3.0, show_default=True, help="mean channels per node")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--attachment", type=click.Choice(["uniform", "preferential"]), default="uniform", show_default=True,
              help="how extra channels pick their ends: uniformly, or by degree (hubs grow)")
@click.option("--private-fraction", type=float, default=0.0, show_default=True,
              help="share of channels that are private (never the spanning tree's)")
@click.option("--peer-policy-fraction", type=float, default=0.5, show_default=True,
              help="share of channels whose peer side declares a policy too")
@click.option("--capacity-median", type=int, default=2_000_000, show_default=True, help="sat (log-normal)")
@click.option("--name", default=None, help="topology name (default: gen-n<nodes>-d<degree>-s<seed>)")
@click.option("--chain", type=click.Choice(["bitcoind", "btcd"]), default="bitcoind", show_default=True)
def gen(nodes: int, degree: float, seed: int, attachment: str, private_fraction: float, peer_policy_fraction: float,
        capacity_median: int, name: str | None, chain: str) -> None:
    """Print a generated topology (seeded: the same options give the same file): lab gen --nodes 20 > t.yaml"""
    from pydantic import ValidationError

    from harness.topogen import GenSpec, generate, to_yaml

    fields = {"nodes": nodes, "degree": degree, "seed": seed, "attachment": attachment,
              "private_fraction": private_fraction, "peer_policy_fraction": peer_policy_fraction,
              "capacity_sat": {"median": capacity_median}}
    try:
        spec = GenSpec.model_validate(fields)
    except ValidationError as exc:
        msgs = []
        for e in exc.errors():
            loc = [str(p) for p in e["loc"]]
            option = "--capacity-median" if loc[0] == "capacity_sat" else "--" + loc[0].replace("_", "-")
            msgs.append(f"{option}: {e['msg'].removeprefix('Value error, ')}")
        raise LabError("invalid generator options:\n  " + "\n  ".join(msgs)) from None
    topo = generate(spec, name=name, chain=chain)
    args = " ".join(sys.argv[1:]) if sys.argv[1:2] == ["gen"] else f"gen --nodes {nodes} --seed {seed}"
    out.print(to_yaml(topo, header=f"generated by `lab {args}`"), end="", highlight=False, markup=False)


@main.group()
def bench() -> None:
    """Benchmarks (figures recorded in docs/BENCHMARKS.md)."""


@bench.command("bringup")
@click.option("--topology", "topologies_", multiple=True, default=("line3", "star5", "mesh8"), show_default=True)
@click.option("--runs", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="write results as JSON")
@click.option(
    "--runtime", "runtimes", multiple=True, type=click.Choice(CONCRETE_RUNTIMES), default=("process",),
    show_default=True, help="repeat to compare runtimes in the same run",
)
@click.option(
    "--chain", "chains", multiple=True, type=click.Choice(["bitcoind", "btcd"]), default=("bitcoind", "btcd"),
    show_default=True, help="repeat to compare chain backends in the same run",
)
@click.option(
    "--mode", "modes", multiple=True, type=click.Choice(["cold", "snapshot"]), default=("cold", "snapshot"),
    show_default=True, help="cold: built from scratch; snapshot: from the network's saved snapshot (bitcoind only)",
)
def bench_bringup(
    topologies_: tuple[str, ...], runs: int, out_path: Path | None, runtimes: tuple[str, ...],
    chains: tuple[str, ...], modes: tuple[str, ...],
) -> None:
    """Time from start to ready per topology, chain and mode, and peak memory per LND and chain process."""
    from bench.bringup import run

    run(list(topologies_), runs=runs, out_path=out_path, runtimes=runtimes, chains=chains, modes=modes, echo=out.print)


POSTGRES_URLS = ("postgresql://", "postgresql+psycopg://", "postgres://")  # what --db accepts as PostgreSQL


def int_list(value: str, *, low: int, high: int, noun: str, option: str) -> list[int]:
    """A comma-separated option of whole numbers in low..high (``5,10,20``); a usage error naming the
    option and the bad part otherwise."""
    parts = [p.strip() for p in value.split(",")]
    for part in parts:
        if not part.isdigit() or not low <= int(part) <= high:
            raise click.BadParameter(f"{part!r} is not a {noun} in {low}..{high}", param_hint=f"'{option}'")
    return [int(p) for p in parts]


@bench.command("scale")
@click.option("--nodes", "sizes", default="5,10,20,50", show_default=True,
              help="comma-separated node counts, brought up one after the other")
@click.option("--degree", type=click.FloatRange(1, 50), default=3.0, show_default=True, help="mean channels per node")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--private-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--chain", type=click.Choice(["bitcoind", "btcd"]), default=None)
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="write results as JSON")
def bench_scale(sizes: str, degree: float, seed: int, private_fraction: float, chain: str | None,
                out_path: Path | None) -> None:
    """Cold bring-up of generated topologies of growing size: time to ready by phase, retries, LND memory."""
    from bench.scale import markdown_table, run
    from harness.topogen import MAX_NODES

    counts = int_list(sizes, low=2, high=MAX_NODES, noun="node count", option="--nodes")
    rows = run(counts, degree=degree, seed=seed, private_fraction=private_fraction, chain=chain, out_path=out_path,
               echo=out.print)
    out.print(markdown_table(rows), highlight=False, markup=False)
    if any(r["retries"] for r in rows):
        sys.exit(1)


@bench.command("chain-notify")
@click.option("--blocks", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--idle", "idle_s", type=click.FloatRange(1, 120), default=15.0, show_default=True, help="seconds")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="write results as JSON")
def bench_chain_notify(blocks: int, idle_s: float, out_path: Path | None) -> None:
    """How fast LND sees Bitcoin Core's blocks and what it costs idle: ZMQ vs RPC polling."""
    from bench.chain_notify import run

    run(blocks=blocks, idle_s=idle_s, out_path=out_path, echo=out.print)


@bench.command("routing")
@click.option("--nodes", type=int, default=2000, show_default=True, help="simulation: graph nodes")
@click.option("--channels", type=int, default=8000, show_default=True, help="simulation: graph channels")
@click.option("--payments", type=int, default=20, show_default=True, help="simulation: payments per amount")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--live-rounds", type=click.IntRange(0, 20), default=3, show_default=True, help="0: no live part")
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=None,
    help="write JSON results and the HTML report (routing.html) here",
)
def bench_routing(nodes: int, channels: int, payments: int, seed: int, live_rounds: int, out_dir: Path | None) -> None:
    """Routing: simulated mainnet-like graph (LND-style vs MCF), then live lnd vs mcf on mpp6."""
    from bench import routing as sim

    args = ["--nodes", str(nodes), "--channels", str(channels), "--payments", str(payments), "--seed", str(seed)]
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        args += ["--out", str(out_dir / "routing-sim.json")]
        args += ["--report", str(out_dir / "routing.html")]
    sim.main(args)
    if live_rounds:
        from bench.routing_live import run as run_live

        live_out = out_dir / "routing-live.json" if out_dir is not None else None
        run_live(rounds=live_rounds, out_path=live_out, echo=out.print)


@bench.command("jit")
@click.option("--runs", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--client", "clients", type=click.Choice(["lnd", "ldk"]), multiple=True,
              help="which LSPS2 clients to time (repeatable; default both: ours on LND and LDK's)")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="write results as JSON")
def bench_jit(runs: int, clients: tuple[str, ...], out_path: Path | None) -> None:
    """LSPS2 JIT time-to-settle (payer start -> preimage), p50/p95, per client, on the ldk-lsp topology."""
    from bench.jit import CLIENTS, run

    run(runs=runs, clients=clients or CLIENTS, out_path=out_path, echo=out.print)


@bench.command("hosted")
@click.option("--runs", type=click.IntRange(1, 20), default=5, show_default=True, help="hosted nodes created one after another")
@click.option("--runtime", type=click.Choice(CONCRETE_RUNTIMES), default="process", show_default=True,
              help="the lab's runtime (the hosted nodes always run on the Docker daemon)")
@click.option("--image", default=None, help="the LND image the hosted nodes run (default: the lab's LND image)")
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="write results as JSON")
def bench_hosted(runs: int, runtime: str, image: str | None, out_path: Path | None) -> None:
    """Hosted nodes: POST /api/nodes -> running -> channels usable (median; target <= 15 s) and memory per node (star5)."""
    from bench.hosted import phases_table, run, table
    from harness.runtime.docker_client import docker_available

    if not docker_available():
        raise LabError("hosted nodes run on a Docker daemon and none answers (start one with scripts/dockerd.sh)")
    result = run(runs=runs, runtime=runtime, image=image, out_path=out_path, echo=out.print)
    out.print(table(result), highlight=False, markup=False)
    out.print(phases_table(result), highlight=False, markup=False)



# `lab run` and `lab load` (scenario replays, load runs) live beside their code.
from harness.scenario.cli import register as _register_scenario_commands  # noqa: E402

_register_scenario_commands(main, console=console, out=out)


@bench.command("lsp")
@click.option("--payments", type=click.IntRange(1, 500), default=100, show_default=True, help="per side and setting")
@click.option("--amount", "amount_sat", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--concurrency", default="1,4,8", show_default=True, help="comma-separated concurrencies, 1..16")
@click.option(
    "--db",
    "db_urls",
    multiple=True,
    help="LSP database: 'sqlite' (a file in the lab dir) or a postgresql:// URL; repeat for several (default sqlite)",
)
@click.option("--out", "out_path", type=click.Path(path_type=Path), default=None, help="write results as JSON")
def bench_lsp(payments: int, amount_sat: int, concurrency: str, db_urls: tuple[str, ...], out_path: Path | None) -> None:
    """Payments through the LSP API versus straight to LND's router: every --db x --concurrency in one run (star5)."""
    from bench.lsp import run as run_lsp

    levels = int_list(concurrency, low=1, high=16, noun="concurrency", option="--concurrency")
    for db in db_urls:
        if db != "sqlite" and not db.startswith((*POSTGRES_URLS, "sqlite:///")):
            raise click.BadParameter(f"{db!r} is neither 'sqlite' nor a database URL", param_hint="--db")
    try:
        run_lsp(
            payments=payments,
            amount_sat=amount_sat,
            concurrency=levels,
            db_urls=list(db_urls) or None,
            out_path=out_path,
            echo=out.print,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


@bench.command("kyc-usage")
@click.option("--payments", type=click.IntRange(1_000, 1_000_000), default=100_000, show_default=True)
@click.option("--days", type=click.IntRange(1, 3650), default=180, show_default=True, help="history spread over")
@click.option("--queries", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--db", "db_url", default=None, help="a postgresql:// server URL (an empty database is made there); default SQLite")
def bench_kyc_usage(payments: int, days: int, queries: int, db_url: str | None) -> None:
    """The KYC volume query each payment runs, against a long history, with and without its index."""
    from bench.kyc_usage import run as run_usage

    if db_url is not None and not db_url.startswith(POSTGRES_URLS):
        raise click.BadParameter(f"{db_url!r} is not a postgresql:// URL", param_hint="--db")
    run_usage(payments=payments, days=days, queries=queries, db_url=db_url, echo=out.print)


if __name__ == "__main__":
    main()
