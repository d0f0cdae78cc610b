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

from lncore.lnd.base import read_macaroon_hex, read_tls_cert
from lncore.lnd.invoices import InvoicesMixin
from lncore.lnd.lightning import LightningMixin
from lncore.lnd.router import RouterMixin
from lncore.lnd.routing_rpc import RoutingRpcMixin
from lncore.lnd.wtclient import WtClientMixin


class LndClient(LightningMixin, InvoicesMixin, RouterMixin, RoutingRpcMixin, WtClientMixin):
    @classmethod
    def from_paths(cls, host: str, tls_cert_path: Path, macaroon_path: Path, *, timeout_s: float = 30.0) -> LndClient:
        return cls(host, read_tls_cert(tls_cert_path), read_macaroon_hex(macaroon_path), timeout_s=timeout_s)

    async def __aenter__(self) -> LndClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
