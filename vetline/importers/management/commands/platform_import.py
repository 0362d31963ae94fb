"""`vetline import FORMAT FILE --account ID`: import a network's own data export (X archive,
Facebook, Instagram, LinkedIn, Mastodon, Bluesky CAR) into the archive, with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vetline.core.context import RequestContext, use_context
from vetline.core.errors import DomainError
from vetline.importers.formats import FORMATS


class Command(BaseCommand):
    help = "Import a platform data export: FORMAT FILE --account ID"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("format", choices=sorted(FORMATS))
        parser.add_argument("file", help="the export: zip, tar(.gz), folder or single file")
        parser.add_argument("--account", type=int, required=True, help="social account id")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--no-screen", action="store_true", help="skip policy screening")
        parser.add_argument("--no-media", action="store_true", help="do not store media files")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **opts: Any) -> None:
        from tqdm import tqdm

        from vetline.accounts.models import SocialAccount
        from vetline.importers.actions import import_file

        path = Path(opts["file"])
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        account = SocialAccount.objects.filter(pk=opts["account"]).first()
        if account is None:
            raise CommandError(f"No social account with id {opts['account']}.")
        bar = tqdm(
            total=0,
            unit="B",
            unit_scale=True,
            disable=opts["quiet"],
            file=sys.stderr,
            desc=f"{opts['format']} {path.name}",
        )

        def progress(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

        with use_context(RequestContext(channel="cli")):
            try:
                result = import_file(
                    actor=None,
                    account=account,
                    fmt=opts["format"],
                    path=path,
                    batch_size=max(1, min(opts["batch_size"], 10_000)),
                    screen=False if opts["no_screen"] else None,
                    media=not opts["no_media"],
                    progress=progress,
                )
            except DomainError as exc:
                bar.close()
                raise CommandError(exc.message) from exc
        bar.update((bar.total or 0) - bar.n)  # parts a damaged file could not be read are done too
        bar.close()
        self.stdout.write(result.summary())
        for what, count in sorted(result.not_archived.items()):
            self.stdout.write(f"not archived (not communications): {count:,} {what}")
        for problem in result.problems[:20]:
            note = f" [{problem['note']}]" if problem["note"] else ""
            self.stdout.write(
                f"quarantined {problem['where']}: {problem['reason_code']}: "
                f"{problem['reason']}{note}"
            )
        if result.stops:
            for stop in result.stops:
                self.stderr.write(f"STOPPED: {stop}")
            raise CommandError(
                "Part of the export could not be read (see STOPPED above). Everything before "
                "each stop is archived; import a repaired file again (nothing is duplicated)."
            )
