"""The LSP's exception hierarchy, in one place.

Services raise these; ``lsp.api.errors`` maps each class to an HTTP status and
the one error shape ``{"error": {"code", "message", "field"?}}``. Nothing
below the API layer knows about HTTP.
"""

from __future__ import annotations

# The base class and LND's errors live in lncore (the LND client raises them); this is the
# same hierarchy: LndError is an LSPError.
from lncore.errors import CodedError as LSPError
from lncore.errors import LndError, LndUnavailable

__all__ = [
    "AuthError", "ConfigError", "Conflict", "Forbidden", "InsufficientFunds", "LSPError", "LndError",
    "LndUnavailable", "NotFound", "NotImplementedYet", "RateLimited", "ServiceUnavailable", "ValidationFailed",
]


class ConfigError(LSPError):
    """The settings are invalid or unsafe; raised at start-up, never during a request."""

    code = "config_error"


class ValidationFailed(LSPError):
    """A request is well-formed but its values break a rule (channel too small, ...)."""

    code = "validation_error"


class AuthError(LSPError):
    """The request is not (correctly) signed. ``code`` says which check failed."""

    code = "unauthorized"


class Forbidden(LSPError):
    """Authenticated, but not allowed (e.g. a feature the client does not have)."""

    code = "forbidden"


class NotFound(LSPError):
    """No such resource -- or one that belongs to another client (never revealed)."""

    code = "not_found"


class Conflict(LSPError):
    """The request conflicts with the current state (idempotency key reused with other params, ...)."""

    code = "conflict"


class RateLimited(LSPError):
    """The client sent more requests than its plan allows."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class InsufficientFunds(LSPError):
    """The client's balance, or the LSP's liquidity, cannot cover the request."""

    code = "insufficient_funds"


class InsufficientLiquidity(InsufficientFunds):
    """The LSP's outbound liquidity (or what is left of a reservation) cannot carry the payment."""

    code = "insufficient_liquidity"


class ServiceUnavailable(LSPError):
    """Something the request needs other than LND is down (the hosted nodes' orchestrator, ...)."""

    code = "service_unavailable"


class NotImplementedYet(LSPError):
    """A documented endpoint whose behaviour is not built yet (answered 501, never faked)."""

    code = "not_implemented"
