"""``lnrpc.State``: the daemon's start-up state (answers before the wallet is unlocked)."""

from __future__ import annotations

from harness.rpc.base import Service


class StateRpc(Service):
    stub_factory = staticmethod(lambda s: s.state_grpc.StateStub)

    def state(self) -> str:
        return str(self.s.state.WalletState.Name(self._call("GetState", self.s.state.GetStateRequest(), timeout=5).state))
