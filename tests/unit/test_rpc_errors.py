"""A failed LND call means the same in the lab as in the LSP: one mapping of gRPC errors."""

from __future__ import annotations

import grpc
import pytest

from harness.errors import NodeError
from harness.rpc.base import RpcFailed
from lncore.errors import LndError, LndUnavailable
from lncore.lnd.base import to_lnd_error

pytestmark = pytest.mark.unit


class FakeStatus(grpc.RpcError):
    """A fake of what a failed gRPC call reports (its status code and LND's message)."""

    def __init__(self, code: grpc.StatusCode, details: str):
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "unreachable"),
    [(grpc.StatusCode.UNKNOWN, False), (grpc.StatusCode.NOT_FOUND, False), (grpc.StatusCode.UNAVAILABLE, True)],
)
def test_the_lab_and_the_lsp_map_a_failed_call_alike(code: grpc.StatusCode, unreachable: bool) -> None:
    status = FakeStatus(code, "invoice is already paid")
    lab = RpcFailed("alice", "SendPaymentSync", status)
    lsp = to_lnd_error(status, "SendPaymentSync")
    assert isinstance(lab, LndError) and isinstance(lab, NodeError)  # caught as either
    assert (lab.grpc_code, lab.message, lab.rpc) == (lsp.grpc_code, lsp.message, lsp.rpc) == (
        code.name,
        "invoice is already paid",
        "SendPaymentSync",
    )
    assert lab.unreachable == isinstance(lsp, LndUnavailable) == unreachable
    assert str(lab) == f"alice: SendPaymentSync failed: invoice is already paid ({code.name})"
