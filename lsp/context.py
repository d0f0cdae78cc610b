"""Everything a request handler or background task needs, built once per app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from lsp.config import Settings
from lsp.security.auth import Authenticator
from lsp.security.crypto import SecretBox
from lsp.security.ratelimit import RateLimiter

if TYPE_CHECKING:
    from lsp.lnd.client import LndClient
    from lsp.metrics import Metrics
    from lsp.services.events import EventBus


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
    extras: dict[str, Any] = field(default_factory=dict)
