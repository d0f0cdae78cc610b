"""wtclientrpc.WatchtowerClient: the towers this node backs its channel states up to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lncore.lnd.base import RpcBase

if TYPE_CHECKING:
    from lnd_grpc.wtclientrpc import wtclient_pb2 as wt


class WtClientMixin(RpcBase):
    """Needs LND running with ``--wtclient.active`` (else LND answers every call with an error)."""

    async def add_tower(self, pubkey: str, address: str) -> None:
        """AddTower: back up to this tower (idempotent: a known tower gets the address added)."""
        req = self.pb.wtclient.AddTowerRequest(pubkey=bytes.fromhex(pubkey), address=address)
        await self._unary(self.wtclient_stub.AddTower, req, rpc="AddTower")

    async def list_towers(self, *, include_sessions: bool = True) -> list[wt.Tower]:
        req = self.pb.wtclient.ListTowersRequest(include_sessions=include_sessions)
        resp: wt.ListTowersResponse = await self._unary(self.wtclient_stub.ListTowers, req, rpc="ListTowers")
        return list(resp.towers)

    async def tower_stats(self) -> wt.StatsResponse:
        resp: wt.StatsResponse = await self._unary(
            self.wtclient_stub.Stats, self.pb.wtclient.StatsRequest(), rpc="Stats"
        )
        return resp
