"""The gRPC connection to LND shared by the per-service wrappers, and grpc-error mapping.

Every call carries the macaroon (hex) as ``macaroon`` metadata over a TLS
channel pinned to the node's certificate. Every ``grpc.aio.AioRpcError`` is
turned into ``LndError`` (``LndUnavailable`` when the node cannot be reached)
carrying LND's own message, so callers never see grpc types.
"""

from __future__ import annotations

import os

# LND's default TLS certificate is ECDSA; grpc's default cipher list does not
# include it. Must be set before the first channel is created.
os.environ.setdefault("GRPC_SSL_CIPHER_SUITES", "HIGH+ECDSA")

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import grpc
import grpc.aio

from lncore import stubs as stubs_mod
from lncore.errors import LndError, LndUnavailable

MAX_MESSAGE = 200 * 1024 * 1024  # describe_graph on mainnet is tens of MB
UNAVAILABLE_CODES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class RpcStatus(Protocol):
    """What a failed gRPC call says, sync (``grpc.RpcError``) or asyncio (``AioRpcError``) alike."""

    def code(self) -> grpc.StatusCode | None: ...
    def details(self) -> str | None: ...


def grpc_status(exc: RpcStatus) -> tuple[str, str, bool]:
    """(status name, LND's message, whether the node could not be reached) of a failed call: the
    one mapping of gRPC errors, for the LSP's client (``to_lnd_error``) and the lab's."""
    code = exc.code()
    name = code.name if code is not None else "UNKNOWN"
    return name, exc.details() or name, code in UNAVAILABLE_CODES


def to_lnd_error(exc: RpcStatus, rpc: str) -> LndError:
    name, message, unreachable = grpc_status(exc)
    cls = LndUnavailable if unreachable else LndError
    return cls(message, grpc_code=name, rpc=rpc)


def read_macaroon_hex(path: Path) -> str:
    try:
        return Path(path).read_bytes().hex()
    except OSError as exc:
        raise LndUnavailable(f"cannot read LND macaroon {path}: {exc.strerror}", grpc_code="CONFIG") from None


def read_tls_cert(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LndUnavailable(f"cannot read LND TLS certificate {path}: {exc.strerror}", grpc_code="CONFIG") from None


class RpcBase:
    """Owns the channel and the stubs; the service mixins call through ``_unary`` and ``_stream``."""

    def __init__(self, host: str, tls_cert: bytes, macaroon_hex: str, *, timeout_s: float = 30.0):
        self.host = host
        self.timeout_s = timeout_s
        self.pb = stubs_mod.load()
        self._metadata = (("macaroon", macaroon_hex),)
        creds = grpc.ssl_channel_credentials(root_certificates=tls_cert)
        self._channel = grpc.aio.secure_channel(
            host,
            creds,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )
        self.lightning_stub = self.pb.lnrpc.LightningStub(self._channel)
        self.router_stub = self.pb.router_grpc.RouterStub(self._channel)
        self.invoices_stub = self.pb.invoices_grpc.InvoicesStub(self._channel)
        self.walletkit_stub = self.pb.walletkit_grpc.WalletKitStub(self._channel)
        self.state_stub = self.pb.state_grpc.StateStub(self._channel)
        self.wtclient_stub = self.pb.wtclient_grpc.WatchtowerClientStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def _unary(
        self, method: Callable[..., Awaitable[Any]], request: Any, *, rpc: str, timeout: float | None = None
    ) -> Any:
        try:
            return await method(request, metadata=self._metadata, timeout=timeout or self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise to_lnd_error(exc, rpc) from None

    async def _stream(
        self, method: Callable[..., Any], request: Any, *, rpc: str, timeout: float | None = None
    ) -> AsyncIterator[Any]:
        """Iterate a server stream; ``timeout`` None means the stream may live forever (subscriptions)."""
        call = method(request, metadata=self._metadata, timeout=timeout)
        try:
            async for msg in call:
                yield msg
        except grpc.aio.AioRpcError as exc:
            raise to_lnd_error(exc, rpc) from None
        finally:
            call.cancel()


class BidiStream:
    """One bidirectional gRPC call (HtlcInterceptor): ``await write(msg)``, ``async for msg in stream``;
    grpc errors arrive as ``LndError``."""

    def __init__(self, call: Any, rpc: str):
        self.call = call
        self.rpc = rpc

    async def write(self, msg: Any) -> None:
        try:
            await self.call.write(msg)
        except grpc.aio.AioRpcError as exc:
            raise to_lnd_error(exc, self.rpc) from None

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for msg in self.call:
                yield msg
        except grpc.aio.AioRpcError as exc:
            raise to_lnd_error(exc, self.rpc) from None

    def cancel(self) -> None:
        self.call.cancel()
