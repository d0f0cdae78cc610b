"""An LSPS0/LSPS2 client on top of a stock LND node, so JIT channels can be proven end to end.

    with LspsClient(lab.node("client"), lsp_pubkey) as c:
        menu = c.get_info()["opening_fee_params_menu"]
        # spec-faithful LSPS2: an invoice for a virtual payee behind the client node
        inv = c.jit_invoice(menu[0], amount_msat=50_000_000)
        # or the wrapped mode, which needs nothing from the client node
        lsp_invoice = c.wrapped_invoice(menu[0], amount_sat=50_000)

Why a virtual payee: a stock LND payee rejects a final HTLC smaller than its
onion amount, and LSPS2 forwards the payment minus the opening fee. So the
invoice is issued (with a key the harness holds) for a payee one hop *behind*
the client node: its route hint runs LSP --JIT SCID--> client --virtual SCID-->
payee. For the client node the HTLC is a forward, which its own
``HtlcInterceptor`` catches: it checks that every part's incoming amount plus
its ``extra_fee`` (TLV 65537) equals the onion amount and that the fees add up
to the agreed opening fee, then SETTLEs with the preimage it holds. The client
node's channel balance receives exactly amount - fee.

Limits: the preimage lives in this process (not in LND's invoice database),
so the client's LND shows no invoice for it; the virtual payee has no node
announcement; the client must run this interceptor whenever such a payment
may arrive.

The client node also runs a ``ChannelAcceptor`` answering ``zero_conf=true``
to the LSP (or rejecting every channel, to test that failure path).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from harness.blip52 import entry_fee_msat, scid_from_str
from harness.bolt11 import HopHint, encode_invoice, pubkey_of
from harness.errors import NodeError
from harness.node import LndNode
from harness.rpc.router import PaymentResult

LSPS0_TYPE = 37913
# Methods safe to send twice (they change nothing at the LSP): resent until answered.
READ_ONLY_METHODS = frozenset({"lsps0.list_protocols", "lsps1.get_info", "lsps1.get_order", "lsps2.get_info"})
RESEND_S = 3.0
EXTRA_FEE_TLV = 65537
VIRTUAL_CLTV_DELTA = 40


class LspsRpcError(NodeError):
    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"LSPS error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data


@dataclass
class JitInvoice:
    """A virtual-payee invoice and what the client node's interceptor saw for it."""

    payment_request: str
    payment_hash: str
    preimage: bytes
    amount_msat: int
    expected_fee_msat: int
    virtual_scid: int
    received_msat: int = 0  # sum of the incoming HTLC amounts the client node settled
    fees_msat: list[int] = field(default_factory=list)  # extra_fee of each settled part
    settled: threading.Event = field(default_factory=threading.Event)
    rejected: str | None = None


class _Outbox:
    """The request side of a bidi stream: a blocking iterator fed from other threads."""

    def __init__(self) -> None:
        self.q: queue.Queue[Any] = queue.Queue()

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self.q.get()
            if item is None:
                return
            yield item

    def put(self, item: Any) -> None:
        self.q.put(item)

    def close(self) -> None:
        self.q.put(None)


class LspsClient:
    def __init__(self, node: LndNode, lsp_pubkey: str, *, accept_channels: bool = True, intercept: bool = True):
        self.node = node
        self.lsp = lsp_pubkey
        self.accept_channels = accept_channels
        self.intercept = intercept
        self.s = node.ln.s
        self._responses: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._calls: list[Any] = []
        self._outboxes: list[_Outbox] = []
        self.invoices: dict[int, JitInvoice] = {}  # by virtual SCID
        self._parts: dict[str, dict[tuple[int, int], Any]] = {}
        self.accepted: list[bytes] = []  # pending_chan_ids answered
        # The caller, the message reader, the channel acceptor and (optionally) the interceptor.
        self._ready = threading.Barrier(3 + int(intercept))
        self._key = secrets.token_bytes(32)  # the virtual payee's node key
        self.virtual_pubkey = pubkey_of(self._key)
        self.last_buy: dict[str, Any] | None = None

    # -- lifecycle ------------------------------------------------------------
    def __enter__(self) -> LspsClient:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._spawn(self._read_messages)
        self._spawn(self._accept_channels)
        if self.intercept:
            self._spawn(self._intercept)
        self._ready.wait(timeout=30)

    def _spawn(self, fn: Any) -> None:
        t = threading.Thread(target=fn, name=f"lsps-client-{fn.__name__}", daemon=True)
        t.start()
        self._threads.append(t)

    def close(self) -> None:
        for box in self._outboxes:
            box.close()
        for call in self._calls:
            call.cancel()
        for t in self._threads:
            t.join(timeout=10)

    # -- LSPS0 transport ---------------------------------------------------------
    def _read_messages(self) -> None:
        call = self.node.ln.stub.SubscribeCustomMessages(self.s.ln.SubscribeCustomMessagesRequest())
        self._calls.append(call)
        self._ready.wait(timeout=30)
        try:
            for msg in call:
                if msg.type != LSPS0_TYPE or msg.peer.hex() != self.lsp:
                    continue
                try:
                    doc = json.loads(msg.data)
                except ValueError:
                    continue
                with self._cond:
                    self._responses[str(doc.get("id"))] = doc
                    self._cond.notify_all()
        except grpc.RpcError:
            return

    def raw_request(
        self, data: bytes, rid: str, *, timeout_s: float = 30, resend_s: float | None = None
    ) -> dict[str, Any]:
        """Send raw bytes as an LSPS0 message and wait for the response with id ``rid``.

        ``resend_s``: send the same bytes again every so often until the answer comes (only for
        read-only methods). LND hands a peer message to the subscribers registered at that instant
        and keeps nothing: one sent just after either side (re)subscribed is lost, silently."""
        req = self.s.ln.SendCustomMessageRequest(peer=bytes.fromhex(self.lsp), type=LSPS0_TYPE, data=data)
        self.node.ln.stub.SendCustomMessage(req, timeout=30)
        deadline = time.monotonic() + timeout_s
        next_send = time.monotonic() + resend_s if resend_s else float("inf")
        with self._cond:
            while rid not in self._responses:
                now = time.monotonic()
                if now >= deadline:
                    raise NodeError(f"no LSPS0 response with id {rid} from the LSP within {timeout_s} s")
                if now >= next_send and resend_s:
                    self.node.ln.stub.SendCustomMessage(req, timeout=30)
                    next_send = now + resend_s
                self._cond.wait(min(deadline, next_send) - now)
            return self._responses.pop(rid)

    def request(self, method: str, params: dict[str, Any] | None = None, *, timeout_s: float = 60) -> dict[str, Any]:
        rid = uuid.uuid4().hex
        body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
        resend = RESEND_S if method in READ_ONLY_METHODS else None
        doc = self.raw_request(json.dumps(body).encode(), rid, timeout_s=timeout_s, resend_s=resend)
        if "error" in doc:
            err = doc["error"]
            raise LspsRpcError(err["code"], err["message"], err.get("data"))
        result: dict[str, Any] = doc["result"]
        return result

    def list_protocols(self) -> list[int]:
        return list(self.request("lsps0.list_protocols")["protocols"])

    def get_info(self, token: str | None = None) -> dict[str, Any]:
        return self.request("lsps2.get_info", {"token": token} if token else {})

    def buy(self, params: dict[str, Any], payment_size_msat: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"opening_fee_params": params}
        if payment_size_msat is not None:
            body["payment_size_msat"] = str(payment_size_msat)
        return self.request("lsps2.buy", body)

    # -- zero-conf channels from the LSP -------------------------------------------
    def _accept_channels(self) -> None:
        box = _Outbox()
        self._outboxes.append(box)
        call = self.node.ln.stub.ChannelAcceptor(iter(box))
        self._calls.append(call)
        self._ready.wait(timeout=30)
        try:
            for req in call:
                ok = self.accept_channels and req.node_pubkey.hex() == self.lsp
                resp = self.s.ln.ChannelAcceptResponse(accept=ok, pending_chan_id=req.pending_chan_id)
                if ok and req.wants_zero_conf:
                    resp.zero_conf = True
                    resp.min_accept_depth = 0
                if not ok:
                    resp.error = "this client does not accept channels"
                box.put(resp)
                self.accepted.append(req.pending_chan_id)
        except grpc.RpcError:
            return

    # -- LSPS2 with a virtual payee --------------------------------------------------
    def jit_invoice(
        self,
        params: dict[str, Any],
        *,
        amount_msat: int,
        mpp: bool = True,
        bought: dict[str, Any] | None = None,
        payment_size_msat: int | None = None,
        description: str = "lab JIT payment",
    ) -> JitInvoice:
        """Buy a JIT channel for ``amount_msat`` (fixed-amount mode when ``mpp``; the bought size
        may differ with ``payment_size_msat``) and return an invoice whose route hint runs through
        the JIT SCID to the virtual payee. ``bought``: reuse an earlier ``lsps2.buy`` answer."""
        if bought is None:
            bought = self.buy(params, (payment_size_msat or amount_msat) if mpp else None)
        self.last_buy = bought
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).digest()
        virtual_scid = (1 << 40) | (int.from_bytes(os.urandom(3), "big") << 16)  # a scid no channel has
        hints = [
            HopHint(self.lsp, scid_from_str(bought["jit_channel_scid"]), 0, 0, int(bought["lsp_cltv_expiry_delta"])),
            HopHint(self.node.pubkey, virtual_scid, 0, 0, VIRTUAL_CLTV_DELTA),
        ]
        pr = encode_invoice(
            secret_key=self._key,
            payment_hash=payment_hash,
            payment_secret=secrets.token_bytes(32),
            amount_msat=amount_msat,
            description=description,
            route=hints,
        )
        inv = JitInvoice(
            payment_request=pr,
            payment_hash=payment_hash.hex(),
            preimage=preimage,
            amount_msat=amount_msat,
            expected_fee_msat=entry_fee_msat(params, amount_msat),
            virtual_scid=virtual_scid,
        )
        self.invoices[virtual_scid] = inv
        return inv

    def _intercept(self) -> None:
        box = _Outbox()
        self._outboxes.append(box)
        call = self.node.router.stub.HtlcInterceptor(iter(box))
        self._calls.append(call)
        self._ready.wait(timeout=30)
        r = self.s.router
        try:
            for req in call:
                key = (req.incoming_circuit_key.chan_id, req.incoming_circuit_key.htlc_id)
                inv = self.invoices.get(req.outgoing_requested_chan_id)
                if inv is None:
                    box.put(
                        r.ForwardHtlcInterceptResponse(incoming_circuit_key=req.incoming_circuit_key, action=r.RESUME)
                    )
                    continue
                parts = self._parts.setdefault(inv.payment_hash, {})
                parts[key] = req
                if sum(p.outgoing_amount_msat for p in parts.values()) < inv.amount_msat:
                    continue  # hold until every part arrived (the payer's MPP timeout bounds this)
                verdict = self._check(inv, list(parts.values()))
                for p in parts.values():
                    if verdict is None:
                        resp = r.ForwardHtlcInterceptResponse(
                            incoming_circuit_key=p.incoming_circuit_key, action=r.SETTLE, preimage=inv.preimage
                        )
                    else:
                        resp = r.ForwardHtlcInterceptResponse(
                            incoming_circuit_key=p.incoming_circuit_key,
                            action=r.FAIL,
                            failure_code=self.s.ln.Failure.FailureCode.INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
                        )
                    box.put(resp)
                if verdict is None:
                    inv.received_msat = sum(p.incoming_amount_msat for p in parts.values())
                    inv.fees_msat = [self._extra_fee(p) for p in parts.values()]
                else:
                    inv.rejected = verdict
                self._parts.pop(inv.payment_hash, None)
                inv.settled.set()
        except grpc.RpcError:
            return

    @staticmethod
    def _extra_fee(req: Any) -> int:
        raw = req.in_wire_custom_records.get(EXTRA_FEE_TLV)
        return int.from_bytes(raw, "big") if raw else 0

    def _check(self, inv: JitInvoice, parts: list[Any]) -> str | None:
        """None if the parts pay the invoice minus exactly the agreed fee, else why not."""
        fees = 0
        for p in parts:
            fee = self._extra_fee(p)
            if p.incoming_amount_msat + fee != p.outgoing_amount_msat:
                return (
                    f"part of {p.incoming_amount_msat} msat + extra_fee {fee} != onion amount {p.outgoing_amount_msat}"
                )
            fees += fee
        if fees > inv.expected_fee_msat:
            return f"the LSP took {fees} msat, more than the agreed {inv.expected_fee_msat} msat"
        return None

    # -- wrapped mode ---------------------------------------------------------------
    def wrapped_invoice(
        self, params: dict[str, Any], *, amount_msat: int, memo: str = "lab wrapped JIT"
    ) -> dict[str, Any]:
        """Create an invoice on the client node and have the LSP wrap it; returns the LSP's answer
        (``invoice`` for the payer, ``payment_size_msat``, ``opening_fee_msat``) plus ``client_invoice``."""
        own = self.node.add_invoice(memo=memo, amount_msat=amount_msat)
        res = self.request("lab.jit_wrap_invoice", {"invoice": own.payment_request, "opening_fee_params": params})
        return {**res, "client_invoice": own.payment_request, "payment_hash": own.payment_hash}


def pay_in_parts(payer: LndNode, payment_request: str, *, shard_msat: int, timeout_s: int = 60) -> PaymentResult:
    """Pay with LND splitting the payment into parts of at most ``shard_msat`` (forces MPP)."""
    return payer.router.pay_invoice(
        payment_request, fee_limit_sat=0, timeout_s=timeout_s, max_parts=32, max_shard_size_msat=shard_msat
    )


def served_menu(node: LndNode, lsp_pubkey: str) -> list[dict[str, Any]]:
    """The ``opening_fee_params_menu`` the LSP serves right now, asked over LSPS0 by ``node`` (an LND
    node connected to the LSP): the outside view tests and scenario checks compute fees from."""
    with LspsClient(node, lsp_pubkey, intercept=False) as c:
        menu: list[dict[str, Any]] = c.get_info()["opening_fee_params_menu"]
    return menu


def wait_answering(node: LndNode, lsp_pubkey: str, *, timeout_s: float = 60) -> None:
    """Block until the LSP answers LSPS0 over the wire from ``node`` (an LND peer of the LSP):
    a service just (re)started may not have its peer-message subscription registered at LND
    yet, and a client like ldk-node sends once and gives up after 5 s."""
    with LspsClient(node, lsp_pubkey, intercept=False) as c:
        c.request("lsps0.list_protocols", timeout_s=timeout_s)
