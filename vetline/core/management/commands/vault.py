from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vetline.accounts.actions import rotate_vault_key
from vetline.accounts.vault import VaultError, generate_key
from vetline.core.context import RequestContext, use_context


class Command(BaseCommand):
    help = "Credentials vault: generate-key | rotate (see docs/operations.md, key rotation)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("operation", choices=["generate-key", "rotate"])

    def handle(self, *args: Any, **options: Any) -> None:
        if options["operation"] == "generate-key":
            self.stdout.write(generate_key())
            return
        try:
            with use_context(RequestContext(channel="cli")):
                rotated, current = rotate_vault_key()
        except VaultError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {rotated} secret(s) under the primary key; {current} already were. "
                "Secrets on old keys: 0. The old key can now be removed from VETLINE_VAULT_KEYS."
            )
        )
