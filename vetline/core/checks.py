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
