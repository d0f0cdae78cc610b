"""``peersrpc.Peers``: the node's announcement (alias, color, addresses)."""

from __future__ import annotations

from harness.rpc.base import Service


class PeersRpc(Service):
    stub_factory = staticmethod(lambda s: s.peers_grpc.PeersStub)

    def set_alias(self, alias: str) -> None:
        self._call("UpdateNodeAnnouncement", self.s.peers.NodeAnnouncementUpdateRequest(alias=alias))
