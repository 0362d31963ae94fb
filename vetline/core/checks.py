"""System checks run by `vetline check` (and at start-up): configuration that would only fail
later, when someone first uses it, fails here instead."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register


@register(deploy=False)
def vault_keys_configured(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    from vetline.accounts.vault import Vault, VaultError

    try:
        Vault(settings.VETLINE_VAULT_KEYS)
    except VaultError as exc:
        return [
            Error(
                str(exc),
                hint="Create a key with `vetline vault generate-key` and set VETLINE_VAULT_KEYS.",
                id="vetline.E001",
            )
        ]
    return []


@register(deploy=False)
def log_signing_key_configured(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    from vetline.archive.integrity.sth import SignatureError
    from vetline.archive.log import signer

    problems: list[CheckMessage] = []
    try:
        signer()
    except (SignatureError, ValueError) as exc:
        problems.append(
            Error(
                str(exc),
                hint="Set VETLINE_LOG_SIGNING_KEY (docs/operations.md, log signing key).",
                id="vetline.E002",
            )
        )
    for entry in settings.VETLINE_LOG_TRUSTED_KEYS:
        try:
            if len(bytes.fromhex(entry)) != 32:
                raise ValueError
        except ValueError:
            problems.append(
                Error(
                    f"VETLINE_LOG_TRUSTED_KEYS has an entry that is not a 32-byte hex Ed25519 "
                    f"public key: {entry[:20]!r}",
                    id="vetline.E003",
                )
            )
    return problems
