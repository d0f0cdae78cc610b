"""``routerrpc.Router``: sending payments and reading their outcome."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from harness.rpc.base import Service

KEYSEND_RECORD = 5482373484


@dataclass(frozen=True)
class PaymentResult:
    """The final state of a payment as the sender's router reports it."""

    status: str  # SUCCEEDED | FAILED | IN_FLIGHT
    payment_hash: str
    preimage: str
    value_sat: int
    fee_sat: int
    fee_msat: int
    failure_reason: str  # FAILURE_REASON_NONE when it succeeded
    route: tuple[str, ...]  # pubkeys of the hops of the first successful HTLC
    attempts: int
    # Per failed HTLC attempt, in order: the BOLT 4 failure code and the index of the hop that
    # reported it (0 = us), e.g. ("TEMPORARY_CHANNEL_FAILURE", 1) from our first peer.
    failures: tuple[tuple[str, int], ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


class RouterRpc(Service):
    stub_factory = staticmethod(lambda s: s.router_grpc.RouterStub)

    def delete_alias(self, base_scid: int, alias: int) -> None:
        """XDeleteLocalChanAliases: stop routing ``alias`` onto the channel ``base_scid`` (a drill
        for the LSP: the state LND is in when it lost an alias the LSP added)."""
        req = self.s.router.DeleteAliasesRequest(alias_maps=[self.s.ln.AliasMap(base_scid=base_scid, aliases=[alias])])
        self._call("XDeleteLocalChanAliases", req)

    def _to_result(self, p: Any) -> PaymentResult:
        status = self.s.ln.Payment.PaymentStatus.Name(p.status)
        route: tuple[str, ...] = ()
        for h in p.htlcs:
            if h.status == self.s.ln.HTLCAttempt.SUCCEEDED:
                route = tuple(hop.pub_key for hop in h.route.hops)
                break
        return PaymentResult(
            status=status,
            payment_hash=p.payment_hash,
            preimage=p.payment_preimage if set(p.payment_preimage) != {"0"} else "",
            value_sat=int(p.value_sat),
            fee_sat=int(p.fee_sat),
            fee_msat=int(p.fee_msat),
            failure_reason=self.s.ln.PaymentFailureReason.Name(p.failure_reason),
            route=route,
            attempts=len(p.htlcs),
            failures=tuple(
                (self.s.ln.Failure.FailureCode.Name(h.failure.code), int(h.failure.failure_source_index))
                for h in p.htlcs
                if h.status == self.s.ln.HTLCAttempt.FAILED and h.HasField("failure")
            ),
        )

    def _send(self, req: Any, timeout_s: int) -> PaymentResult:
        last = None
        for update in self._stream("SendPaymentV2", req, timeout=timeout_s + 30):
            last = update
            if update.status not in (self.s.ln.Payment.IN_FLIGHT, self.s.ln.Payment.INITIATED):
                break
        if last is None:
            raise RuntimeError("SendPaymentV2 returned no update")
        return self._to_result(last)

    def pay_invoice(
        self,
        payment_request: str,
        *,
        fee_limit_sat: int = 100,
        timeout_s: int = 60,
        amount_sat: int | None = None,
        max_parts: int = 16,
        outgoing_chan_ids: list[int] | None = None,
        allow_self_payment: bool = False,
    ) -> PaymentResult:
        req = self.s.router.SendPaymentRequest(
            payment_request=payment_request,
            fee_limit_sat=fee_limit_sat,
            timeout_seconds=timeout_s,
            no_inflight_updates=True,
            max_parts=max_parts,
            allow_self_payment=allow_self_payment,
        )
        if amount_sat is not None:
            req.amt = amount_sat
        if outgoing_chan_ids:
            req.outgoing_chan_ids.extend(outgoing_chan_ids)
        return self._send(req, timeout_s)

    def keysend(self, dest_pubkey: str, amount_sat: int, *, fee_limit_sat: int = 100, timeout_s: int = 60) -> PaymentResult:
        preimage = os.urandom(32)
        req = self.s.router.SendPaymentRequest(
            dest=bytes.fromhex(dest_pubkey),
            amt=amount_sat,
            payment_hash=hashlib.sha256(preimage).digest(),
            dest_custom_records={KEYSEND_RECORD: preimage},
            fee_limit_sat=fee_limit_sat,
            timeout_seconds=timeout_s,
            no_inflight_updates=True,
        )
        return self._send(req, timeout_s)

    def track(self, payment_hash: str, *, timeout_s: int = 60) -> PaymentResult:
        req = self.s.router.TrackPaymentRequest(payment_hash=bytes.fromhex(payment_hash), no_inflight_updates=True)
        last = None
        for update in self._stream("TrackPaymentV2", req, timeout=timeout_s):
            last = update
            if update.status not in (self.s.ln.Payment.IN_FLIGHT, self.s.ln.Payment.INITIATED):
                break
        if last is None:
            raise RuntimeError("TrackPaymentV2 returned no update")
        return self._to_result(last)
