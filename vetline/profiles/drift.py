"""Reading a captured profile snapshot and comparing it with the approved profile (plain Python,
no ORM).

Networks describe a profile in their own words: X says ``name`` and ``description``, Mastodon
``display_name`` and ``note`` (HTML), Bluesky ``displayName``, the sandbox ``display_name`` and
``bio``. :func:`live_fields` reads the snapshot's raw payload (the network's bytes, as archived)
into Vetline's field names. A field the snapshot does not carry is *not captured* and is not
compared: Vetline never reports drift on something it could not see.

The photo is the SHA-256 of the avatar's bytes: an explicit ``avatar_sha256`` / ``photo_sha256``
in the payload, else the snapshot's attachment (capture fetches the avatar, and only the avatar,
into the blob store: a profile snapshot's ``attachments`` is ``[avatar sha]`` or ``[]``). An
avatar the payload names but that is not among the attachments was *not fetched* (too large,
gone, the network failing): the photo is not seen, never "no photo". A payload that reports the
avatar field empty, or only the network's placeholder, has no photo (docs/profiles.md §4).
"""

from __future__ import annotations

import base64
import binascii
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
#: where networks name the profile picture: Mastodon and Bluesky ``avatar`` (a URL, a blob), X
#: ``profile_image_url``, Instagram ``profile_picture_url``, Facebook ``picture``, LinkedIn
#: ``profilePicture`` (members) and ``logoV2`` (organizations), a generic ``avatar_url``
_AVATAR_KEYS: Final = (
    "avatar",
    "profile_image_url",
    "profile_picture_url",
    "picture",
    "profilePicture",
    "logoV2",
    "avatar_url",
)
#: the network's stand-in when an account has no picture of its own: not a photo
_PLACEHOLDER_MARKS: Final = ("/avatars/original/missing.png", "/default_profile_images/")
#: the record type of a Bluesky profile, whose ``avatar`` is absent when there is none
_BSKY_PROFILE: Final = "app.bsky.actor.profile"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

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
    # wrappers some networks use (Bluesky: {"uri", "cid", "value": <the profile record>})
    for key in ("profile", "data", "user", "account", "value"):
        inner = body.get(key)
        if isinstance(inner, Mapping) and not _first_str(body, _NAME_KEYS):
            return inner
    return body


def is_placeholder_avatar(url: str) -> bool:
    """Whether an avatar URL is the network's default picture (Mastodon's ``missing.png``, X's
    ``default_profile_images``): the account has no picture of its own."""
    return any(mark in url for mark in _PLACEHOLDER_MARKS)


def _avatar_named(body: Mapping[str, Any]) -> bool | None:
    """Whether the payload names a picture of the account's own (True), says it has none
    (False: the field empty, null or a placeholder), or does not report it (None)."""
    for key in _AVATAR_KEYS:
        if key not in body:
            continue
        value = body[key]
        if isinstance(value, str):
            return bool(value.strip()) and not is_placeholder_avatar(value)
        if isinstance(value, Mapping):
            data = value.get("data")  # Facebook: {"data": {"url": …, "is_silhouette": …}}
            if isinstance(data, Mapping) and data.get("is_silhouette") is True:
                return False
            return bool(value)
        if value is None:
            return False
        return None
    if body.get("$type") == _BSKY_PROFILE:
        return False  # a Bluesky profile record without an avatar has none
    return None


def _cid_sha256(cid: str) -> str | None:
    """The SHA-256 a Bluesky blob's CID names (CIDv1, base32, raw codec, sha2-256), or None."""
    if not cid.startswith("b"):
        return None
    body = cid[1:].upper()
    try:
        data = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(data) != 36 or data[:4] != b"\x01\x55\x12\x20":
        return None
    return data[4:].hex()


def _photo(body: Mapping[str, Any], attachments: Sequence[str]) -> str | None:
    explicit = _first_str(body, _PHOTO_KEYS)
    if explicit:
        return explicit.lower()
    named = _avatar_named(body)
    if named is None:
        return None
    if not named:
        return ""
    names = [a.lower() for a in attachments if isinstance(a, str)]
    fetched = [a for a in names if _SHA256_HEX.fullmatch(a)]
    avatar = body.get("avatar")
    if isinstance(avatar, Mapping):  # a Bluesky blob: its CID says which bytes it is
        link = avatar.get("ref")
        cid = link.get("$link") if isinstance(link, Mapping) else None
        expected = _cid_sha256(cid) if isinstance(cid, str) else None
        if expected is not None:
            return expected if expected in fetched else None
    return fetched[0] if fetched else None  # named but not fetched: not seen


def live_fields(
    raw_payload: bytes, *, text: str = "", attachments: Sequence[str] = ()
) -> ProfileFields:
    """The profile fields a snapshot carries. When its raw payload is not a JSON object, the
    record's text ("display name, newline, bio", as capture writes it) is used instead.
    ``attachments``: the snapshot's (the SHA-256 of its avatar, when capture fetched it)."""
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
    photo = _photo(body, attachments)
    return ProfileFields(
        display_name=_first_str(body, _NAME_KEYS),
        bio=bio,
        title=_first_str(body, _TITLE_KEYS),
        links=_links(body),
        photo=photo,
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
