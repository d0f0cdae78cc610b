"""Everything a request handler or background task needs, built once per app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from lsp.config import Settings
from lsp.security.auth import Authenticator
from lsp.security.crypto import SecretBox
from lsp.security.ratelimit import RateLimiter

if TYPE_CHECKING:
    from lncore.lnd.client import LndClient
    from lsp.compliance.monitoring import EventWorker
    from lsp.dashboard.live import Broadcaster
    from lsp.hosting.service import HostedNodes
    from lsp.metrics import Metrics
    from lsp.routing.executor import McfExecutor
    from lsp.services.events import EventBus
    from lsp.swaps.service import SwapService


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    box: SecretBox
    auth: Authenticator
    limiter: RateLimiter
    bus: EventBus
    metrics: Metrics
    lnd: LndClient | None = None
    # Components made at start-up or on first use, each named and typed (no string-keyed bag).
    compliance_worker: EventWorker | None = None  # monitoring + audit on the event bus
    dashboard_live: Broadcaster | None = None  # the operator dashboard's live stream
    swaps: SwapService | None = None
    swaps_task: asyncio.Task[None] | None = None  # the swap loop, while it runs
    routing_executor: McfExecutor | None = None  # the MCF router over the live graph, built on first use
    routing_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # LSP_WATCHTOWERS: per tower, None or why LND would not register it (lsp/services/security.py)
    tower_errors: dict[str, str | None] = field(default_factory=dict)
    hosting: HostedNodes | None = None  # LSP_HOSTING_ENABLED: hosted nodes (lsp/hosting)
