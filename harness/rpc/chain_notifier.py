"""``chainrpc.ChainNotifier``: confirmation and block notifications."""

from __future__ import annotations

from typing import Any

from harness.rpc.base import Service


class ChainNotifierRpc(Service):
    stub_factory = staticmethod(lambda s: s.chainnotifier_grpc.ChainNotifierStub)

    def block_epochs(self) -> Any:
        """A stream of new blocks (height, hash) as the node sees them."""
        return self._stream("RegisterBlockEpochNtfn", self.s.chainnotifier.BlockEpoch())

    def wait_confirmation(self, txid: str, script: bytes, height_hint: int, *, num_confs: int = 1) -> Any:
        req = self.s.chainnotifier.ConfRequest(
            txid=bytes.fromhex(txid)[::-1], script=script, num_confs=num_confs, height_hint=height_hint
        )
        for event in self._stream("RegisterConfirmationsNtfn", req, timeout=120):
            if event.HasField("conf"):
                return event.conf
        return None
