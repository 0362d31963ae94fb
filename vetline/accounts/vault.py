"""The credentials vault's cryptography: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation.

Plain module with no ORM. Keys come from ``VETLINE_VAULT_KEYS`` (newest first): the first key
encrypts, every listed key decrypts, and ``rotate`` re-encrypts a token under the first key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    pass


def key_id(key: str) -> str:
    """A short, non-secret identifier of a key, stored beside each ciphertext."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def generate_key() -> str:
    return Fernet.generate_key().decode()


class Vault:
    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise VaultError("No vault key configured: set VETLINE_VAULT_KEYS.")
        try:
            self._fernets = [Fernet(k.encode()) for k in keys]
        except (ValueError, TypeError) as exc:
            raise VaultError(
                "A key in VETLINE_VAULT_KEYS is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; create one with `vetline vault generate-key`)."
            ) from exc
        self._multi = MultiFernet(self._fernets)
        self.primary_key_id = key_id(keys[0])
        self.key_ids = [key_id(k) for k in keys]

    def encrypt(self, secret: str) -> bytes:
        return self._multi.encrypt(secret.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self._multi.decrypt(bytes(token)).decode("utf-8")
        except InvalidToken as exc:
            raise VaultError(
                "Cannot decrypt a credential: its key is not in VETLINE_VAULT_KEYS."
            ) from exc

    def rotate(self, token: bytes) -> bytes:
        try:
            return self._multi.rotate(bytes(token))
        except InvalidToken as exc:
            raise VaultError(
                "Cannot rotate a credential: its key is not in VETLINE_VAULT_KEYS."
            ) from exc

    def encrypted_with_primary(self, token: bytes) -> bool:
        try:
            self._fernets[0].decrypt(bytes(token))
        except InvalidToken:
            return False
        return True
