"""`vetline archive export`: write an eDiscovery / regulator export package.

    vetline archive export --hold ID OUT_DIR
    vetline archive export --query 'fund AND "guaranteed return"' [--filter NAME=VALUE ...] OUT_DIR
    vetline archive export --account ID [--from DATE --to DATE] OUT_DIR
    vetline archive export --conversation ID [--account ID] OUT_DIR
    vetline archive export --record ID [--record ID ...] OUT_DIR

A legal hold exports every record the hold covers; a search exports everything the archive
search finds (the same query language and filters as the search page: account, network, kind,
direction, since, until, verdict, flagged, handle, on_hold). The same command is reachable as
``vetline manage archive_export``.

The package (RSMF, EML, CSV, HTML transcripts, signed manifest with inclusion proofs and the
standalone verifier) is written into OUT_DIR, which must be empty or not exist. ``--zip`` also
writes OUT_DIR.zip. Audited as ``archive.export.start`` / ``archive.export.done``.
"""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from vetline.core.context import RequestContext, use_context
from vetline.core.errors import DomainError


def _filters(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--filter takes NAME=VALUE, not {pair!r}.")
        out[name.strip()] = value.strip()
    return out


def add_export_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("out_dir", metavar="OUT_DIR")
    parser.add_argument("--hold", type=int, help="legal hold id: every record it covers")
    parser.add_argument("--query", default="", help="archive search query")
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="search filter, with --query or alone (repeatable)",
    )
    parser.add_argument("--account", type=int, help="social account id")
    parser.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (UTC)")
    parser.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (UTC)")
    parser.add_argument("--conversation", help="conversation id")
    parser.add_argument(
        "--record", type=int, action="append", default=[], help="record id (repeatable)"
    )
    parser.add_argument("--zip", action="store_true", help="also write OUT_DIR.zip")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_export(opts: dict[str, Any], *, stdout: OutputWrapper, stderr: OutputWrapper) -> None:
    from tqdm import tqdm

    from vetline.archive.export.actions import export_to_directory
    from vetline.archive.export.package import PASSES, zip_package
    from vetline.archive.export.selection import selection_from_input

    out_dir = Path(opts["out_dir"])
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise CommandError(f"{out_dir} exists and is not an empty directory.")
    with use_context(RequestContext(channel="cli")):
        try:
            selection = selection_from_input(
                {
                    "hold_id": opts["hold"],
                    "query": opts["query"],
                    "search_filters": _filters(opts["filter"]),
                    "account_id": opts["account"],
                    "date_from": opts["date_from"],
                    "date_to": opts["date_to"],
                    "conversation_id": opts["conversation"],
                    "record_ids": opts["record"],
                }
            )
            total = selection.queryset().count()
            with tqdm(
                total=total * PASSES,
                unit="rec",
                disable=opts["quiet"],
                file=sys.stderr,
                desc="export",
            ) as bar:

                def progress(phase: str, advance: int) -> None:
                    bar.set_description(phase, refresh=False)
                    bar.update(advance)

                result = export_to_directory(
                    actor=None, selection=selection, out_dir=out_dir, progress=progress
                )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
    if opts["zip"]:
        zip_package(out_dir, out_dir.with_name(out_dir.name + ".zip"))
    stdout.write(
        f"Exported {result.records} record version(s) in {result.conversations} "
        f"conversation(s), {result.files} files, to {out_dir}\n"
        f"Signed tree head: size {result.tree_size}; manifest SHA-256 "
        f"{result.manifest_sha256}\n"
        f"Verify with: python3 {out_dir / 'standalone_verifier.py'} {out_dir}"
    )
    if result.attachments_missing:
        stderr.write(f"{result.attachments_missing} attachment blob(s) were missing.")


class Command(BaseCommand):
    help = "Export archived records as an eDiscovery package with a signed manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        add_export_arguments(parser)

    def handle(self, *args: Any, **opts: Any) -> None:
        run_export(opts, stdout=self.stdout, stderr=self.stderr)
