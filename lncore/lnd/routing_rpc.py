"""What the LSP's own router needs from LND: the graph stream, route building and SendToRouteV2.

``SendToRouteV2`` sends one HTLC over a route we chose and returns when that HTLC is resolved
(``HTLCAttempt``: SUCCEEDED with the preimage, or FAILED with the onion failure and the index
of the node that produced it). For a multi-part payment each part is its own call with the same
payment hash; the final hop carries the MPP record (payment address, total amount), and the
recipient holds arrived parts until the total is there, so a call for a part that arrived
blocks until the whole set is complete (or the recipient's MPP timeout fails it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from lncore.lnd.base import RpcBase

if TYPE_CHECKING:  # protoc's .pyi types, once `lsp stubs` / `lab setup` generated them
    from lnd_grpc import lightning_pb2 as ln
    from lnd_grpc.routerrpc import router_pb2 as routerrpc


class RoutingRpcMixin(RpcBase):
    async def subscribe_channel_graph(self) -> AsyncIterator[ln.GraphTopologyUpdate]:
        """GraphTopologyUpdate messages (node_updates, channel_updates, closed_chans), forever."""
        req = self.pb.ln.GraphTopologySubscription()
        async for update in self._stream(self.lightning_stub.SubscribeChannelGraph, req, rpc="SubscribeChannelGraph"):
            yield update

    async def block_height(self) -> int:
        info = await self._unary(self.lightning_stub.GetInfo, self.pb.ln.GetInfoRequest(), rpc="GetInfo")
        return int(info.block_height)

    async def build_route(
        self,
        amt_msat: int,
        hop_pubkeys: list[str],
        *,
        final_cltv_delta: int = 40,
        outgoing_chan_id: int = 0,
        payment_addr: bytes = b"",
    ) -> ln.Route:
        """Router.BuildRoute: LND computes fees and timelocks for a fixed list of hops (a ``Route``)."""
        req = self.pb.router.BuildRouteRequest(
            amt_msat=amt_msat,
            final_cltv_delta=final_cltv_delta,
            outgoing_chan_id=outgoing_chan_id,
            hop_pubkeys=[bytes.fromhex(p) for p in hop_pubkeys],
            payment_addr=payment_addr,
        )
        resp: routerrpc.BuildRouteResponse = await self._unary(self.router_stub.BuildRoute, req, rpc="BuildRoute")
        return resp.route

    async def send_to_route_v2(self, payment_hash: bytes, route: ln.Route, *, timeout_s: float) -> ln.HTLCAttempt:
        """One HTLC over ``route``; returns the resolved ``HTLCAttempt``.

        ``skip_temp_err``: a temporary failure of one part must not mark the whole payment
        failed in LND, or the remaining parts of the same hash would be refused."""
        req = self.pb.router.SendToRouteRequest(payment_hash=payment_hash, route=route, skip_temp_err=True)
        attempt: ln.HTLCAttempt = await self._unary(
            self.router_stub.SendToRouteV2, req, rpc="SendToRouteV2", timeout=timeout_s
        )
        return attempt

    async def reset_mission_control(self) -> None:
        """Forget what LND's own router learned (for comparisons that start both routers fresh)."""
        req = self.pb.router.ResetMissionControlRequest()
        await self._unary(self.router_stub.ResetMissionControl, req, rpc="ResetMissionControl")
