"""gRPC plumbing shared by the per-service wrappers: TLS + macaroon channel,
error translation, and LND's byte-order conventions."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc

from harness.errors import NodeError
from lncore.errors import LndError
from lncore.lnd.base import RpcStatus, grpc_status
from lncore.stubs import Stubs, load

# LND's TLS certificate is ECDSA; gRPC's default cipher list lacks it.
os.environ.setdefault("GRPC_SSL_CIPHER_SUITES", "HIGH+ECDSA")

MAX_MESSAGE = 200 * 1024 * 1024
T = TypeVar("T")


class RpcFailed(LndError, NodeError):
    """An LND RPC answered with an error status: an ``LndError`` as the LSP's client raises (the
    same mapping, ``lncore.lnd.base.grpc_status``), and a ``NodeError`` of the lab naming the node."""

    def __init__(self, node: str, method: str, exc: RpcStatus):
        name, message, self.unreachable = grpc_status(exc)
        LndError.__init__(self, message, grpc_code=name, rpc=method)
        self.node = node

    def __str__(self) -> str:
        return f"{self.node}: {self.rpc} failed: {self.message} ({self.grpc_code})"


def open_channel(host: str, port: int, tls_cert: Path, macaroon_path: Path) -> grpc.Channel:
    """A secure channel to an LND node; the macaroon is read at call time
    because LND writes it only once its wallet exists."""

    def plugin(_context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            mac = macaroon_path.read_bytes().hex()
        except OSError:
            callback((), None)
            return
        callback((("macaroon", mac),), None)

    creds = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(tls_cert.read_bytes()),
        grpc.metadata_call_credentials(plugin),
    )
    return grpc.secure_channel(
        f"{host}:{port}",
        creds,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.ssl_target_name_override", "localhost"),
        ],
    )


class Service:
    """Base of a per-service wrapper: ``self._call("Method", request)``."""

    stub_factory: Callable[[Stubs], Callable[[grpc.Channel], Any]]

    def __init__(self, node_name: str, channel: grpc.Channel, timeout_s: float = 30.0):
        self.node_name = node_name
        self.s = load()
        self.stub = type(self).stub_factory(self.s)(channel)
        self.timeout_s = timeout_s

    def _call(self, method: str, request: Any, *, timeout: float | None = None) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=timeout or self.timeout_s)
        except grpc.RpcError as exc:
            raise RpcFailed(self.node_name, method, exc) from None

    def _stream(self, method: str, request: Any, *, timeout: float | None = None) -> Stream[Any]:
        """A server-streaming call; iterate the result. Errors surface as RpcFailed."""
        try:
            it = getattr(self.stub, method)(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise RpcFailed(self.node_name, method, exc) from None
        return Stream(self.node_name, method, it)


class Stream(Generic[T]):
    """A server stream of LND messages of type ``T``; its errors surface as RpcFailed."""

    def __init__(self, node: str, method: str, it: Any):
        self.node, self.method, self.it = node, method, it

    def __iter__(self) -> Stream[T]:
        return self

    def __next__(self) -> T:
        try:
            message: T = next(self.it)
            return message
        except grpc.RpcError as exc:
            raise RpcFailed(self.node, self.method, exc) from None

    def cancel(self) -> None:
        self.it.cancel()


def txid_from_bytes(b: bytes) -> str:
    """LND's ``funding_txid_bytes`` are in internal (reversed) byte order."""
    return b[::-1].hex()


def chan_point_str(cp: Any) -> str:
    if cp.HasField("funding_txid_str") and cp.funding_txid_str:
        return f"{cp.funding_txid_str}:{cp.output_index}"
    return f"{txid_from_bytes(cp.funding_txid_bytes)}:{cp.output_index}"
