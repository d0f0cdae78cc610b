"""The async LND client the LSP runs on: one gRPC channel, every service the LSP needs.

    lnd = LndClient.from_paths("localhost:10009", tls_cert_path, macaroon_path)
    info = await lnd.get_info()
    await lnd.close()

Methods are grouped by LND service in ``lightning.py``, ``invoices.py`` and
``router.py``; all of them raise ``lsp.errors.LndError`` (or its subclass
``LndUnavailable``) with LND's own message, never a grpc exception.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lsp.lnd.base import read_macaroon_hex, read_tls_cert
from lsp.lnd.invoices import InvoicesMixin
from lsp.lnd.lightning import LightningMixin
from lsp.lnd.router import RouterMixin
from lsp.lnd.routing_rpc import RoutingRpcMixin

if TYPE_CHECKING:
    from lsp.config import Settings


class LndClient(LightningMixin, InvoicesMixin, RouterMixin, RoutingRpcMixin):
    @classmethod
    def from_paths(cls, host: str, tls_cert_path: Path, macaroon_path: Path, *, timeout_s: float = 30.0) -> LndClient:
        return cls(host, read_tls_cert(tls_cert_path), read_macaroon_hex(macaroon_path), timeout_s=timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> LndClient:
        if settings.lnd_tls_cert_path is None or settings.lnd_macaroon_path is None:
            from lsp.errors import LndUnavailable

            raise LndUnavailable("LSP_LND_TLS_CERT_PATH and LSP_LND_MACAROON_PATH must both be set", grpc_code="CONFIG")
        return cls.from_paths(settings.lnd_host, settings.lnd_tls_cert_path, settings.lnd_macaroon_path)

    async def __aenter__(self) -> LndClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
