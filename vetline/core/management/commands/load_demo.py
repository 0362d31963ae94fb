from typing import Any

from django.core.management.base import BaseCommand

from vetline.core.context import RequestContext, use_context
from vetline.core.demo import load_demo


class Command(BaseCommand):
    help = "Load the Harbor Point Securities demo organisation (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        with use_context(RequestContext(channel="cli")):
            created = load_demo()
        self.stdout.write(
            self.style.SUCCESS(
                "Demo organisation ready: " + ", ".join(f"{n} new {k}" for k, n in created.items())
            )
        )
