"""The LND client's behaviour that needs no LND: configuration errors, an unreachable node,
grpc-error mapping, and txid byte order. Live RPCs are tested in the lab."""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
from pathlib import Path

import grpc
import grpc.aio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lncore.lnd.base import to_lnd_error
from lncore.lnd.client import LndClient
from lncore.lnd.types import ChannelPointRef, txid_from_bytes, txid_to_bytes
from lsp.config import lnd_from_settings, load_settings
from lsp.errors import LndError, LndUnavailable

pytestmark = pytest.mark.unit


def self_signed_ecdsa_cert(path: Path) -> Path:
    """An ECDSA cert like the one LND generates, so the client can build a TLS channel."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cipher_suites_env_is_set_for_lnds_ecdsa_cert() -> None:
    assert os.environ["GRPC_SSL_CIPHER_SUITES"] == "HIGH+ECDSA"


def test_missing_macaroon_is_a_clear_error(tmp_path: Path) -> None:
    cert = self_signed_ecdsa_cert(tmp_path / "tls.cert")
    with pytest.raises(LndUnavailable, match=r"cannot read LND macaroon .*admin.macaroon"):
        LndClient.from_paths("localhost:10009", cert, tmp_path / "admin.macaroon")


def test_settings_without_lnd_paths_cannot_build_a_client() -> None:
    with pytest.raises(LndUnavailable, match="LSP_LND_TLS_CERT_PATH"):
        lnd_from_settings(load_settings())


def test_unreachable_node_raises_lnd_unavailable_not_a_grpc_error(tmp_path: Path) -> None:
    cert = self_signed_ecdsa_cert(tmp_path / "tls.cert")
    mac = tmp_path / "admin.macaroon"
    mac.write_bytes(b"\x02\x01macaroon")

    async def go() -> LndUnavailable:
        async with LndClient.from_paths(f"127.0.0.1:{free_port()}", cert, mac, timeout_s=5) as lnd:
            assert lnd._metadata == (("macaroon", "02016d616361726f6f6e"),)  # hex of the file's bytes
            with pytest.raises(LndUnavailable) as exc:
                await lnd.get_info()
            return exc.value

    err = asyncio.run(go())
    assert err.rpc == "GetInfo" and err.grpc_code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def test_grpc_errors_keep_lnds_message() -> None:
    exc = grpc.aio.AioRpcError(
        grpc.StatusCode.UNKNOWN, grpc.aio.Metadata(), grpc.aio.Metadata(), details="invoice is already paid"
    )
    err = to_lnd_error(exc, "SendPaymentV2")
    assert type(err) is LndError
    assert (err.message, err.grpc_code, err.rpc) == ("invoice is already paid", "UNKNOWN", "SendPaymentV2")
    assert str(err) == "SendPaymentV2: invoice is already paid (UNKNOWN)"


def test_txids_are_shown_in_explorer_byte_order() -> None:
    internal = bytes(range(32))
    txid = txid_from_bytes(internal)
    assert txid.startswith("1f1e1d") and txid_to_bytes(txid) == internal
    assert str(ChannelPointRef.parse(f"{txid}:1")) == f"{txid}:1"
