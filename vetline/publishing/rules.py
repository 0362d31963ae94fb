"""Pure rules of the line of authority (no ORM): four-eyes, content hashing, networks' length
and media limits, schedules, and revision diffs. Tested and benchmarked on their own."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

# --- Four-eyes ---------------------------------------------------------------------------------


def four_eyes_violation(
    *,
    author_id: int,
    acting_id: int,
    on_behalf_of_id: int | None,
    prior: Iterable[tuple[int, int | None]],
) -> str | None:
    """Why ``acting_id`` (possibly for ``on_behalf_of_id``) may not decide on a revision by
    ``author_id`` that already has the decisions ``prior`` ((approver, on behalf of) pairs);
    None when four-eyes allows it."""
    if acting_id == author_id:
        return "Authors never approve their own work."
    if on_behalf_of_id is not None and on_behalf_of_id == author_id:
        return "Nobody approves on the author's behalf."
    if on_behalf_of_id is not None and on_behalf_of_id == acting_id:
        return "A delegate acts for someone else."
    people = {acting_id} | ({on_behalf_of_id} if on_behalf_of_id is not None else set())
    for approver, behalf in prior:
        if approver in people or (behalf is not None and behalf in people):
            return "One person approves at most one step of the same revision."
    return None


# --- Content hashing ---------------------------------------------------------------------------


def content_sha256(content: Mapping[str, Any]) -> str:
    """The SHA-256 of canonical JSON: what an approval is pinned to."""
    data = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


# --- Networks' limits --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NetworkLimits:
    max_chars: int
    max_media: int
    max_media_bytes: int
    media_types: frozenset[str]


_IMAGES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_VIDEO: Final = frozenset({"video/mp4"})
MB: Final = 1024 * 1024

#: Published limits of each network's API for one post (text in characters).
LIMITS: Final[dict[str, NetworkLimits]] = {
    "x": NetworkLimits(280, 4, 5 * MB, _IMAGES | _VIDEO),
    "linkedin": NetworkLimits(3000, 9, 10 * MB, _IMAGES | _VIDEO),
    "facebook": NetworkLimits(63206, 10, 10 * MB, _IMAGES | _VIDEO),
    "instagram": NetworkLimits(2200, 10, 8 * MB, frozenset({"image/jpeg", "image/png"}) | _VIDEO),
    "mastodon": NetworkLimits(500, 4, 16 * MB, _IMAGES | _VIDEO),
    "bluesky": NetworkLimits(300, 4, 1 * MB, _IMAGES),
    "internal": NetworkLimits(10000, 10, 10 * MB, _IMAGES | _VIDEO),
    "sandbox": NetworkLimits(500, 4, 5 * MB, _IMAGES | _VIDEO),
}
DEFAULT_LIMITS: Final = NetworkLimits(280, 4, 5 * MB, _IMAGES)
#: Nothing larger is accepted at all, whatever the network.
MAX_UPLOAD_BYTES: Final = 16 * MB


def limits_for(network: str) -> NetworkLimits:
    return LIMITS.get(network, DEFAULT_LIMITS)


@dataclass(frozen=True, slots=True)
class MediaInfo:
    mime_type: str
    size_bytes: int


def sniff_mime(content: bytes) -> str | None:
    """The media type from the file's own bytes (its magic number), not from its name."""
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    if content[4:8] == b"ftyp":
        return "video/mp4"
    return None


def check_target(*, network: str, label: str, text: str, media: Sequence[MediaInfo]) -> list[str]:
    """Sentences saying what breaks the network's limits (empty: fine)."""
    lim = limits_for(network)
    problems = []
    if len(text) > lim.max_chars:
        problems.append(
            f"{label}: the text has {len(text):,} characters; the network takes at most "
            f"{lim.max_chars:,}."
        )
    if len(media) > lim.max_media:
        problems.append(f"{label}: at most {lim.max_media} attachments ({len(media)} given).")
    for i, m in enumerate(media, start=1):
        if m.mime_type not in lim.media_types:
            problems.append(
                f"{label}: attachment {i} is {m.mime_type}, which the network does not take "
                f"(it takes {', '.join(sorted(lim.media_types))})."
            )
        if m.size_bytes > lim.max_media_bytes:
            problems.append(
                f"{label}: attachment {i} is {m.size_bytes / MB:.1f} MB; the network takes at "
                f"most {lim.max_media_bytes / MB:.0f} MB."
            )
    return problems


# --- Schedules ---------------------------------------------------------------------------------

MAX_SCHEDULE_AHEAD: Final = dt.timedelta(days=366)
SCHEDULE_GRACE: Final = dt.timedelta(minutes=1)


class ScheduleError(ValueError):
    pass


def parse_schedule(value: str | dt.datetime | None, *, now: dt.datetime) -> dt.datetime | None:
    """A publishing time from ISO 8601 with an explicit zone, in the future and within a year.
    None or "" means "as soon as it is approved"."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ScheduleError(
                f"{value[:40]!r} is not a date and time; use ISO 8601 with a zone, e.g. "
                "2026-03-01T09:30:00+01:00."
            ) from None
    else:
        when = value
    if when.tzinfo is None or when.utcoffset() is None:
        raise ScheduleError(
            "The time has no time zone; add one (e.g. +01:00 or Z) so it is not ambiguous."
        )
    when = when.astimezone(dt.UTC)
    if when < now - SCHEDULE_GRACE:
        raise ScheduleError("The time is in the past.")
    if when > now + MAX_SCHEDULE_AHEAD:
        raise ScheduleError("Posts can be scheduled at most a year ahead.")
    return when


# --- Diffs -------------------------------------------------------------------------------------


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(kind, text) pieces, kind one of "same", "del", "add", for showing a revision's changes
    word by word (whitespace kept)."""
    import re

    a = re.findall(r"\S+|\s+", old)
    b = re.findall(r"\S+|\s+", new)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            out.append(("add", "".join(b[j1:j2])))
    return out


def highlight(text: str, spans: Iterable[tuple[int, int, str]]) -> list[tuple[str, str]]:
    """(text, severity-or-"") pieces of ``text`` with the hit spans marked (overlaps merged,
    the more severe first)."""
    order = {"block": 4, "escalate": 3, "warn": 2, "info": 1}
    marks: list[str] = [""] * len(text)
    for start, end, severity in spans:
        for i in range(max(0, start), min(len(text), end)):
            if order.get(severity, 0) > order.get(marks[i], 0):
                marks[i] = severity
    pieces: list[tuple[str, str]] = []
    for ch, mark in zip(text, marks, strict=True):
        if pieces and pieces[-1][1] == mark:
            pieces[-1] = (pieces[-1][0] + ch, mark)
        else:
            pieces.append((ch, mark))
    return pieces
