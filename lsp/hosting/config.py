"""``LSP_HOSTING_*``: hosted Lightning nodes, one dedicated LND per client (docs/HOSTING.md).

Everything a hosted node needs from its surroundings is here: the orchestrator that runs it,
the LND image, how the node reaches the chain (a Bitcoin Core node's RPC and ZMQ, as seen from
inside the node's container or pod), how the LSP's own LND reaches the node's p2p port, its
resource limits, and the fee schedule (the seed's hosting ``monthlyFee`` and ``transactionFee``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lncore.versions import LND_VERSION

# The lab's FROM-scratch LND image (harness/runtime/images.py builds it from the pinned LND).
DEFAULT_IMAGE = f"lightning-lab/lnd:{LND_VERSION}-lab"
_INSTANCE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_ZMQ_RE = re.compile(r"^tcp://[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")


class HostingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LSP_HOSTING_", env_file=".env", extra="ignore")

    enabled: bool = Field(default=False, description="offer hosted nodes (POST /api/nodes)")
    orchestrator: Literal["docker", "kubernetes"] = Field(default="docker", description="what runs the nodes")
    instance: str = Field(
        default="lsp",
        description="this LSP's name on the orchestrator: its nodes carry it, and only its nodes are reconciled",
    )
    image: str = Field(default=DEFAULT_IMAGE, description="the LND image every hosted node runs")

    # --- Docker
    docker_network: str = Field(
        default="host",
        description="'host' (the node shares the host's network, ports picked by the LSP) or a Docker network's name",
    )
    publish_host: str = Field(default="127.0.0.1", description="the host IP the node's gRPC, REST and p2p ports bind")
    public_host: str = Field(default="", description="the host name or IP clients reach nodes at (default publish_host)")
    peer_host: str = Field(
        default="",
        description="how the LSP's LND reaches a node's p2p port: empty for the node's name on docker_network "
        "(or publish_host with 'host'), else this host and the published port",
    )
    memory_mb: int = Field(default=512, ge=128, le=65_536, description="memory limit per node")
    cpus: float = Field(default=1.0, gt=0, le=64, description="CPU limit per node")

    # --- Kubernetes (lsp/hosting/k8s.py renders the manifests; not run in this repository's CI)
    k8s_namespace: str = Field(default="lsp-hosted", description="namespace of the StatefulSets")
    k8s_storage_class: str = Field(default="", description="storage class of each node's volume claim (default: the cluster's)")
    k8s_storage_gb: int = Field(default=10, ge=1, le=10_000)

    # --- the chain backend, as the node sees it
    # LND's --bitcoin.<network>: always the LSP's own LSP_NETWORK (lsp.config.Settings sets it;
    # private, so no LSP_HOSTING_NETWORK variable can disagree with it).
    _network: str = PrivateAttr(default="regtest")
    bitcoind_rpc_host: str = Field(default="127.0.0.1:18443", description="host:port of Bitcoin Core's RPC")
    bitcoind_rpc_user: str = "lab"
    bitcoind_rpc_pass: SecretStr = SecretStr("lab")
    bitcoind_zmq_block: str = Field(default="tcp://127.0.0.1:28332", description="Bitcoin Core's -zmqpubrawblock")
    bitcoind_zmq_tx: str = Field(default="tcp://127.0.0.1:28333", description="Bitcoin Core's -zmqpubrawtx")

    # --- limits and money
    max_channels: int = Field(default=5, ge=1, le=50, description="initial channels one request may ask for")
    start_timeout_s: float = Field(default=180.0, ge=10, description="seconds a node may take from create to running")
    monthly_fee: int = Field(default=50_000, ge=0, description="sats per node per billing period, debited in advance")
    transaction_fee: int = Field(default=100, ge=0, description="sats per payment the node sends or receives")
    billing_period_s: int = Field(default=30 * 86_400, ge=5, description="seconds one monthly fee covers")
    monitor_interval_s: float = Field(default=10.0, ge=0.5, le=3600, description="seconds between health checks")

    @field_validator("instance")
    @classmethod
    def _instance(cls, value: str) -> str:
        if not _INSTANCE_RE.match(value):
            raise ValueError("must be 1-32 lowercase letters, digits or '-', not starting or ending with '-'")
        return value

    @field_validator("publish_host")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value

    @field_validator("bitcoind_zmq_block", "bitcoind_zmq_tx")
    @classmethod
    def _zmq(cls, value: str) -> str:
        if not _ZMQ_RE.match(value):
            raise ValueError(f"{value!r} is not tcp://HOST:PORT")
        return value

    @model_validator(mode="after")
    def _public_host(self) -> HostingSettings:
        if self.enabled and self.orchestrator == "kubernetes" and not self.public_host:
            raise ValueError(
                "LSP_HOSTING_PUBLIC_HOST is required with the kubernetes orchestrator: the host name clients reach the nodes at "
                "(the operator exposes each node's ports there)"
            )
        if not self.public_host:
            self.public_host = self.publish_host
        return self

    @property
    def network(self) -> str:
        return self._network

    def on_network(self, network: str) -> None:
        self._network = network
