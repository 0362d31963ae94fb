"""Reading a captured profile snapshot and comparing it with the approved profile (plain Python,
no ORM).

Networks describe a profile in their own words: X says ``name`` and ``description``, Mastodon
``display_name`` and ``note`` (HTML), Bluesky ``displayName``, the sandbox ``display_name`` and
``bio``. :func:`live_fields` reads the snapshot's raw payload (the network's bytes, as archived)
into Vetline's field names. A field the snapshot does not carry is *not captured* and is not
compared: Vetline never reports drift on something it could not see. The photo is compared only
when the connector recorded the avatar's SHA-256 (``avatar_sha256``); an avatar URL alone says
nothing about the picture behind it (docs/profiles.md).
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

FIELDS: Final = ("display_name", "bio", "title", "links", "photo")
FIELD_LABELS: Final = {
    "display_name": "Display name",
    "bio": "Headline / bio",
    "title": "Title",
    "links": "Links",
    "photo": "Photo",
}

_NAME_KEYS: Final = ("display_name", "displayName", "name", "localizedName")
_BIO_KEYS: Final = ("bio", "description", "note", "about", "summary", "headline")
_TITLE_KEYS: Final = ("title", "job_title", "occupation")
_LINK_KEYS: Final = ("url", "website", "link")
_PHOTO_KEYS: Final = ("avatar_sha256", "photo_sha256")

_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<\s*(br|/p)\s*/?\s*>", re.I)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class ProfileFields:
    """A profile in Vetline's terms. ``None`` means "not captured" (live side only)."""

    display_name: str | None = None
    bio: str | None = None
    title: str | None = None
    links: tuple[str, ...] | None = None
    photo: str | None = None  # SHA-256 hex of the picture

    def get(self, name: str) -> Any:
        return getattr(self, name)


@dataclass(frozen=True, slots=True)
class FieldDifference:
    field: str
    approved: str
    live: str

    @property
    def label(self) -> str:
        return FIELD_LABELS[self.field]

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "approved": self.approved, "live": self.live}


def normalise_text(value: str) -> str:
    """What counts as "the same text": Unicode NFC, whitespace runs as one space, trimmed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()


def normalise_link(value: str) -> str:
    """Scheme and host are case-insensitive and a trailing slash is not a change."""
    value = value.strip()
    try:
        parts = urlsplit(value if "://" in value else f"https://{value}")
    except ValueError:
        return value
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _html_to_text(value: str) -> str:
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", value)))


def _first_str(body: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str):
            return value
    return None


def _links(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    found: list[str] = []
    seen = False
    for key in _LINK_KEYS:
        value = body.get(key)
        if isinstance(value, str):
            seen = True
            if value.strip():
                found.append(value)
    links = body.get("links")
    if isinstance(links, list):
        seen = True
        found += [v for v in links if isinstance(v, str) and v.strip()]
    fields = body.get("fields")  # Mastodon: [{"name": ..., "value": "<a href=...>"}]
    if isinstance(fields, list):
        seen = True
        for f in fields:
            if isinstance(f, Mapping) and isinstance(f.get("value"), str):
                text = _html_to_text(f["value"]).strip()
                if "." in text and " " not in text:
                    found.append(text)
    return tuple(found) if seen else None


def _profile_body(body: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("profile", "data", "user", "account"):  # wrappers some networks use
        inner = body.get(key)
        if isinstance(inner, Mapping) and not _first_str(body, _NAME_KEYS):
            return inner
    return body


def live_fields(raw_payload: bytes, *, text: str = "") -> ProfileFields:
    """The profile fields a snapshot carries. When its raw payload is not a JSON object, the
    record's text ("display name, newline, bio", as capture writes it) is used instead."""
    body: Any = None
    try:
        body = json.loads(raw_payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, Mapping):
        name, _, rest = text.partition("\n")
        return ProfileFields(display_name=name, bio=rest)
    body = _profile_body(body)
    bio = _first_str(body, _BIO_KEYS)
    if bio is not None and _first_str(body, _BIO_KEYS[:2]) is None and "note" in body:
        bio = _html_to_text(bio)  # Mastodon's note is HTML
    photo = _first_str(body, _PHOTO_KEYS)
    return ProfileFields(
        display_name=_first_str(body, _NAME_KEYS),
        bio=bio,
        title=_first_str(body, _TITLE_KEYS),
        links=_links(body),
        photo=photo.lower() if photo else None,
    )


def compare(approved: ProfileFields, live: ProfileFields) -> list[FieldDifference]:
    """The fields where the live profile differs from the approved one, in :data:`FIELDS`
    order. Fields the live snapshot did not capture are skipped."""
    out: list[FieldDifference] = []
    for name in FIELDS:
        live_value = live.get(name)
        if live_value is None:
            continue
        approved_value = approved.get(name)
        if name == "links":
            a = sorted({normalise_link(v) for v in approved_value or () if v.strip()})
            b = sorted({normalise_link(v) for v in live_value if v.strip()})
            if a != b:
                out.append(FieldDifference(name, "\n".join(a), "\n".join(b)))
        elif name == "photo":
            if (approved_value or "") != live_value:
                out.append(FieldDifference(name, approved_value or "", live_value))
        elif normalise_text(approved_value or "") != normalise_text(live_value):
            out.append(FieldDifference(name, approved_value or "", live_value))
    return out
