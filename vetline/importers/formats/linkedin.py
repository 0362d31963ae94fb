"""LinkedIn "Get a copy of your data" export: CSV files in a zip (or its unpacked folder).

``Shares.csv`` (Date, ShareLink, ShareCommentary, SharedUrl, MediaUrl, Visibility),
``Comments.csv`` (Date, Link, Message), ``messages.csv`` (CONVERSATION ID, CONVERSATION TITLE,
FROM, SENDER PROFILE URL, TO, RECIPIENT PROFILE URLS, DATE, SUBJECT, CONTENT, FOLDER) and
``Profile.csv`` (First Name, Last Name: whose messages are outbound). Dates are UTC
(``2023-01-05 14:03:12`` or with `` UTC``). Each row's raw payload is its exact CSV bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

from vetline.importers.formats.base import (
    Entry,
    Owner,
    ReadReport,
    Source,
    b64,
    read_member_safely,
    short_hash,
    unreadable,
)

SHARES: Final = re.compile(r"(?:^|/)shares\.csv$", re.I)
COMMENTS: Final = re.compile(r"(?:^|/)comments\.csv$", re.I)
MESSAGES: Final = re.compile(r"(?:^|/)messages\.csv$", re.I)
PROFILE: Final = re.compile(r"(?:^|/)profile\.csv$", re.I)
MAX_FIELD_BYTES: Final = 16 * 1024 * 1024
MAX_PREAMBLE_LINES: Final = 10


class CsvStop(Exception):
    pass


def members(source: Source) -> list[str]:
    return [n for p in (PROFILE, SHARES, COMMENTS, MESSAGES) for n in source.find(p)]


def _date(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().removesuffix(" UTC")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%y, %I:%M %p", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC).isoformat()
        except ValueError:
            continue
    return value  # ingest quarantines it with "not an ISO 8601 time"


Row = tuple[int, dict[str, str] | None, bytes]


def iter_csv_rows(fh: BinaryIO, expected: str) -> Iterator[Row]:
    """(row number, {column: value} or None when the row is not UTF-8, exact bytes) per row.
    LinkedIn sometimes puts notes above the header; lines before the one holding the
    ``expected`` column are skipped."""
    csv.field_size_limit(MAX_FIELD_BYTES)
    consumed: list[bytes] = []

    def lines() -> Iterator[str]:
        first = True
        while line := fh.readline(MAX_FIELD_BYTES + 1):
            if first:
                line = line.removeprefix(b"\xef\xbb\xbf")
                first = False
            consumed.append(line)
            yield line.decode("utf-8", "surrogateescape")

    reader = csv.reader(lines())
    header: list[str] | None = None
    skipped = 0
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvStop(f"CSV row {number + 1}: {exc}") from exc
        raw = b"".join(consumed)
        consumed.clear()
        if header is None:
            if any(c.strip().lower() == expected.lower() for c in row):
                header = [c.strip() for c in row]
                continue
            skipped += 1
            if skipped > MAX_PREAMBLE_LINES:
                raise CsvStop(f"no header with a {expected!r} column")
            continue
        if not any(cell.strip() for cell in row):
            continue
        number += 1
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None, raw
            continue
        yield number, dict(zip(header, row, strict=False)), raw


def read(source: Source, owner: Owner, report: ReadReport) -> Iterator[Entry]:
    names = {owner.handle.lstrip("@"), owner.display_name} - {""}

    def rows(member: str, expected: str) -> Iterator[tuple[str, dict[str, str] | None, bytes]]:
        def run(fh: BinaryIO) -> Iterator[tuple[str, dict[str, str] | None, bytes]]:
            try:
                for number, row, raw in iter_csv_rows(fh, expected):
                    yield f"{member} row {number}", row, raw
            except CsvStop as exc:
                report.stops.append(f"{member}: stopped at {exc}")

        return read_member_safely(source, member, report, run)

    for member in source.find(PROFILE):
        for _, row, _raw in rows(member, "First Name"):
            if row:
                full = f"{row.get('First Name', '')} {row.get('Last Name', '')}".strip()
                if full:
                    names.add(full)
                    report.owner_names.add(full)
        report.skip("Profile.csv (used to tell sent from received)")

    for member in source.find(SHARES):
        for where, row, raw in rows(member, "ShareCommentary"):
            if row is None:
                yield unreadable(where, raw, "the row is not valid UTF-8")
                continue
            link = row.get("ShareLink") or ""
            yield Entry(
                where,
                raw,
                {
                    "remote_id": link or f"li-share:{short_hash(row)}",
                    "kind": "post" if not row.get("SharedUrl") else "share",
                    "direction": "outbound",
                    "author": owner.handle,
                    "text": row.get("ShareCommentary", ""),
                    "network_timestamp": _date(row.get("Date")),
                    "raw_payload_b64": b64(raw),
                },
            )

    for member in source.find(COMMENTS):
        for where, row, raw in rows(member, "Message"):
            if row is None:
                yield unreadable(where, raw, "the row is not valid UTF-8")
                continue
            link = row.get("Link") or ""
            item: dict[str, Any] = {
                "remote_id": f"li-comment:{short_hash(row.get('Date'), link, row.get('Message'))}",
                "kind": "comment",
                "direction": "outbound",
                "author": owner.handle,
                "text": row.get("Message", ""),
                "network_timestamp": _date(row.get("Date")),
                "raw_payload_b64": b64(raw),
            }
            if link:
                item["parent_remote_id"] = link[:300]
            yield Entry(where, raw, item)

    for member in source.find(MESSAGES):
        for where, row, raw in rows(member, "CONVERSATION ID"):
            if row is None:
                yield unreadable(where, raw, "the row is not valid UTF-8")
                continue
            conversation = row.get("CONVERSATION ID", "")
            sender = row.get("FROM", "")
            recipients = [r.strip() for r in (row.get("TO") or "").split(",") if r.strip()]
            outbound = sender in names
            yield Entry(
                where,
                raw,
                {
                    "remote_id": (
                        f"li-dm:{conversation}:{row.get('DATE')}:"
                        f"{short_hash(sender, row.get('CONTENT'))}"
                    ),
                    "kind": "direct_message",
                    "direction": "outbound" if outbound else "inbound",
                    "author": sender,
                    "participants": [p for p in [sender, *recipients] if p],
                    "conversation_id": conversation,
                    "thread_id": conversation,
                    "text": row.get("CONTENT", ""),
                    "network_timestamp": _date(row.get("DATE")),
                    "raw_payload_b64": b64(raw),
                },
            )
