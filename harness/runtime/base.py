"""What the lab needs from a runtime (local processes or Docker containers)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class NodeHandle(Protocol):
    """A running (or stopped) node: a process or a container."""

    name: str
    argv: list[str]
    log_path: Path
    paused: bool

    @property
    def pid(self) -> int: ...
    def is_running(self) -> bool: ...
    def returncode(self) -> int | None: ...
    def stop(self, timeout_s: float = ...) -> None: ...
    def kill(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...


class Runtime(Protocol):
    name: str
    # Where node listeners bind inside their process/container.
    listen_host: str

    def peer_host(self, node: str) -> str:
        """The host name other nodes use to reach ``node``."""
        ...

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        publish: Sequence[int] = (),
    ) -> NodeHandle:
        """Start ``argv`` (argv[0] is the host binary); ``publish`` lists the
        ports the host must reach on 127.0.0.1 (same number on both sides)."""
        ...

    def restart(self, handle: NodeHandle) -> NodeHandle: ...

    def remove(self, handle: NodeHandle) -> None:
        """Forget a stopped node for good (a container is deleted; its data directory stays)."""
        ...

    def close(self) -> list[str]:
        """Release what the runtime itself created (networks...); returns a description."""
        ...
