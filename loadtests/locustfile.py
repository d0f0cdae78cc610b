"""Locust users for the LSP API (``lab load`` runs this; see docs/SCENARIOS.md).

Every API request is signed by ``lsp.client.LSPClient`` (HMAC headers), so
the load exercises authentication, nonce bookkeeping and rate limiting like
real clients do. Locust does not know httpx, so each call is timed here and
reported through ``environment.events.request``.

Configuration (environment variables set by ``lab load``):

- ``LOAD_CLIENTS``: a JSON file, a list of ``{"client_id", "api_key", "api_secret"}``
  of onboarded clients with a funded balance; users take them round-robin.
- ``LOAD_PAYEE_REST``, ``LOAD_PAYEE_MACAROON_HEX``, ``LOAD_PAYEE_CERT``: an LND
  node outside the LSP (a merchant) whose invoices the clients pay.

Users and weights (what share of the simulated users each class gets):

- ``ApiClient`` (weight 9): a business integration polling and transacting.
  Its tasks, by weight: read balance 5, look up an invoice it created 3,
  create an invoice 3, look up a payment 2, pay a merchant invoice 2, read its
  profile 1, read the liquidity rate card 1. Reads dominate, as in production
  dashboards; payments are the expensive, rarer calls.
- ``EventListener`` (weight 1): a client's WebSocket on ``/ws/lightning``,
  held open and counting events (one listener per ten API users).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
from locust import User, between, events, task
from locust.env import Environment

from lsp.client import LSPAPIError, LSPClient, websocket_url

_CLIENTS: list[dict[str, str]] = []
_next_client = itertools.count()


@events.init.add_listener
def _load_clients(environment: Environment, **_kw: Any) -> None:
    path = os.environ.get("LOAD_CLIENTS")
    if path:
        with open(path) as fh:
            _CLIENTS.extend(json.load(fh))


def _pick_client() -> dict[str, str]:
    if not _CLIENTS:
        raise RuntimeError("LOAD_CLIENTS names no clients (run through `lab load`)")
    return _CLIENTS[next(_next_client) % len(_CLIENTS)]


class _Timed:
    """Time a call and report it to Locust under ``name``; API errors count as failures."""

    def __init__(self, environment: Environment):
        self.env = environment

    def __call__(self, method: str, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        exc: Exception | None = None
        result: Any = None
        try:
            result = fn()
        except (LSPAPIError, httpx.HTTPError) as e:
            exc = e
        self.env.events.request.fire(
            request_type=method,
            name=name,
            response_time=(time.perf_counter() - t0) * 1000,
            response_length=len(json.dumps(result)) if result is not None else 0,
            exception=exc,
            context={},
        )
        return None if exc else result


class ApiClient(User):
    weight = 9
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        c = _pick_client()
        self.client_id = c["client_id"]
        self.api = LSPClient(self.host or "", c["api_key"], c["api_secret"], timeout=60)
        self.timed = _Timed(self.environment)
        self.invoice_ids: list[str] = []
        self.payment_hashes: list[str] = []
        self.payee: httpx.Client | None = None
        rest = os.environ.get("LOAD_PAYEE_REST")
        if rest:
            self.payee = httpx.Client(
                base_url=f"https://{rest}",
                verify=os.environ.get("LOAD_PAYEE_CERT", True),
                headers={"Grpc-Metadata-macaroon": os.environ.get("LOAD_PAYEE_MACAROON_HEX", "")},
                timeout=30,
            )

    def on_stop(self) -> None:
        self.api.close()
        if self.payee is not None:
            self.payee.close()

    @task(5)
    def balance(self) -> None:
        self.timed("GET", "/api/balance", self.api.balance)

    @task(3)
    def create_invoice(self) -> None:
        amount = random.randint(100, 50_000)
        inv = self.timed("POST", "/api/invoices/create", lambda: self.api.create_invoice(amount, "load test"))
        if inv:
            self.invoice_ids = [*self.invoice_ids[-19:], inv["invoiceId"]]

    @task(3)
    def invoice_status(self) -> None:
        if self.invoice_ids:
            iid = random.choice(self.invoice_ids)
            self.timed("GET", "/api/invoices/[id]", lambda: self.api.get_invoice(iid))

    @task(2)
    def payment_status(self) -> None:
        if self.payment_hashes:
            ph = random.choice(self.payment_hashes)
            self.timed("GET", "/api/payments/[hash]", lambda: self.api.get_payment(ph))

    @task(2)
    def pay_merchant(self) -> None:
        if self.payee is None:
            return
        amount = random.randint(10, 2_000)
        # The merchant's invoice is setup, not LSP load: not reported to Locust.
        r = self.payee.post("/v1/invoices", json={"value": str(amount), "memo": "load merchant"})
        r.raise_for_status()
        pr = r.json()["payment_request"]
        paid = self.timed("POST", "/api/payments/send", lambda: self.api.send_payment(pr, max_fee_sat=50, timeout_s=30))
        if paid:
            self.payment_hashes = [*self.payment_hashes[-19:], paid["paymentHash"]]

    @task(1)
    def me(self) -> None:
        self.timed("GET", "/api/enterprise/me", self.api.me)

    @task(1)
    def rates(self) -> None:
        self.timed("GET", "/api/liquidity/rates", self.api.liquidity_rates)


class EventListener(User):
    """Holds a signed WebSocket open and counts the events it receives."""

    weight = 1
    wait_time = between(0, 0.1)

    def on_start(self) -> None:
        import websocket  # websocket-client, installed with locust

        c = _pick_client()
        url = websocket_url(self.host or "", c["api_key"], c["api_secret"])
        t0 = time.perf_counter()
        exc: Exception | None = None
        self.ws: Any = None
        try:
            self.ws = websocket.create_connection(url, timeout=10)
            hello = json.loads(self.ws.recv())
            if hello.get("type") != "hello":
                raise RuntimeError(f"expected a hello, got {hello}")
            self.ws.settimeout(2)
        except Exception as e:  # reported to Locust as a failed connect
            exc = e
        self.environment.events.request.fire(
            request_type="WS",
            name="connect /ws/lightning",
            response_time=(time.perf_counter() - t0) * 1000,
            response_length=0,
            exception=exc,
            context={},
        )

    @task
    def listen(self) -> None:
        if self.ws is None:
            time.sleep(1)
            return
        import websocket

        try:
            msg = self.ws.recv()
        except websocket.WebSocketTimeoutException:
            return
        self.environment.events.request.fire(
            request_type="WS", name="event", response_time=0, response_length=len(msg), exception=None, context={}
        )

    def on_stop(self) -> None:
        if self.ws is not None:
            self.ws.close()
