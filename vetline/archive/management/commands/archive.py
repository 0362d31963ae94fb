"""`vetline manage archive …`: import JSONL/CSV, verify the log, sign a tree head, export the
tree heads to a witness file, append pending audit events."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from vetline.archive.management.commands import archive_export as export_command
from vetline.core.context import RequestContext, use_context
from vetline.core.errors import DomainError

# CSV columns holding lists: "a|b|c".
_LIST_COLUMNS = ("participants", "attachments")


#: A JSONL line longer than this cannot be a valid item (raw payload and text limits), so it is
#: not read into memory: its first KEPT_PREFIX bytes are quarantined (the JSON error names the
#: truncation) and the rest of the line is skipped in chunks.
MAX_LINE_BYTES = 64 * 1024 * 1024
KEPT_PREFIX = 1024 * 1024


def iter_jsonl(
    path: Path, *, max_line: int | None = None, on_oversized: Any = None
) -> Iterator[tuple[bytes, int]]:
    """Each non-blank line as raw bytes (invalid UTF-8 or JSON is quarantined, not skipped),
    with the bytes read so far. Memory stays bounded by ``max_line`` whatever the file holds."""
    max_line = max_line or MAX_LINE_BYTES
    with path.open("rb") as fh:
        done = 0
        while True:
            line = fh.readline(max_line + 1)
            if not line:
                return
            start = done
            done += len(line)
            if len(line) > max_line and not line.endswith(b"\n"):
                while chunk := fh.readline(max_line):
                    done += len(chunk)
                    if chunk.endswith(b"\n"):
                        break
                if on_oversized is not None:
                    on_oversized(start, done - start)
                yield line[:KEPT_PREFIX], done
                continue
            stripped = line.rstrip(b"\r\n")
            if stripped.strip():
                yield stripped, done


def _csv_value(column: str, value: str) -> Any:
    if column in _LIST_COLUMNS:
        return [v for v in value.split("|") if v] if value else []
    if column == "version":
        try:
            return int(value) if value else None
        except ValueError:
            return value  # quarantined with "version must be an integer"
    if column == "adopted":
        return {"true": True, "false": False, "1": True, "0": False, "": None}.get(
            value.lower(), value
        )
    return value if value != "" or column == "text" else None


class UnreadableFile(Exception):
    """The file cannot be read past this point (e.g. a CSV field over the size limit)."""


def iter_csv(path: Path) -> Iterator[tuple[dict[str, Any] | bytes, int]]:
    csv.field_size_limit(MAX_LINE_BYTES)
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.DictReader(text)
        rows = iter(reader)
        number = 0
        while True:
            number += 1
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                raise UnreadableFile(f"CSV row {number} after the header: {exc}") from exc
            done = raw.tell()
            item: dict[str, Any] = {}
            for column, value in row.items():
                if column is None or value is None:
                    continue
                item[column] = _csv_value(column, value)
            yield item, done


class Command(BaseCommand):
    help = (
        "Archive: import | verify | sign | export-witness | append-audit | export | legal-hold-sync"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="op", required=True)
        imp = sub.add_parser("import", help="import a JSONL or CSV file (schema: archive/items.py)")
        imp.add_argument("file")
        imp.add_argument("--account", type=int, required=True, help="social account id")
        imp.add_argument("--format", choices=["jsonl", "csv"], help="default: from the suffix")
        imp.add_argument("--batch-size", type=int, default=1000)
        imp.add_argument("--no-screen", action="store_true", help="skip policy screening")
        imp.add_argument("--quiet", action="store_true", help="no progress bar")
        ver = sub.add_parser("verify", help="recompute the whole log and report any tampering")
        ver.add_argument("--json", action="store_true", help="print the findings as JSON")
        ver.add_argument("--no-record", action="store_true", help="do not store the run")
        sub.add_parser("sign", help="sign a tree head now")
        wit = sub.add_parser("export-witness", help="write every signed tree head to a file")
        wit.add_argument("file")
        sub.add_parser("append-audit", help="append pending audit events to the log")
        lhs = sub.add_parser(
            "legal-hold-sync",
            help="put the blobs of held records on the blob store's legal hold now (and off "
            "those no active hold covers)",
        )
        lhs.add_argument("--json", action="store_true", help="print the run as JSON")
        lhs.add_argument("--quiet", action="store_true", help="no progress bar")
        exp = sub.add_parser(
            "export", help="write an eDiscovery package: --hold ID | --query Q | --account ID …"
        )
        export_command.add_export_arguments(exp)

    def handle(self, *args: Any, **opts: Any) -> None:
        with use_context(RequestContext(channel="cli")):
            try:
                getattr(self, "_" + opts["op"].replace("-", "_"))(opts)
            except DomainError as exc:
                raise CommandError(exc.message) from exc

    def _export(self, opts: dict[str, Any]) -> None:
        export_command.run_export(opts, stdout=self.stdout, stderr=self.stderr)

    def _import(self, opts: dict[str, Any]) -> None:
        from tqdm import tqdm

        from vetline.accounts.models import SocialAccount
        from vetline.archive.actions import ingest_batch

        path = Path(opts["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        account = SocialAccount.objects.filter(pk=opts["account"]).first()
        if account is None:
            raise CommandError(f"No social account with id {opts['account']}.")
        fmt = opts["format"] or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
        size = max(path.stat().st_size, 1)
        batch_size = max(1, min(opts["batch_size"], 10_000))
        source = f"import:{path.name}"[:100]
        totals = {"received": 0, "ingested": 0, "duplicates": 0, "quarantined": 0}

        def oversized(offset: int, length: int) -> None:
            self.stderr.write(
                f"The line at byte {offset:,} is {length:,} bytes, over the "
                f"{MAX_LINE_BYTES:,}-byte limit: its first {KEPT_PREFIX:,} bytes are quarantined."
            )

        stream: Iterator[tuple[Any, int]] = (
            iter_csv(path) if fmt == "csv" else iter_jsonl(path, on_oversized=oversized)
        )
        bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            disable=opts["quiet"],
            file=sys.stderr,
            desc=path.name,
        )
        batch: list[Any] = []
        position = 0

        def flush() -> None:
            report = ingest_batch(
                items=batch,
                account=account,
                source=source,
                actor=None,
                screen=False if opts["no_screen"] else None,
            )
            for key in totals:
                totals[key] += getattr(report, key)
            batch.clear()

        stopped: UnreadableFile | None = None
        try:
            for item, done in stream:
                batch.append(item)
                if len(batch) >= batch_size:
                    flush()
                bar.update(done - position)
                position = done
        except UnreadableFile as exc:
            stopped = exc
        if batch:
            flush()
        bar.update(size - position)
        bar.close()
        self.stdout.write(
            f"{totals['received']:,} items: {totals['ingested']:,} archived, "
            f"{totals['duplicates']:,} duplicates, {totals['quarantined']:,} quarantined"
        )
        if stopped is not None:
            raise CommandError(
                f"Stopped at {stopped}. Everything before it is archived; fix the file and "
                "import it again (items already archived are not duplicated)."
            )

    def _verify(self, opts: dict[str, Any]) -> None:
        from vetline.archive.actions import run_verification
        from vetline.archive.verification import verify_database

        if opts["no_record"]:
            result = verify_database()
        else:
            _, result = run_verification(trigger="cli")
        if opts["json"]:
            self.stdout.write(
                json.dumps({"ok": result.ok, "counts": result.counts, "findings": result.findings})
            )
        else:
            for line in result.lines():
                self.stdout.write(line)
        if not result.ok:
            raise CommandError("the archive does not verify")

    def _sign(self, opts: dict[str, Any]) -> None:
        from vetline.archive.actions import sign_tree_head

        head = sign_tree_head()
        self.stdout.write(
            f"signed tree head: size {head.tree_size}, root {bytes(head.root_hash).hex()}"
        )

    def _export_witness(self, opts: dict[str, Any]) -> None:
        from vetline.archive.actions import export_witness

        count = export_witness(path=Path(opts["file"]))
        self.stdout.write(f"{count} tree heads written to {opts['file']}")

    def _append_audit(self, opts: dict[str, Any]) -> None:
        from vetline.archive.actions import append_pending_audit_events

        self.stdout.write(f"{append_pending_audit_events()} audit events appended to the log")

    def _legal_hold_sync(self, opts: dict[str, Any]) -> None:
        from tqdm import tqdm

        from vetline.archive.retention_actions import sync_blob_legal_holds

        bar = tqdm(unit="blob", disable=opts["quiet"], file=sys.stderr, desc="legal holds")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        run = sync_blob_legal_holds(trigger="cli", progress=progress)
        bar.close()
        if run is None:
            self.stdout.write(
                "A reconciliation is already running; it was asked to go round again, "
                "so it will apply the current holds."
            )
            return
        summary = {
            "run_id": run.pk,
            "status": run.status,
            "store": run.store,
            "wanted": run.wanted_count,
            "asked": run.changed,
            "turned_on": run.turned_on,
            "turned_off": run.turned_off,
            "failed": run.failed,
            "failures": run.failures,
            "per_hold": run.per_hold,
        }
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"Reconciliation #{run.pk} ({run.store or 'no store'}): {run.wanted_count:,} "
                f"blob(s) of held records; {run.turned_on:,} put on legal hold, "
                f"{run.turned_off:,} taken off, {run.failed:,} refused or failed."
            )
            for f in run.failures[:10]:
                self.stdout.write(f"  {f['sha256']}: {f['outcome']}: {f['detail']}")
        if run.failed:
            raise CommandError(
                f"{run.failed} blob(s) could not be changed; the next run retries them"
            )
