"""Local-process runtime: start, stop, kill, pause and resume node processes.

Processes run in their own session (a Ctrl-C in the terminal reaches the lab,
which stops them in order, instead of killing nodes mid-write). When
``tie_to_parent`` is set they also get PR_SET_PDEATHSIG, so even a SIGKILLed
test runner leaves no node behind; ``lab up`` clears it so the network
outlives the command.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import NodeError
from harness.runtime.base import NodeHandle

_PR_SET_PDEATHSIG = 1


def _pdeathsig_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL``, which sets the death signal and execs the
    node. Preferred over a ``preexec_fn``: that forces a plain fork() of this
    (multi-threaded) Python process, and a child that runs Python code before
    exec can abort in gRPC's fork handlers (seen: lnd "exited" with -6/-11
    when a test had an asyncio gRPC client running)."""
    path = shutil.which("setpriv")
    return [path, "--pdeathsig", "KILL", "--"] if path else []


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass
class ManagedProcess:
    """A node process the lab started. Its log file is kept with the lab."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    pid: int = 0
    paused: bool = field(default=False)

    def is_running(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid)

    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited in ``timeout_s``."""
        if not self.is_running():
            self._reap()
            return
        if self.paused:
            self.resume()
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                self._reap()
                return
            time.sleep(0.05)
        self.kill()

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._reap()

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def _signal(self, sig: int) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self) -> None:
        if self.popen is not None:
            try:
                self.popen.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def pid_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class ProcessRuntime:
    """Starts node binaries as child processes of this Python process."""

    name = "process"
    listen_host = "127.0.0.1"

    def __init__(self, *, tie_to_parent: bool = True):
        self.tie_to_parent = tie_to_parent

    def peer_host(self, node: str) -> str:
        """How other nodes address ``node``: everything is on loopback."""
        return "127.0.0.1"

    def restart(self, handle: NodeHandle) -> ManagedProcess:
        """Start a stopped node again with the same arguments (its data is kept)."""
        return self.start(handle.name, handle.argv, log_path=handle.log_path)

    def remove(self, handle: NodeHandle) -> None:
        """A stopped process leaves nothing behind but its files."""

    def close(self) -> list[str]:
        return []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        publish: Sequence[int] = (),
    ) -> ManagedProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")
        try:
            popen = subprocess.Popen(
                [*_pdeathsig_prefix(), *argv] if self.tie_to_parent else list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=True,
                preexec_fn=_die_with_parent if self.tie_to_parent and not _pdeathsig_prefix() else None,
            )
        except OSError as exc:
            raise NodeError(f"cannot start {name}: {argv[0]}: {exc}") from exc
        finally:
            out.close()
        return ManagedProcess(name=name, argv=list(argv), log_path=log_path, popen=popen, pid=popen.pid)

    @staticmethod
    def adopt(name: str, pid: int, argv: list[str], log_path: Path) -> ManagedProcess:
        """A handle on a process started by an earlier command (``lab down``)."""
        return ManagedProcess(name=name, argv=argv, log_path=log_path, popen=None, pid=pid)
