"""Encryption at rest for secrets the LSP must be able to read back (client HMAC secrets, webhook secrets).

An HMAC secret cannot be stored as a hash -- verifying a signature needs the
secret itself -- so it is encrypted with Fernet (AES-128-CBC + HMAC) under a
key derived from ``LSP_SECRET_KEY``. A database dump alone does not reveal it.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from lsp.errors import ConfigError


class SecretBox:
    def __init__(self, secret_key: str):
        digest = hashlib.sha256(b"lsp-secret-box-v1:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigError("a stored secret cannot be decrypted: was LSP_SECRET_KEY changed?") from None
