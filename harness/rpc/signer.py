"""``signrpc.Signer``: message signatures and shared keys."""

from __future__ import annotations

from harness.rpc.base import Service


class SignerRpc(Service):
    stub_factory = staticmethod(lambda s: s.signer_grpc.SignerStub)

    def sign_message(self, msg: bytes, *, key_family: int = 6, key_index: int = 0) -> bytes:
        loc = self.s.signer.KeyLocator(key_family=key_family, key_index=key_index)
        return bytes(self._call("SignMessage", self.s.signer.SignMessageReq(msg=msg, key_loc=loc)).signature)

    def verify_message(self, msg: bytes, signature: bytes, pubkey: str) -> bool:
        req = self.s.signer.VerifyMessageReq(msg=msg, signature=signature, pubkey=bytes.fromhex(pubkey))
        return bool(self._call("VerifyMessage", req).valid)
