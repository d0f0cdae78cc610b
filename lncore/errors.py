"""Errors raised on purpose, with a stable machine-readable ``code``; LND's own errors among them.

The LSP's API maps each class to an HTTP status (``lsp.api.errors``); ``lsp.errors.LSPError``
is ``CodedError``, so an ``LndError`` from the client is an LSP error like any other.
"""

from __future__ import annotations


class CodedError(Exception):
    """Base of every error raised on purpose. ``code`` is stable and machine-readable."""

    code = "lsp_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class LndError(CodedError):
    """LND answered an RPC with an error. ``grpc_code`` is the gRPC status name; ``message`` is LND's text."""

    code = "lnd_error"

    def __init__(self, message: str, *, grpc_code: str = "UNKNOWN", rpc: str = ""):
        super().__init__(message)
        self.grpc_code = grpc_code
        self.rpc = rpc

    def __str__(self) -> str:
        where = f"{self.rpc}: " if self.rpc else ""
        return f"{where}{self.message} ({self.grpc_code})"


class LndUnavailable(LndError):
    """The LSP has no working connection to its LND node (not configured, down, or unreachable)."""

    code = "lnd_unavailable"

    def __init__(self, message: str, *, grpc_code: str = "UNAVAILABLE", rpc: str = ""):
        super().__init__(message, grpc_code=grpc_code, rpc=rpc)
