"""What every format reader shares (pure Python, no ORM): the entry it yields, the input it
reads (a zip, a tar, a folder or a single file, with byte-level progress), and small helpers.

A reader turns the export into :class:`Entry` objects, one per archivable thing. An entry
either carries an ingest item (see :mod:`vetline.archive.items`), whose ``raw_payload_b64`` is
the entry's original bytes, or, when it cannot even be read as the format's JSON/CSV/CBOR,
only those bytes: ingest then quarantines it with the reason (invalid UTF-8, invalid JSON…).
Mapping is deliberately lenient: a missing id or a badly typed field is passed on as is, and
ingest's validation quarantines the item with a precise reason. Nothing is dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import io
import json
import re
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, TypeVar

from vetline.importers.jsonstream import JsonStream, Oversized, StreamError, Truncated

Progress = Callable[[int], None]  # bytes read since the last call
T = TypeVar("T")


@dataclass(slots=True)
class Entry:
    where: str  # "data/tweets.js #12": how a person finds it in the export
    raw: bytes  # the entry's original bytes
    item: dict[str, Any] | None = None  # None: not readable; ingest quarantines ``raw``
    note: str = ""  # the importer's own word on a problem with this entry


@dataclass
class ReadReport:
    """What a reader noticed beyond the entries: where it had to stop reading a file, and what
    it read but does not archive (not communications, e.g. Bluesky follows), by type."""

    stops: list[str] = field(default_factory=list)
    not_archived: dict[str, int] = field(default_factory=dict)
    owner_names: set[str] = field(default_factory=set)

    def skip(self, what: str) -> None:
        self.not_archived[what] = self.not_archived.get(what, 0) + 1


@dataclass(frozen=True)
class Owner:
    """The Vetline account the export belongs to (direction is relative to it)."""

    handle: str
    display_name: str = ""
    network_id: str = ""  # the network's id for the account, when known


class _Counting(io.RawIOBase):
    def __init__(self, inner: IO[bytes], progress: Progress) -> None:
        self._inner = inner
        self._progress = progress

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        if data:
            self._progress(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Source:
    """The export: a zip (ZIP64 included), a tar (optionally gzip), a folder, or one file.
    Member names are POSIX paths relative to the export's root."""

    def __init__(self, path: Path, *, progress: Progress | None = None) -> None:
        self.path = path
        self.progress: Progress = progress or (lambda n: None)
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        self._sizes: dict[str, int] = {}
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file():
                    self._sizes[p.relative_to(path).as_posix()] = p.stat().st_size
        elif zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            for info in self._zip.infolist():
                if not info.is_dir():
                    self._sizes[info.filename] = info.file_size
        elif _is_tar(path):
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed in close())
            for member in self._tar.getmembers():
                if member.isfile():
                    self._sizes[member.name.removeprefix("./")] = member.size
        elif path.is_file():
            self._sizes[path.name] = path.stat().st_size
        else:
            raise FileNotFoundError(str(path))

    def names(self) -> list[str]:
        return list(self._sizes)

    def size(self, name: str) -> int:
        return self._sizes[name]

    def find(self, pattern: re.Pattern[str]) -> list[str]:
        """Members whose path matches ``pattern`` (searched), in natural order (part2 < part10)."""
        return sorted(
            (n for n in self._sizes if pattern.search(n)),
            key=lambda n: _natural(n.rsplit(".", 1)[0]),  # tweets.js before tweets-part1.js
        )

    def open(self, name: str) -> BinaryIO:
        if self._zip is not None:
            inner: IO[bytes] = self._zip.open(name)
        elif self._tar is not None:
            extracted = self._tar.extractfile(self._tar.getmember(name))
            if extracted is None:
                raise FileNotFoundError(name)
            inner = extracted
        elif self.path.is_dir():
            inner = (self.path / name).open("rb")
        else:
            inner = self.path.open("rb")
        return io.BufferedReader(_Counting(inner, self.progress), buffer_size=256 * 1024)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()


def _is_tar(path: Path) -> bool:
    try:
        return path.is_file() and tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError):
        return False


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------- streaming JSON


def json_entries(
    stream: JsonStream, member: str, report: ReadReport, *, label: str = ""
) -> Iterator[tuple[str, bytes, Any]]:
    """(where, bytes, parsed or None) for each element of the array the stream is positioned
    on. A truncated or unreadable file stops here with a line in ``report.stops``; the partial
    entry is yielded with parsed None (so it is quarantined, not lost)."""
    number = 0  # entries read completely
    label = label or member
    try:
        stream.begin_array()
        while stream.next_element():
            raw = stream.read_value()
            number += 1
            try:
                parsed: Any = json.loads(raw)
            except ValueError:
                parsed = None
            yield f"{label} #{number}", raw, parsed
    except Truncated as exc:
        report.stops.append(
            f"{member}: stopped at byte {exc.offset:,}, in entry #{number + 1}: {exc.message}; "
            f"the {number:,} entries before it were read"
        )
        if exc.partial:
            yield f"{label} #{number + 1} (truncated)", exc.partial, None
    except (StreamError, Oversized) as exc:
        report.stops.append(
            f"{member}: stopped at byte {exc.offset:,}, after entry #{number}: {exc.message}"
        )


def read_member_safely(
    source: Source, member: str, report: ReadReport, body: Callable[[BinaryIO], Iterator[T]]
) -> Iterator[T]:
    """Run ``body`` over the opened member; a corrupt member (bad CRC, broken compression,
    I/O error) stops this member with a line in ``report.stops`` and the import goes on."""
    try:
        with source.open(member) as fh:
            yield from body(fh)
    except StreamError as exc:
        report.stops.append(f"{member}: stopped at byte {exc.offset:,}: {exc.message}")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        report.stops.append(f"{member}: cannot be read further: {exc}")
    except Exception as exc:  # zlib.error and friends: a corrupt member, never a crash
        if type(exc).__module__ in ("zlib", "bz2", "lzma"):
            report.stops.append(f"{member}: corrupt compressed data: {exc}")
        else:
            raise


def unreadable(where: str, raw: bytes, why: str) -> Entry:
    return Entry(where=where, raw=raw, item=None, note=why)


# --------------------------------------------------------------------------- helpers


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def short_hash(*parts: Any) -> str:
    """A deterministic id fragment for entries the network gives no id (same input, same id)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, ensure_ascii=False, sort_keys=True, default=str).encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:24]


def iso_from_epoch(value: Any, *, millis: bool = False) -> Any:
    """An epoch timestamp as ISO 8601 UTC; anything else is passed on for ingest to judge."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    try:
        return dt.datetime.fromtimestamp(value / 1000 if millis else value, dt.UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return str(value)


def fix_mojibake(value: Any) -> Any:
    """Facebook and Instagram JSON escape each UTF-8 *byte* as a code point (``"é"`` arrives as
    ``"\\u00c3\\u00a9"``). Re-encode as Latin-1 and decode as UTF-8; strings that are not such
    mojibake are kept as they are."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                return value.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                return value
        return value
    if isinstance(value, list):
        return [fix_mojibake(v) for v in value]
    if isinstance(value, dict):
        return {fix_mojibake(k): fix_mojibake(v) for k, v in value.items()}
    return value


_BREAK = re.compile(r"<\s*(br|/p|/li|/h\d)\s*/?\s*>", re.I)
_TAG = re.compile(r"<[^>]*>")


def html_to_text(value: Any) -> Any:
    """The text of an HTML fragment (Mastodon ``content``), for screening and search. The HTML
    itself stays in the raw payload."""
    if not isinstance(value, str):
        return value
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", value))).strip()


def basename(name: str) -> str:
    return PurePosixPath(name).name


def parent_dir(name: str) -> str:
    return PurePosixPath(name).parent.name
