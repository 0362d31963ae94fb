from __future__ import annotations

from allauth.mfa.adapter import DefaultMFAAdapter
from django.conf import settings

from vetline.accounts.vault import Vault

VAULT_PREFIX = "vault:"


class VetlineMFAAdapter(DefaultMFAAdapter):
    """TOTP secrets and recovery-code seeds are encrypted with the vault key, like network
    credentials, and rotate with it (``vetline vault rotate``)."""

    def encrypt(self, text: str) -> str:
        return VAULT_PREFIX + Vault(settings.VETLINE_VAULT_KEYS).encrypt(text).decode()

    def decrypt(self, encrypted_text: str) -> str:
        if encrypted_text.startswith(VAULT_PREFIX):
            token = encrypted_text[len(VAULT_PREFIX) :].encode()
            return Vault(settings.VETLINE_VAULT_KEYS).decrypt(token)
        return encrypted_text
