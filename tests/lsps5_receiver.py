"""A notification delivery service for the LSPS5 tests, with its own checks (not the LSP's code):

* ``WebhookReceiver``: an HTTPS server on 127.0.0.1 with a certificate from its own CA (the LSP is
  told to trust ``ca_path`` through LSP_LSPS5_CA_BUNDLE); records every POST.
* ``signer_of``: the node id that made an LSPS0 ln_signature, recovered with libsecp256k1
  (coincurve) after decoding zbase32 here: the message is "Lightning Signed Message:" + the
  text, hashed with double SHA-256; the signature is a recoverable compact one, whose header
  byte is 31 + the recovery id for a compressed key.
"""

from __future__ import annotations

import hashlib
import http.server
import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import coincurve
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.wait import wait_for

ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def zbase32_decode(text: str) -> bytes:
    bits = "".join(f"{ZBASE32.index(c):05b}" for c in text)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8))


def signer_of(message: bytes, signature: str) -> str:
    sig = zbase32_decode(signature)
    assert len(sig) == 65, f"an ln_signature is 65 bytes, got {len(sig)}"
    recid = sig[0] - 31
    assert 0 <= recid <= 3, f"header byte {sig[0]}: not a compressed-key recoverable signature"
    digest = hashlib.sha256(hashlib.sha256(b"Lightning Signed Message:" + message).digest()).digest()
    key = coincurve.PublicKey.from_signature_and_message(sig[1:] + bytes([recid]), digest, hasher=None)
    return str(key.format(compressed=True).hex())


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


def _cert(name: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey,
          *, ca: bool) -> x509.Certificate:
    now = datetime.now(UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return b.sign(signer, hashes.SHA256())


class WebhookReceiver:
    def __init__(self, workdir: Path, *, status: int = 200):
        self.status = status
        self.received: list[Received] = []
        self._lock = threading.Lock()
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lsps5 test CA")])
        ca = _cert(ca_name, ca_name, ca_key, ca_key, ca=True)
        cert = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name, key, ca_key, ca=False)
        self.ca_path = workdir / "lsps5-ca.pem"
        self.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        cert_path, key_path = workdir / "lsps5-server.pem", workdir / "lsps5-server.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer._lock:
                    outer.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/push") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout_s: float = 60) -> list[Received]:
        """The calls so far, once there are at least ``count`` (harness.wait's polling)."""

        def enough() -> list[Received] | None:
            with self._lock:
                return list(self.received) if len(self.received) >= count else None

        return wait_for(
            enough, what=f"{count} webhook call(s)", timeout_s=timeout_s, describe=lambda: f"{len(self.received)} so far"
        )
