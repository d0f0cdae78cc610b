"""Replay scenarios against live labs and collect a ``RunResult``.

Networks: consecutive scenarios of one topology share a network when both
declare ``share_network: true`` and the earlier one did not break (an error
aborts it and its network is not trusted again). Any other scenario gets a
fresh network. A failed scenario's lab directory (logs, data) is kept.
"""

from __future__ import annotations

import platform
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from harness.errors import LabError
from harness.harness import LightningTestHarness
from harness.scenario.context import HostingSetup, StepContext, StepSkipped
from harness.scenario.events import EventCollector
from harness.scenario.loader import LoadedScenario
from harness.scenario.model import RECORDED_FIELDS, HostedNodeStep, KeysendStep, PayStep
from harness.scenario.plan import plan_scenario
from harness.scenario.results import ChannelSnapshot, RunResult, ScenarioResult, StepResult
from harness.scenario.steps import RUNNERS
from harness.topology import Topology

Progress = Callable[[str], None]
LOG_LINES_PER_NODE = 25
BRINGUP_ATTEMPTS = 2
LSP_MIN_CHANNEL_SIZE = 1_000_000  # the LSP's default LSP_MIN_CHANNEL_SIZE (lsp/config.py)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def versions() -> dict[str, str]:
    from lncore import versions as v

    return {
        "lnd": v.LND_VERSION,
        "bitcoind": f"{v.BITCOIN_CORE_VERSION} ({v.BITCOIN_CORE_SDIST} {v.BITCOIN_CORE_SDIST_VERSION} sdist)",
        "btcd": v.BTCD_VERSION,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def channel_snapshot(lab: LightningTestHarness) -> list[ChannelSnapshot]:
    """Every open channel once, seen from its initiator's side."""
    names = {n.pubkey: n.name for n in lab.net.all_nodes()}
    seen: dict[str, ChannelSnapshot] = {}
    for name, node in lab.nodes.items():
        if node.proc is None or not node.proc.is_running() or node.proc.paused:
            continue
        for ch in node.list_channels():
            if ch.channel_point in seen and not ch.initiator:
                continue
            peer = names.get(ch.remote_pubkey, ch.remote_pubkey[:10])
            seen[ch.channel_point] = ChannelSnapshot(
                name, peer, ch.capacity_sat, ch.local_balance_sat, ch.remote_balance_sat, ch.active
            )
    return sorted(seen.values(), key=lambda c: (c.a, c.b))


def _log_offsets(lab: LightningTestHarness) -> dict[str, int]:
    out = {}
    for name, n in lab.nodes.items():
        p = n.config.log_path
        out[name] = p.stat().st_size if p.exists() else 0
    return out


def _log_excerpt(lab: LightningTestHarness, offsets: dict[str, int], involved: list[str]) -> list[str]:
    """The node log lines written while the step ran (the involved nodes first;
    error lines always kept), so a failure shows what the nodes said about it."""
    lines: list[str] = []
    order = involved + [n for n in lab.nodes if n not in involved]
    for name in order:
        p = lab.nodes[name].config.log_path
        if not p.exists():
            continue
        with p.open("rb") as fh:
            fh.seek(offsets.get(name, 0))
            new = fh.read(512 * 1024).decode("utf-8", "replace").splitlines()
        errors = [x for x in new if "[ERR]" in x or "[WRN]" in x]
        tail = new[-LOG_LINES_PER_NODE:]
        picked = [x for x in new if x in errors[-10:] or x in tail]
        lines += [f"{name}: {x}" for x in picked[-LOG_LINES_PER_NODE:]]
    return lines[:150]


def _involved(step: Any) -> list[str]:
    out: list[str] = []
    for f in (
        "from_", "to", "node", "peer", "payer", "payee", "cheater", "victim", "tower", "lsp", "client",
        "receive_from", "pay_to", "delete_sweep_to",
    ):  # fmt: skip
        v = getattr(step, f, None)
        for x in [v] if isinstance(v, str) else (v or []):
            if x not in out:
                out.append(x)
    return out


def _step_label(step: Any) -> str:
    if step.name:
        return str(step.name)
    parts = [getattr(step, "call", None) or step.kind]
    inv = _involved(step)
    if inv:
        parts.append("->".join(inv) if hasattr(step, "from_") else ",".join(inv))
    amount = getattr(step, "amount_sat", None)
    if isinstance(amount, int):
        parts.append(f"{amount} sat")
    count = getattr(step, "count", 1)
    if count > 1:
        parts.append(f"x{count}")
    return " ".join(parts)


def start_lab(
    topology: Topology, *, runtime: str, progress: Progress, attempts: int = BRINGUP_ATTEMPTS
) -> tuple[LightningTestHarness, list[str]]:
    """A started lab, and the failures of earlier attempts (empty when the first worked).

    A bring-up can fail for reasons outside the scenario (a busy machine
    slowing gossip, a port taken between probe and bind); one fresh attempt
    keeps such noise out of the gate. Steps are never retried."""
    failures: list[str] = []
    for attempt in range(1, attempts + 1):
        # An unavailable runtime raises here, before any process starts: no retry.
        lab = LightningTestHarness(
            topology, runtime=runtime, tie_to_parent=True, progress=lambda m: progress(f"    {m}")
        )
        try:
            lab.start()
        except LabError as exc:
            kept = f" (logs kept in {lab.lab_dir})" if lab.lab_dir.exists() else ""
            failures.append(f"attempt {attempt}: {str(exc).splitlines()[0]}{kept}")
            if attempt < attempts:
                progress(f"  bring-up failed, trying once more with a fresh network: {failures[-1]}")
            continue
        return lab, failures
    raise LabError("bring-up failed: " + "; ".join(failures))


@contextmanager
def running(lab: LightningTestHarness) -> Iterator[LightningTestHarness]:
    """Stop an already started lab on the way out (kept on failure), like its own ``with``."""
    try:
        yield lab
    except BaseException:
        lab.stop(failed=True)
        raise
    lab.stop()


class Runner:
    def __init__(self, *, runtime: str = "process", progress: Progress = print, keep_failed: bool = True):
        self.runtime = runtime
        self.progress = progress
        self.keep_failed = keep_failed
        self._lab: LightningTestHarness | None = None
        self._lab_shareable = False
        self._lsp_events: list[dict[str, Any]] = []
        self._hosting: HostingSetup | None = None
        self._bringup_notes: list[str] = []

    # -- networks --------------------------------------------------------------
    def _network_for(self, ls: LoadedScenario) -> tuple[LightningTestHarness, bool, float]:
        sc = ls.scenario
        lab = self._lab
        if lab is not None and self._lab_shareable and sc.share_network and lab.topology.name == ls.topology.name:
            return lab, True, 0.0
        self._release()
        t0 = time.monotonic()
        lab, self._bringup_notes = start_lab(ls.topology, runtime=self.runtime, progress=self.progress)
        self._lab = lab
        return lab, False, time.monotonic() - t0

    def _release(self, *, failed: bool = False) -> None:
        if self._lab is not None:
            self._lab.stop(failed=failed and self.keep_failed)
            self._lab = None
            self._lab_shareable = False

    # -- one scenario ------------------------------------------------------------
    def run_scenario(self, ls: LoadedScenario) -> ScenarioResult:
        sc = ls.scenario
        res = ScenarioResult(sc.name, sc.description, ls.topology.name, sc.seed, str(ls.path))
        res.nodes = [n.name for n in ls.topology.nodes]
        t0 = time.monotonic()
        self.progress(f"scenario {sc.name} (topology {ls.topology.name}, seed {sc.seed})")
        try:
            lab, reused, bringup = self._network_for(ls)
        except LabError as exc:
            res.status, res.message = "error", str(exc)
            res.duration_s = time.monotonic() - t0
            res.steps = [StepResult(i, s.kind, _step_label(s), status="skipped") for i, s in enumerate(sc.steps)]
            self.progress(f"  [error] {res.message}")
            return res
        res.reused_network, res.bringup_s = reused, round(bringup, 2)
        res.chain = lab.topology.chain
        if not reused and self._bringup_notes:
            res.message = "network came up on the second attempt; first: " + self._bringup_notes[0]
        if reused:
            self.progress(f"  reusing the {ls.topology.name} network of the previous scenario")
        plans = plan_scenario(sc)
        history: dict[str, StepResult] = {}
        aborted = False
        self._lsp_events = []
        self._hosting = None
        with ExitStack() as stack:
            try:
                lsp_client = self._start_lsp(ls, lab, stack) if sc.lsp else None
            except Exception as exc:  # the scenario errors; the run goes on
                res.status, res.message = "error", f"the LSP did not start: {type(exc).__name__}: {exc}"
                res.steps = [StepResult(i, s.kind, _step_label(s), status="skipped") for i, s in enumerate(sc.steps)]
                res.duration_s = round(time.monotonic() - t0, 2)
                self._release(failed=True)
                self.progress(f"  [error] {res.message}")
                return res
            res.channels_before = channel_snapshot(lab)
            for i, step in enumerate(sc.steps):
                sr = StepResult(i, step.kind, _step_label(step))
                res.steps.append(sr)
                if aborted:
                    sr.status = "skipped"
                    sr.message = "skipped: an earlier step errored"
                    continue
                self._run_step(lab, ls, i, step, sr, plans.get(i, []), history, lsp_client)
                if step.name and (isinstance(step, PayStep | KeysendStep) or step.kind in RECORDED_FIELDS):
                    history[step.name] = sr
                if sr.status == "error":
                    aborted = True
            try:
                res.channels_after = channel_snapshot(lab)
            except Exception as exc:
                res.message = f"could not read channels after the run: {exc}"
        statuses = {s.status for s in res.steps}
        res.status = "error" if "error" in statuses else "failed" if "failed" in statuses else "passed"
        res.duration_s = round(time.monotonic() - t0, 2)
        self._lab_shareable = res.status != "error" and sc.share_network
        if res.status != "passed" or not sc.share_network:
            self._release(failed=res.status != "passed")
        self.progress(f"  => {res.status.upper()} in {res.duration_s:.1f}s")
        return res

    def _hosting_for(self, ls: LoadedScenario, lab: LightningTestHarness, stack: ExitStack) -> dict[str, str]:
        """When a step is ``hosted_node``: the LSP's LSP_HOSTING_* settings (a fresh instance name on the
        Docker daemon) and the removal of that instance's containers and volumes when the scenario
        ends, passed or not (their logs kept in the lab directory). Hosted nodes outlive the LSP by
        design, and in the Docker runtime they would keep the lab's network from being removed.
        Without a Docker daemon (or on btcd) the LSP starts without hosting and the steps say why."""
        hosted = [s for s in ls.scenario.steps if isinstance(s, HostedNodeStep)]
        if not hosted:
            return {}
        from harness.errors import LabError
        from harness.hosted import remove_instance
        from harness.lsp_process import hosting_env
        from harness.runtime.docker_client import docker_available, docker_host

        workdir = lab.lab_dir / "lsp" / "hosted"
        instance = "sc" + secrets.token_hex(4)
        if not docker_available():
            self._hosting = HostingSetup(
                instance,
                workdir,
                unavailable=f"hosted nodes run on a Docker daemon and none answers at {docker_host()}: start one "
                "with `scripts/dockerd.sh start` and export the DOCKER_HOST it prints",
            )
            return {}
        try:
            env = hosting_env(lab, instance=instance)
        except LabError as exc:
            self._hosting = HostingSetup(instance, workdir, unavailable=str(exc).splitlines()[0])
            return {}
        self._hosting = HostingSetup(instance, workdir)

        def remove() -> None:
            try:
                gone = remove_instance(instance, workdir / "logs")
            except Exception as exc:  # reported, never raised over the scenario's own outcome
                self.progress(f"  could not remove the hosted nodes of LSP instance {instance}: {exc}")
                return
            if gone:
                self.progress(f"  removed {len(gone)} hosted-node container(s)/volume(s) of instance {instance} "
                              f"(logs in {workdir / 'logs'})")

        stack.callback(remove)  # entered before the LSP: runs after it stopped (it would restart them)
        # Small initial channels need a lower minimum (hosting_env gives the LSP the lab's daemon).
        smallest = min((c.capacity_sat for s in hosted for c in s.channels), default=LSP_MIN_CHANNEL_SIZE)
        if smallest < LSP_MIN_CHANNEL_SIZE:
            env["LSP_MIN_CHANNEL_SIZE"] = str(smallest)
        return env

    def _start_lsp(self, ls: LoadedScenario, lab: LightningTestHarness, stack: ExitStack) -> Any:
        from harness.lsp_process import LspServer
        from lsp.client import LSPClient

        assert ls.scenario.lsp is not None
        server = LspServer.on_node(lab.node(ls.scenario.lsp), lab.lab_dir)
        server.env.update(self._hosting_for(ls, lab, stack))
        stack.enter_context(server)
        if self._hosting is not None:
            state = f"unavailable: {self._hosting.unavailable}" if self._hosting.unavailable else "on"
            self.progress(f"  hosted nodes (instance {self._hosting.instance}): {state}")
        client = server.onboard(f"scenario {ls.scenario.name}")
        self.progress(f"  LSP API on {server.base_url} (node {ls.scenario.lsp}), client {client.client_id}")
        self._lsp_events = stack.enter_context(EventCollector(server.base_url, client.api_key, client.api_secret)).events
        return stack.enter_context(LSPClient(server.base_url, client.api_key, client.api_secret))

    def _run_step(
        self,
        lab: LightningTestHarness,
        ls: LoadedScenario,
        i: int,
        step: Any,
        sr: StepResult,
        planned: list[Any],
        history: dict[str, StepResult],
        lsp_client: Any,
    ) -> None:
        n = len(ls.scenario.steps)
        self.progress(f"  [{i + 1}/{n}] {step.kind}: {sr.name}")
        ctx = StepContext(
            lab, ls.scenario, i, sr, planned, history, lsp_client, self.progress, self._lsp_events, self._hosting
        )
        offsets = _log_offsets(lab)
        sr.started_at = time.time()
        t0 = time.monotonic()
        try:
            RUNNERS[step.kind](step, ctx)
            sr.status = "failed" if sr.failures else "passed"
        except StepSkipped as exc:
            sr.status, sr.message = "skipped", str(exc)
        except Exception as exc:
            sr.status, sr.message = "error", f"{type(exc).__name__}: {exc}"
        sr.duration_s = round(time.monotonic() - t0, 3)
        if sr.failures and not sr.message:
            sr.message = "; ".join(sr.failures[:5]) + (
                f" (+{len(sr.failures) - 5} more)" if len(sr.failures) > 5 else ""
            )
        if sr.status in ("failed", "error"):
            sr.log_excerpt = _log_excerpt(lab, offsets, _involved(step))
        mark = {"passed": "ok", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}[sr.status]
        extra = f" — {sr.detail}" if sr.detail else ""
        self.progress(f"        {mark} ({sr.duration_s:.2f}s){extra}")
        if sr.message:
            self.progress(f"        {sr.message}")

    # -- a run ---------------------------------------------------------------------
    def run(self, target: str, scenarios: list[LoadedScenario], *, run_id: str | None = None) -> RunResult:
        run = RunResult(
            run_id=run_id or new_run_id(),
            target=target,
            runtime=self.runtime,
            started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            versions=versions(),
        )
        t0 = time.monotonic()
        try:
            for ls in scenarios:
                run.scenarios.append(self.run_scenario(ls))
        finally:
            self._release()
        run.duration_s = round(time.monotonic() - t0, 2)
        statuses = {s.status for s in run.scenarios}
        run.status = "error" if "error" in statuses else "failed" if "failed" in statuses else "passed"
        return run


def run_target(
    target: str, *, runtime: str = "process", progress: Progress = print, report_root: Path | None = None
) -> tuple[RunResult, Path | None]:
    """Load, replay and (when ``report_root`` is given) write the report; returns (result, report dir)."""
    from harness.scenario.loader import load_target

    name, scenarios = load_target(target)
    run = Runner(runtime=runtime, progress=progress).run(name, scenarios)
    if report_root is None:
        return run, None
    from harness.report.render import write_report

    return run, write_report(run, report_root)
