"""CSV of exported records: one row per record version, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from typing import IO, Final

from vetline.archive.export.view import RecordView, eml_path, iso

COLUMNS: Final = (
    "record_id",
    "log_index",
    "network",
    "account_id",
    "account",
    "remote_id",
    "version",
    "previous_log_index",
    "record_class",
    "kind",
    "direction",
    "author",
    "participants",
    "conversation_id",
    "thread_id",
    "parent_remote_id",
    "network_timestamp",
    "captured_at",
    "adopted",
    "approval_ref",
    "source",
    "raw_payload_sha256",
    "attachments",
    "text",
    "eml_file",
)
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: str) -> str:
    """Spreadsheet formula injection: a cell starting with = + - @ (or a tab or line break
    before one) is shown as text, as in the audit export."""
    return "'" + value if value[:1] in _FORMULA_STARTS else value


def row(view: RecordView) -> list[str]:
    values: list[str] = [
        str(view.record_id),
        str(view.log_index),
        view.network,
        str(view.account_id),
        view.account_handle,
        view.remote_id,
        str(view.version),
        "" if view.previous_log_index is None else str(view.previous_log_index),
        view.record_class,
        view.kind,
        view.direction,
        view.author,
        "|".join(view.participants),
        view.conversation_id,
        view.thread_id,
        view.parent_remote_id,
        iso(view.network_timestamp),
        iso(view.captured_at),
        "true" if view.adopted else "false",
        view.approval_ref or "",
        view.source,
        view.raw_payload_sha256,
        "|".join(view.attachments),
        view.text,
        eml_path(view.log_index),
    ]
    return [safe_cell(v) for v in values]


class CsvWriter:
    """Writes the header, then one row per :meth:`write` call, straight to the file."""

    def __init__(self, fh: IO[str]) -> None:
        self._writer = csv.writer(fh, lineterminator="\r\n")
        self._writer.writerow(COLUMNS)

    def write(self, view: RecordView) -> None:
        self._writer.writerow(row(view))
