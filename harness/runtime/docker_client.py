"""Finding and talking to a Docker daemon.

The daemon is the one ``DOCKER_HOST`` names; without it, the system socket
(``/var/run/docker.sock``) when present, else the private daemon that
``scripts/dockerd.sh`` starts (``$LAB_DOCKERD_DIR/docker.sock``, default
``/tmp/lab-docker``). Every Docker call in the lab goes through ``client()``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.errors import LabError

SYSTEM_SOCKET = Path("/var/run/docker.sock")
DEFAULT_PRIVATE_DIR = Path("/tmp/lab-docker")
# How long a single Docker API call may take before we give up (image
# builds pass their own, longer timeout).
API_TIMEOUT = 120


class DockerError(LabError):
    """No Docker daemon answers, or a Docker operation failed."""


def private_socket() -> Path:
    return Path(os.environ.get("LAB_DOCKERD_DIR") or DEFAULT_PRIVATE_DIR) / "docker.sock"


def docker_host() -> str:
    """The daemon address the lab uses (``DOCKER_HOST`` wins)."""
    env = os.environ.get("DOCKER_HOST")
    if env:
        return env
    if SYSTEM_SOCKET.exists():
        return f"unix://{SYSTEM_SOCKET}"
    return f"unix://{private_socket()}"


def client(timeout: float = API_TIMEOUT) -> Any:
    """A ``docker.DockerClient`` for ``docker_host()`` (not checked: see ``require_docker``)."""
    import docker

    return docker.DockerClient(base_url=docker_host(), timeout=int(max(timeout, 1)))


def docker_available(timeout: float = 3.0) -> bool:
    """True when a daemon answers a ping within ``timeout`` seconds."""
    try:
        c = client(timeout)
    except Exception:  # a bad DOCKER_HOST: not available
        return False
    try:
        return bool(c.ping())
    except Exception:
        return False
    finally:
        c.close()


def require_docker(timeout: float = 3.0) -> Any:
    """A client for a daemon that answers, or a ``DockerError`` saying how to start one."""
    if not docker_available(timeout):
        raise DockerError(
            f"no Docker daemon answers at {docker_host()}. Start one with "
            "`scripts/dockerd.sh start` and export the DOCKER_HOST it prints "
            "(or set DOCKER_HOST to a running daemon)."
        )
    return client()
