"""Free TCP ports on 127.0.0.1 for node listeners, unique across processes.

Ports come from a range below Linux's ephemeral range (32768-60999), so an
outgoing connection of any process cannot take a port between the moment the
lab picks it and the moment the node binds it. Each port handed out is
reserved with a lock file naming the owning pid (the way LND's own
``lntest/port`` does it), so parallel labs (pytest-xdist workers, several
users of one machine) never get the same port; reservations of dead
processes are reclaimed.
"""

from __future__ import annotations

import os
import random
import socket
import tempfile
import threading
from pathlib import Path

from harness.runtime.process import pid_alive

PORT_RANGE = (20000, 32000)
_lock = threading.Lock()
# Ports this process claimed for labs that are still up (see claim/unclaim).
_claimed: set[int] = set()


def _reservations() -> Path:
    d = Path(os.environ.get("LAB_PORTS_DIR") or Path(tempfile.gettempdir()) / "lightning-lab-ports")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _owner_alive(path: Path) -> bool:
    try:
        pid = int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    return pid_alive(pid)


def _reserve(port: int) -> bool:
    path = _reservations() / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _owner_alive(path):
                return False
            path.unlink(missing_ok=True)  # stale: its owner is gone
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return True
    return False


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    lo, hi = PORT_RANGE
    with _lock:
        start = random.randrange(lo, hi)
        for i in range(hi - lo):
            port = lo + (start - lo + i) % (hi - lo)
            if _reserve(port):
                if _bindable(port):
                    return port
                (_reservations() / str(port)).unlink(missing_ok=True)
    raise RuntimeError(f"no free TCP port on 127.0.0.1 in {lo}..{hi}")


def claim(port: int) -> bool:
    """Reserve this exact port (a network snapshot's P2P port) if nobody else
    holds it: free, or reserved by a process that died, or reserved by this
    process for a lab that has stopped (``unclaim``; its listener is gone).
    False when another live process or lab holds it or something listens on it."""
    with _lock:
        if port in _claimed:
            return False
        path = _reservations() / str(port)
        try:
            mine = path.read_text().strip() == str(os.getpid())
        except OSError:
            mine = False
        if not mine and not _reserve(port):
            return False
        if _bindable(port):
            _claimed.add(port)
            return True
        if not mine:
            path.unlink(missing_ok=True)
        return False


def unclaim(port: int) -> None:
    """The lab that claimed ``port`` has stopped; the reservation stays this process's."""
    with _lock:
        _claimed.discard(port)


def release(port: int) -> None:
    """Give a port back (optional: reservations of exited processes are reclaimed)."""
    path = _reservations() / str(port)
    try:
        if path.read_text().strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass
