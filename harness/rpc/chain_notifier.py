"""``chainrpc.ChainNotifier``: confirmation and block notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.rpc.base import Service, Stream

if TYPE_CHECKING:
    from lnd_grpc.chainrpc import chainnotifier_pb2 as chainrpc


class ChainNotifierRpc(Service):
    stub_factory = staticmethod(lambda s: s.chainnotifier_grpc.ChainNotifierStub)

    def block_epochs(self) -> Stream[chainrpc.BlockEpoch]:
        """A stream of new blocks (height, hash) as the node sees them."""
        return self._stream("RegisterBlockEpochNtfn", self.s.chainnotifier.BlockEpoch())

    def wait_confirmation(
        self, txid: str, script: bytes, height_hint: int, *, num_confs: int = 1
    ) -> chainrpc.ConfDetails | None:
        req = self.s.chainnotifier.ConfRequest(
            txid=bytes.fromhex(txid)[::-1], script=script, num_confs=num_confs, height_hint=height_hint
        )
        events: Stream[chainrpc.ConfEvent] = self._stream("RegisterConfirmationsNtfn", req, timeout=120)
        for event in events:
            if event.HasField("conf"):
                return event.conf
        return None
