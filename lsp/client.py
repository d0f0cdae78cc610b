"""A small Python client for the LSP API that signs every request.

    from lsp.client import LSPClient
    with LSPClient("http://127.0.0.1:3005", api_key, api_secret) as lsp:
        lsp.balance()
        lsp.create_invoice(10_000, "coffee")

``AsyncLSPClient`` is the same over ``httpx.AsyncClient``. Both accept an
``http=`` client of your own (e.g. FastAPI's TestClient, or one with an ASGI
transport); signing is an ``httpx.Auth`` so it works with any of them.
Non-2xx answers raise ``LSPAPIError`` carrying the API's error body.
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Generator
from typing import Any

import httpx

from lsp.security import signing

WS_PATH = "/ws/lightning"


def websocket_url(base_url: str, api_key: str, api_secret: str) -> str:
    """The signed URL of the client's event WebSocket (``ws://`` or ``wss://`` after ``base_url``'s
    scheme): a browser cannot set headers on a WebSocket, so the signature travels in the query."""
    h = signing.signed_headers(api_key, api_secret, "GET", WS_PATH, b"")
    query = urllib.parse.urlencode(
        {
            "apiKey": h[signing.HEADER_KEY],
            "timestamp": h[signing.HEADER_TIMESTAMP],
            "nonce": h[signing.HEADER_NONCE],
            "signature": h[signing.HEADER_SIGNATURE],
        }
    )
    return base_url.replace("http", "ws", 1) + f"{WS_PATH}?{query}"


class LSPAPIError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: httpx.Headers | None = None
    ):
        super().__init__(f"{status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or httpx.Headers()


class HMACAuth(httpx.Auth):
    """Adds X-API-Key, X-Timestamp, X-Nonce and X-Signature to each request."""

    requires_request_body = True

    def __init__(self, api_key: str, api_secret: str):
        self.api_key = api_key
        self.api_secret = api_secret

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path = request.url.raw_path.decode("ascii")  # includes "?query"
        request.headers.update(
            signing.signed_headers(self.api_key, self.api_secret, request.method, path, request.content)
        )
        yield request


def _raise_for(resp: httpx.Response) -> Any:
    if resp.is_success:
        return resp.json() if resp.content else None
    try:
        err = resp.json()["error"]
        raise LSPAPIError(resp.status_code, err["code"], err["message"], err.get("field"), resp.headers)
    except (ValueError, KeyError, TypeError):
        raise LSPAPIError(resp.status_code, "http_error", resp.text[:500], headers=resp.headers) from None


def _payment_body(
    invoice: str, max_fee_sat: int | None, timeout_s: int | None, reservation_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"invoice": invoice}
    if max_fee_sat is not None:
        body["maxFee"] = max_fee_sat
    if timeout_s is not None:
        body["timeoutSeconds"] = timeout_s
    if reservation_id is not None:
        body["reservationId"] = reservation_id
    return body


class LSPClient:
    def __init__(
        self, base_url: str, api_key: str, api_secret: str, *, http: httpx.Client | None = None, timeout: float = 90.0
    ):
        self._own = http is None
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.auth = HMACAuth(api_key, api_secret)

    def __enter__(self) -> LSPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        resp = self.http.request(method, path, json=json, params=params, headers=headers, auth=self.auth)
        return _raise_for(resp)

    # --- the seed's endpoints
    def me(self) -> Any:
        return self.request("GET", "/api/enterprise/me")

    def balance(self) -> Any:
        return self.request("GET", "/api/balance")

    # --- hosted nodes (docs/HOSTING.md)
    def create_node(self, config: dict[str, Any]) -> Any:
        """POST /api/nodes with a HostedNodeConfig; 202 with the node in state provisioning."""
        return self.request("POST", "/api/nodes", json=config)

    def list_nodes(self) -> Any:
        return self.request("GET", "/api/nodes")

    def get_node(self, node_id: str) -> Any:
        return self.request("GET", f"/api/nodes/{node_id}")

    def node_metrics(self, node_id: str) -> Any:
        return self.request("GET", f"/api/nodes/{node_id}/metrics")

    def stop_node(self, node_id: str) -> Any:
        return self.request("POST", f"/api/nodes/{node_id}/stop")

    def start_node(self, node_id: str) -> Any:
        return self.request("POST", f"/api/nodes/{node_id}/start")

    def delete_node(self, node_id: str, *, sweep_address: str | None = None, sweep_sat_per_vbyte: int | None = None) -> Any:
        params: dict[str, Any] = {}
        if sweep_address is not None:
            params["sweepAddress"] = sweep_address
        if sweep_sat_per_vbyte is not None:
            params["sweepSatPerVbyte"] = sweep_sat_per_vbyte
        return self.request("DELETE", f"/api/nodes/{node_id}", params=params or None)

    def open_channel(
        self,
        client_pubkey: str,
        channel_size: int,
        *,
        push_amount: int = 0,
        private: bool = False,
        host: str | None = None,
        fee_rate: int | None = None,
    ) -> Any:
        body: dict[str, Any] = {
            "clientPubkey": client_pubkey,
            "channelSize": channel_size,
            "pushAmount": push_amount,
            "isPrivate": private,
        }
        if host is not None:
            body["host"] = host
        if fee_rate is not None:
            body["feeRate"] = fee_rate
        return self.request("POST", "/api/channels/open", json=body)

    def list_channels(self, *, status: str | None = None) -> Any:
        return self.request("GET", "/api/channels", params={"status": status} if status else None)

    def get_channel(self, channel_id: str) -> Any:
        return self.request("GET", f"/api/channels/{channel_id}")

    def close_channel(self, channel_id: str, *, force: bool = False) -> Any:
        return self.request("POST", f"/api/channels/{channel_id}/close", json={"force": force})

    def channel_balance(self) -> Any:
        return self.request("GET", "/api/channels/balance")

    def create_invoice(self, amount: int, description: str = "", *, expiry: int = 3600) -> Any:
        return self.request(
            "POST", "/api/invoices/create", json={"amount": amount, "description": description, "expiry": expiry}
        )

    def get_invoice(self, invoice_id: str) -> Any:
        return self.request("GET", f"/api/invoices/{invoice_id}")

    def send_payment(
        self,
        invoice: str,
        *,
        max_fee_sat: int | None = None,
        timeout_s: int | None = None,
        idempotency_key: str | None = None,
        reservation_id: str | None = None,
    ) -> Any:
        key = idempotency_key or uuid.uuid4().hex
        return self.request(
            "POST",
            "/api/payments/send",
            json=_payment_body(invoice, max_fee_sat, timeout_s, reservation_id),
            headers={"Idempotency-Key": key},
        )

    def get_payment(self, payment_hash: str) -> Any:
        return self.request("GET", f"/api/payments/{payment_hash}")

    def liquidity_rates(self) -> Any:
        return self.request("GET", "/api/liquidity/rates")

    def request_liquidity(self, amount: int, duration_ms: int, max_fee_rate_ppm: int) -> Any:
        return self.request(
            "POST",
            "/api/liquidity/request",
            json={"amount": amount, "duration": duration_ms, "maxFeeRate": max_fee_rate_ppm},
        )

    def get_reservation(self, reservation_id: str) -> Any:
        return self.request("GET", f"/api/liquidity/reservations/{reservation_id}")

    def dashboard(self) -> Any:
        return self.request("GET", "/api/enterprise/dashboard")

    def buy_jit(
        self,
        client_pubkey: str,
        *,
        host: str | None = None,
        payment_size_msat: int | None = None,
        token: str | None = None,
    ) -> Any:
        body: dict[str, Any] = {"clientPubkey": client_pubkey}
        for key, value in (("host", host), ("paymentSizeMsat", payment_size_msat), ("token", token)):
            if value is not None:
                body[key] = value
        return self.request("POST", "/api/liquidity/jit", json=body)

    def liquidity_providers(self) -> Any:
        return self.request("GET", "/api/liquidity/providers")

    def set_webhook(self, url: str, events: list[str] | None = None) -> Any:
        return self.request("POST", "/api/enterprise/webhook", json={"url": url, "events": events or ["*"]})


class AsyncLSPClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 90.0,
    ):
        self._own = http is None
        self.http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.auth = HMACAuth(api_key, api_secret)

    async def __aenter__(self) -> AsyncLSPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        resp = await self.http.request(method, path, json=json, params=params, headers=headers, auth=self.auth)
        return _raise_for(resp)

    async def balance(self) -> Any:
        return await self.request("GET", "/api/balance")

    async def create_invoice(self, amount: int, description: str = "", *, expiry: int = 3600) -> Any:
        return await self.request(
            "POST", "/api/invoices/create", json={"amount": amount, "description": description, "expiry": expiry}
        )

    async def send_payment(
        self,
        invoice: str,
        *,
        max_fee_sat: int | None = None,
        timeout_s: int | None = None,
        idempotency_key: str | None = None,
        reservation_id: str | None = None,
    ) -> Any:
        key = idempotency_key or uuid.uuid4().hex
        return await self.request(
            "POST",
            "/api/payments/send",
            json=_payment_body(invoice, max_fee_sat, timeout_s, reservation_id),
            headers={"Idempotency-Key": key},
        )

    async def get_payment(self, payment_hash: str) -> Any:
        return await self.request("GET", f"/api/payments/{payment_hash}")

    async def liquidity_rates(self) -> Any:
        return await self.request("GET", "/api/liquidity/rates")
