"""The lab's side of the LSP's hosted nodes (lsp/hosting): reach one the way its owner does, and
clear away an LSP instance's containers.

Hosted nodes outlive the LSP by design (they are the clients', not the LSP process's), so whoever
starts an LSP with ``harness.lsp_process.hosting_env`` in a lab removes its instance's containers
and volumes afterwards (``remove_instance``): in the Docker runtime a container left on the lab's
network keeps that network from being removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from harness.rpc.base import open_channel
from harness.rpc.lightning import LightningRpc
from harness.rpc.router import RouterRpc
from harness.runtime.docker_client import client as docker_client

# The labels the LSP's Docker orchestrator puts on its containers and volumes (lsp/hosting/
# docker_orch.py): the lab reaches the LSP only through its public client and the daemon.
LABEL_INSTANCE = "lsp.hosting.instance"
LABEL_NODE = "lsp.hosting.node"


@dataclass
class HostedRpc:
    """The lab's own gRPC clients on a hosted node, holding only what the API handed back."""

    ln: LightningRpc
    router: RouterRpc
    channel: grpc.Channel

    def close(self) -> None:
        self.channel.close()


def dial(node: dict[str, Any], workdir: Path) -> HostedRpc:
    """Dial ``node`` (a ``GET /api/nodes/{id}`` view) with its returned endpoint, macaroon and
    certificate only; the two files are written under ``workdir``."""
    where = workdir / node["nodeId"]
    where.mkdir(parents=True, exist_ok=True)
    cert, mac = where / "tls.cert", where / "client.macaroon"
    cert.write_text(node["tlsCert"])
    mac.write_bytes(bytes.fromhex(node["macaroon"]))
    cert.chmod(0o600)
    mac.chmod(0o600)
    host, port = node["endpoint"]["grpc"].rsplit(":", 1)
    channel = open_channel(host.strip("[]"), int(port), cert, mac)
    return HostedRpc(LightningRpc(node["nodeId"], channel), RouterRpc(node["nodeId"], channel), channel)


def leftovers(instance: str, node_id: str | None = None) -> list[str]:
    """Containers and volumes of the LSP ``instance`` (of one of its nodes, with ``node_id``) still on the daemon."""
    labels = [f"{LABEL_INSTANCE}={instance}", *([f"{LABEL_NODE}={node_id}"] if node_id else [])]
    daemon = docker_client()
    try:
        flt = {"label": labels}
        return [str(c.name) for c in daemon.containers.list(all=True, filters=flt)] + [
            str(v.name) for v in daemon.volumes.list(filters=flt)
        ]
    finally:
        daemon.close()


def remove_instance(instance: str, logs_dir: Path | None) -> list[str]:
    """Remove every container and volume of the LSP ``instance``, each container's log written to
    ``logs_dir/<container>.log`` first (when given). Returns the names removed."""
    daemon = docker_client()
    removed: list[str] = []
    try:
        flt = {"label": f"{LABEL_INSTANCE}={instance}"}
        for c in daemon.containers.list(all=True, filters=flt):
            if logs_dir is not None:
                logs_dir.mkdir(parents=True, exist_ok=True)
                try:
                    (logs_dir / f"{c.name}.log").write_bytes(c.logs(timestamps=True))
                except Exception as exc:  # the log is a courtesy; the removal is what matters
                    (logs_dir / f"{c.name}.log").write_text(f"could not read the container's log: {exc}\n")
            c.remove(force=True)
            removed.append(str(c.name))
        for v in daemon.volumes.list(filters=flt):
            v.remove(force=True)
            removed.append(str(v.name))
    finally:
        daemon.close()
    return removed
