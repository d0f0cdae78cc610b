"""lnrpc.WalletUnlocker and lnrpc.State: create a new node's wallet and see where its start-up is.

Both answer before the wallet exists, so they need the node's TLS certificate but no macaroon:

    async with WalletUnlocker(host, tls_cert) as unlocker:
        mnemonic = await unlocker.gen_seed()
        admin_macaroon = await unlocker.init_wallet(password, mnemonic)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lncore.lnd.base import RpcBase

if TYPE_CHECKING:
    from lnd_grpc import stateservice_pb2 as st
    from lnd_grpc import walletunlocker_pb2 as wu


class WalletUnlocker(RpcBase):
    def __init__(self, host: str, tls_cert: bytes, *, timeout_s: float = 30.0):
        super().__init__(host, tls_cert, "", timeout_s=timeout_s)
        self.unlocker_stub = self.pb.unlocker_grpc.WalletUnlockerStub(self._channel)

    async def __aenter__(self) -> WalletUnlocker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def state(self) -> str:
        """StateService.GetState: WAITING_TO_START, NON_EXISTING (no wallet yet), LOCKED, UNLOCKED,
        RPC_ACTIVE or SERVER_ACTIVE."""
        resp: st.GetStateResponse = await self._unary(
            self.state_stub.GetState, self.pb.state.GetStateRequest(), rpc="GetState", timeout=10
        )
        return str(self.pb.state.WalletState.Name(resp.state))

    async def gen_seed(self) -> list[str]:
        """A fresh aezeed mnemonic (24 words) from the node's own entropy."""
        resp: wu.GenSeedResponse = await self._unary(self.unlocker_stub.GenSeed, self.pb.unlocker.GenSeedRequest(), rpc="GenSeed")
        return list(resp.cipher_seed_mnemonic)

    async def init_wallet(self, password: bytes, mnemonic: list[str]) -> bytes:
        """Create the wallet from ``mnemonic``, encrypted with ``password``; returns the admin
        macaroon LND bakes for it (LND also writes it to its data directory)."""
        req = self.pb.unlocker.InitWalletRequest(wallet_password=password, cipher_seed_mnemonic=mnemonic)
        resp: wu.InitWalletResponse = await self._unary(self.unlocker_stub.InitWallet, req, rpc="InitWallet", timeout=120)
        return bytes(resp.admin_macaroon)
