"""The ingest item schema and its validation (pure Python, no ORM).

An item is a JSON object (or the raw bytes of one, e.g. a JSONL line) with these fields:

=================  ========  ==========================================================
field              required  type and meaning
=================  ========  ==========================================================
remote_id          yes       string: the item's id on the network
kind               yes       post, reply, comment, share, direct_message,
                             profile_snapshot, edit, deletion, reaction
direction          yes       outbound (from our account) or inbound (third party)
text                         string, at most 1,000,000 UTF-8 bytes (default "")
author                       string: the author's handle
participants                 list of strings (handles)
conversation_id              string
thread_id                    string
parent_remote_id             string: the item this one answers or edits
attachments                  list of SHA-256 hex digests of blobs already stored
network_timestamp            ISO 8601 time with a zone (``Z`` or ``+01:00``), or null
version                      integer >= 1. Default 1; for ``edit`` and ``deletion``
                             the next version of ``remote_id`` (a re-sent identical
                             edit is recognised as a duplicate)
adopted                      boolean; default true for outbound, false for inbound
                             (third-party content is non-adopted unless adopted)
record_class                 string (default ``business_communication``)
approval_ref                 string: the Vetline approval, when published through it
raw_payload_b64              base64: the network's payload exactly as received
raw                          the network's payload as JSON (used when no
                             ``raw_payload_b64``); without either, the item itself as
                             received is the raw payload
=================  ========  ==========================================================

Limits: text 1 MB, raw payload 10 MB. Strings may not contain NUL or invalid Unicode.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

MAX_TEXT_BYTES: Final = 1_000_000
MAX_PAYLOAD_BYTES: Final = 10_000_000
MAX_SHORT: Final = 300
KINDS: Final = frozenset(
    {
        "post",
        "reply",
        "comment",
        "share",
        "direct_message",
        "profile_snapshot",
        "edit",
        "deletion",
        "reaction",
    }
)
VERSIONED_KINDS: Final = frozenset({"edit", "deletion"})
DIRECTIONS: Final = frozenset({"outbound", "inbound"})
FIELDS: Final = frozenset(
    {
        "remote_id",
        "kind",
        "direction",
        "text",
        "author",
        "participants",
        "conversation_id",
        "thread_id",
        "parent_remote_id",
        "attachments",
        "network_timestamp",
        "version",
        "adopted",
        "record_class",
        "approval_ref",
        "raw_payload_b64",
        "raw",
    }
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
# json.dumps(value, ensure_ascii=False, separators=(",", ":")), without building an encoder
# each call
_RAW_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_RECORD_CLASS = re.compile(r"[a-z0-9_]{1,40}")


class ItemError(ValueError):
    """Why an item cannot be archived: a stable code and a sentence."""

    def __init__(self, code: str, message: str, *, remote_id: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.remote_id = remote_id


@dataclass(slots=True)
class CleanItem:
    remote_id: str
    kind: str
    direction: str
    text: str
    author: str
    participants: list[str]
    conversation_id: str
    thread_id: str
    parent_remote_id: str
    attachments: list[str]
    network_timestamp: dt.datetime | None
    version: int | None  # None: assign (1, or the next version for edits and deletions)
    adopted: bool
    record_class: str
    approval_ref: str | None
    raw_payload: bytes
    raw_payload_sha256: str


def raw_bytes_of(item: Mapping[str, Any] | bytes) -> bytes:
    """The bytes kept for an item in quarantine: as received, or its JSON."""
    if isinstance(item, bytes | bytearray | memoryview):
        return bytes(item)
    return json.dumps(item, ensure_ascii=True, default=repr, separators=(",", ":")).encode()


def parse_raw(data: bytes) -> dict[str, Any]:
    """Bytes of one item (a JSONL line) to its object."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ItemError(
            "invalid_utf8", f"the item is not valid UTF-8 (byte {exc.start}: {exc.reason})"
        ) from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ItemError("invalid_json", f"the item is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ItemError("wrong_type", "the item must be a JSON object")
    return value


def _string(
    item: Mapping[str, Any],
    key: str,
    *,
    required: bool = False,
    limit: int = MAX_SHORT,
    remote_id: str = "",
) -> str:
    value = item.get(key)
    if value is None:
        if required:
            raise ItemError("missing_field", f"{key} is required", remote_id=remote_id)
        return ""
    if not isinstance(value, str):
        raise ItemError(
            "wrong_type", f"{key} must be a string, not {type(value).__name__}", remote_id=remote_id
        )
    _check_text(key, value, remote_id)
    if required and not value.strip():
        raise ItemError("missing_field", f"{key} is required", remote_id=remote_id)
    if len(value) > limit:
        raise ItemError(
            "oversized", f"{key} is longer than {limit:,} characters", remote_id=remote_id
        )
    return value


def _check_text(key: str, value: str, remote_id: str) -> bytes:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ItemError(
            "invalid_unicode",
            f"{key} holds invalid Unicode (a lone surrogate)",
            remote_id=remote_id,
        ) from exc
    if "\x00" in value:
        raise ItemError("nul_character", f"{key} contains a NUL character", remote_id=remote_id)
    return encoded


def _string_list(item: Mapping[str, Any], key: str, remote_id: str) -> list[str]:
    value = item.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ItemError("wrong_type", f"{key} must be a list of strings", remote_id=remote_id)
    if len(value) > 10_000:
        raise ItemError("oversized", f"{key} has more than 10,000 entries", remote_id=remote_id)
    for v in value:
        _check_text(key, v, remote_id)
        if len(v) > MAX_SHORT:
            raise ItemError("oversized", f"an entry of {key} is too long", remote_id=remote_id)
    return list(value)


def parse_timestamp(value: Any, key: str, remote_id: str = "") -> dt.datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ItemError("wrong_type", f"{key} must be an ISO 8601 string", remote_id=remote_id)
    try:
        parsed = dt.datetime.fromisoformat(
            value.replace("Z", "+00:00", 1) if value.endswith("Z") else value
        )
    except ValueError as exc:
        raise ItemError(
            "invalid_timestamp",
            f"{key} is not an ISO 8601 time: {value[:40]!r}",
            remote_id=remote_id,
        ) from exc
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ItemError(
            "invalid_timestamp", f"{key} has no time zone (add Z or an offset)", remote_id=remote_id
        )
    return parsed.astimezone(dt.UTC)


def clean_item(item: Mapping[str, Any], *, received: bytes | None = None) -> CleanItem:
    """Validate one item. ``received`` is the item's bytes when it arrived as bytes.

    A plainly valid item (a dict whose every value is well-formed) takes a shorter path than
    one that is not: that path only accepts what the full checks accept, with the same result
    (``tests/test_items.py`` checks it), and hands anything else to the full checks, which say
    what is wrong."""
    if type(item) is dict:
        try:
            plain = _clean_plain(item, received)
        except ItemError:
            plain = None
        if plain is not None:
            return plain
    return clean_item_checked(item, received=received)


_PLAIN_SHORT: Final = ("author", "conversation_id", "thread_id", "parent_remote_id")


def _clean_plain(item: dict[str, Any], received: bytes | None) -> CleanItem | None:
    """:func:`clean_item` of an item whose every value is plainly valid, None otherwise."""
    if not item.keys() <= FIELDS:
        return None
    get = item.get
    remote_id = get("remote_id")
    kind = get("kind")
    direction = get("direction")
    if (
        type(remote_id) is not str
        or type(kind) is not str
        or type(direction) is not str
        or kind not in KINDS
        or direction not in DIRECTIONS
        or len(remote_id) > MAX_SHORT
        or not remote_id.strip()
    ):
        return None
    strings = [remote_id]
    short: list[str] = []
    for key in _PLAIN_SHORT:
        value = get(key)
        if value is None:
            value = ""
        elif type(value) is not str or len(value) > MAX_SHORT:
            return None
        short.append(value)
        strings.append(value)
    lists: list[list[str]] = []
    for key in ("participants", "attachments"):
        value = get(key)
        if value is None:
            value = []
        elif type(value) is not list or len(value) > 10_000:
            return None
        for entry in value:
            if type(entry) is not str or len(entry) > MAX_SHORT:
                return None
        strings.extend(value)
        lists.append(list(value))
    participants, attachments = lists
    for digest in attachments:
        if not _HEX64.fullmatch(digest):
            return None
    record_class = get("record_class")
    if record_class is None or record_class == "":
        record_class = "business_communication"
    elif type(record_class) is not str or not _RECORD_CLASS.fullmatch(record_class):
        return None
    approval_ref = get("approval_ref")
    if approval_ref is not None:
        if type(approval_ref) is not str or len(approval_ref) > 100:
            return None
        strings.append(approval_ref)
    version = get("version")
    if version is not None and (type(version) is not int or not 1 <= version < 2**31):
        return None
    adopted = get("adopted")
    if adopted is None:
        adopted = direction == "outbound"
    elif type(adopted) is not bool:
        return None
    text = get("text", "")
    if text is None:
        text = ""
    elif type(text) is not str:
        return None
    # no NUL, no lone surrogate (which cannot be encoded), in any string: in one pass
    joined = "\x01".join(strings)
    if "\x00" in joined or "\x00" in text:
        return None
    try:
        if not joined.isascii():
            joined.encode("utf-8")
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate
        return None
    if size > MAX_TEXT_BYTES:
        return None
    raw_payload = _raw_payload(item, received, remote_id)
    if len(raw_payload) > MAX_PAYLOAD_BYTES:
        return None
    author, conversation_id, thread_id, parent_remote_id = short
    return CleanItem(
        remote_id=remote_id,
        kind=kind,
        direction=direction,
        text=text,
        author=author,
        participants=participants,
        conversation_id=conversation_id,
        thread_id=thread_id,
        parent_remote_id=parent_remote_id,
        attachments=attachments,
        network_timestamp=parse_timestamp(get("network_timestamp"), "network_timestamp", remote_id),
        version=version,
        adopted=adopted,
        record_class=record_class,
        approval_ref=approval_ref,
        raw_payload=raw_payload,
        raw_payload_sha256=hashlib.sha256(raw_payload).hexdigest(),
    )


def clean_item_checked(item: Mapping[str, Any], *, received: bytes | None = None) -> CleanItem:
    """:func:`clean_item` with every check spelt out, in the order its errors are reported."""
    if not isinstance(item, Mapping):
        raise ItemError("wrong_type", "the item must be a JSON object")
    raw_id = item.get("remote_id")
    remote_id = raw_id[:MAX_SHORT] if isinstance(raw_id, str) else ""
    unknown = set(item) - FIELDS
    if unknown:
        raise ItemError(
            "unknown_field",
            f"unknown field(s): {', '.join(sorted(map(str, unknown))[:5])}",
            remote_id=remote_id,
        )
    remote_id = _string(item, "remote_id", required=True, remote_id=remote_id)
    kind = _string(item, "kind", required=True, remote_id=remote_id)
    if kind not in KINDS:
        raise ItemError(
            "invalid_value",
            f"kind {kind[:40]!r} is not one of {', '.join(sorted(KINDS))}",
            remote_id=remote_id,
        )
    direction = _string(item, "direction", required=True, remote_id=remote_id)
    if direction not in DIRECTIONS:
        raise ItemError(
            "invalid_value", "direction must be outbound or inbound", remote_id=remote_id
        )
    text_value = item.get("text", "")
    if text_value is None:
        text_value = ""
    if not isinstance(text_value, str):
        raise ItemError(
            "wrong_type",
            f"text must be a string, not {type(text_value).__name__}",
            remote_id=remote_id,
        )
    if len(_check_text("text", text_value, remote_id)) > MAX_TEXT_BYTES:
        raise ItemError(
            "oversized", f"text is larger than {MAX_TEXT_BYTES:,} bytes", remote_id=remote_id
        )

    attachments = _string_list(item, "attachments", remote_id)
    for digest in attachments:
        if not _HEX64.fullmatch(digest):
            raise ItemError(
                "invalid_value",
                "attachments must be lowercase SHA-256 hex digests of blobs",
                remote_id=remote_id,
            )
    version = item.get("version")
    if version is not None and (
        not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**31
    ):
        raise ItemError("wrong_type", "version must be an integer >= 1", remote_id=remote_id)
    adopted = item.get("adopted")
    if adopted is None:
        adopted = direction == "outbound"
    elif not isinstance(adopted, bool):
        raise ItemError("wrong_type", "adopted must be true or false", remote_id=remote_id)
    record_class = _string(item, "record_class", remote_id=remote_id) or "business_communication"
    if not _RECORD_CLASS.fullmatch(record_class):
        raise ItemError(
            "invalid_value", "record_class is lowercase letters, digits and _", remote_id=remote_id
        )
    approval = item.get("approval_ref")
    approval_ref = (
        None if approval is None else _string(item, "approval_ref", limit=100, remote_id=remote_id)
    )

    raw_payload = _raw_payload(item, received, remote_id)
    if len(raw_payload) > MAX_PAYLOAD_BYTES:
        raise ItemError(
            "oversized",
            f"the raw payload is larger than {MAX_PAYLOAD_BYTES:,} bytes",
            remote_id=remote_id,
        )
    return CleanItem(
        remote_id=remote_id,
        kind=kind,
        direction=direction,
        text=text_value,
        author=_string(item, "author", remote_id=remote_id),
        participants=_string_list(item, "participants", remote_id),
        conversation_id=_string(item, "conversation_id", remote_id=remote_id),
        thread_id=_string(item, "thread_id", remote_id=remote_id),
        parent_remote_id=_string(item, "parent_remote_id", remote_id=remote_id),
        attachments=attachments,
        network_timestamp=parse_timestamp(
            item.get("network_timestamp"), "network_timestamp", remote_id
        ),
        version=version,
        adopted=adopted,
        record_class=record_class,
        approval_ref=approval_ref,
        raw_payload=raw_payload,
        raw_payload_sha256=hashlib.sha256(raw_payload).hexdigest(),
    )


def _raw_payload(item: Mapping[str, Any], received: bytes | None, remote_id: str) -> bytes:
    encoded = item.get("raw_payload_b64")
    if encoded is not None:
        if not isinstance(encoded, str):
            raise ItemError("wrong_type", "raw_payload_b64 must be a string", remote_id=remote_id)
        if len(encoded) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
            raise ItemError(
                "oversized",
                f"the raw payload is larger than {MAX_PAYLOAD_BYTES:,} bytes",
                remote_id=remote_id,
            )
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ItemError(
                "invalid_value", "raw_payload_b64 is not valid base64", remote_id=remote_id
            ) from exc
    if "raw" in item:
        raw = item["raw"]
        if isinstance(raw, str):
            return _check_text("raw", raw, remote_id)
        try:
            return _RAW_ENCODER.encode(raw).encode("utf-8")
        except (TypeError, ValueError, UnicodeEncodeError) as exc:
            raise ItemError("wrong_type", f"raw is not JSON: {exc}", remote_id=remote_id) from exc
    if received is not None:
        return received
    try:
        return _RAW_ENCODER.encode(item).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise ItemError("wrong_type", f"the item is not JSON: {exc}", remote_id=remote_id) from exc
