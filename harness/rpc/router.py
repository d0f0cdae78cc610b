"""``routerrpc.Router``: sending payments and reading their outcome.

The request and the meaning of LND's updates come from ``lncore.lnd.payments``, shared with the
LSP's async client; this is only the synchronous transport and the lab's richer result (route,
per-attempt failures) for tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from harness.rpc.base import Service
from lncore.lnd import payments


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

    def reset_mission_control(self) -> None:
        """Forget what the router learned from earlier failures (tests start unbiased)."""
        self._call("ResetMissionControl", self.s.router.ResetMissionControlRequest())

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

    def _until_final(self, method: str, req: Any, timeout_s: float) -> PaymentResult:
        last = None
        for update in self._stream(method, req, timeout=timeout_s):
            last = update
            if payments.is_final(self.s, update):
                break
        if last is None:
            raise RuntimeError(f"{method} returned no update")
        return self._to_result(last)

    def pay_invoice(
        self,
        payment_request: str,
        *,
        fee_limit_sat: int = 100,
        timeout_s: int = 60,
        amount_sat: int | None = None,
        max_parts: int = 16,
        max_shard_size_msat: int | None = None,
        outgoing_chan_ids: list[int] | None = None,
        allow_self_payment: bool = False,
    ) -> PaymentResult:
        req = payments.send_request(
            self.s,
            payment_request=payment_request,
            timeout_s=timeout_s,
            fee_limit_sat=fee_limit_sat,
            amount_sat=amount_sat,
            max_parts=max_parts,
            max_shard_size_msat=max_shard_size_msat,
            outgoing_chan_ids=outgoing_chan_ids,
            allow_self_payment=allow_self_payment,
        )
        return self._until_final("SendPaymentV2", req, timeout_s + payments.STREAM_MARGIN_S)

    def keysend(self, dest_pubkey: str, amount_sat: int, *, fee_limit_sat: int = 100, timeout_s: int = 60) -> PaymentResult:
        req = payments.send_request(
            self.s,
            keysend_to=dest_pubkey,
            keysend_preimage=os.urandom(32),
            amount_sat=amount_sat,
            fee_limit_sat=fee_limit_sat,
            timeout_s=timeout_s,
        )
        return self._until_final("SendPaymentV2", req, timeout_s + payments.STREAM_MARGIN_S)

    def track(self, payment_hash: str, *, timeout_s: int = 60) -> PaymentResult:
        req = payments.track_request(self.s, payment_hash)
        return self._until_final("TrackPaymentV2", req, timeout_s)
