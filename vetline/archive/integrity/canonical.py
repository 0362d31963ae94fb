"""Canonical leaf bytes: the exact bytes the integrity log hashes for each entry.

An auditor can re-derive them without Vetline. The format, version 1:

    leaf bytes = b"vetline-leaf-v1 " + TYPE + b"\\n" + BODY

* ``TYPE`` is an ASCII name made of ``[a-z0-9_]``, one of :data:`LEAF_TYPES`:
  ``record`` (a captured communication, every version is its own leaf), ``audit_event`` (an
  audit event of the foundation), ``disposal`` (written when retention disposes of a record's
  content; names the disposed index and its original leaf hash).
* ``BODY`` is the canonical JSON of a JSON object:
  - encoded as UTF-8, no byte-order mark; strings are written as-is (no ``\\uXXXX`` escapes
    except for ``"``, ``\\``, and control characters below U+0020, which use the short escapes
    ``\\" \\\\ \\b \\f \\n \\r \\t`` or lowercase ``\\u00xx``) — exactly what Python's
    ``json.dumps(value, ensure_ascii=False)`` writes;
  - object keys sorted by Unicode code point, each key once;
  - no whitespace at all: separators are ``,`` and ``:``;
  - values are ``null``, ``true``, ``false``, integers (decimal, no leading zeros, no ``+``,
    no exponent), strings and arrays/objects of these. Floats are not allowed, so no number
    has two spellings; timestamps are strings (see below), binary data is a lowercase hex
    SHA-256 of the bytes (for example ``raw_payload_sha256``, attachment blob hashes).
  - strings must be valid Unicode (no lone surrogates).
  - timestamps are UTC strings ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (always six fraction digits).

In Python the body is ``json.dumps(body, ensure_ascii=False, sort_keys=True,
separators=(",", ":"), allow_nan=False).encode("utf-8")``.

Disposed records. When retention disposes of a record, its content is deleted but its leaf hash
stays in the log (the log never changes), and a ``disposal`` leaf is appended. The row that held
the record keeps a *tombstone* instead of its canonical bytes:

    tombstone = b"vetline-tombstone-v1\\n" + canonical JSON {"index": I, "leaf_hash": "<hex>"}

A tombstone is never hashed as a leaf; a verifier takes its ``leaf_hash`` as the leaf's hash and
checks that a ``disposal`` leaf documents the disposal of that index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

LEAF_VERSION_PREFIX: Final = b"vetline-leaf-v1 "
TOMBSTONE_PREFIX: Final = b"vetline-tombstone-v1\n"
LEAF_TYPE_RECORD: Final = "record"
LEAF_TYPE_AUDIT_EVENT: Final = "audit_event"
LEAF_TYPE_DISPOSAL: Final = "disposal"
LEAF_TYPES: Final = frozenset({LEAF_TYPE_RECORD, LEAF_TYPE_AUDIT_EVENT, LEAF_TYPE_DISPOSAL})
DISPOSAL_LEAF_PREFIX: Final = LEAF_VERSION_PREFIX + LEAF_TYPE_DISPOSAL.encode() + b"\n"

_TYPE_RE = re.compile(r"[a-z0-9_]{1,64}")


class CanonicalError(ValueError):
    """A value that has no canonical form, or bytes that are not canonical leaf bytes."""


def format_timestamp(value: dt.datetime) -> str:
    """A timezone-aware datetime as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise CanonicalError("timestamps must be timezone-aware")
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}Z"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _normalise(value: Any, path: str) -> Any:
    # Validates and converts to plain JSON types; rejects anything with two spellings.
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalError(f"{path}: string is not valid Unicode") from exc
        return value
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise CanonicalError(f"{path}: binary data goes in as its SHA-256 hex, not raw bytes")
    if isinstance(value, float):
        raise CanonicalError(f"{path}: floats are not allowed in canonical leaves")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError(f"{path}: object keys must be strings")
            out[key] = _normalise(item, f"{path}.{key}")
        return out
    if isinstance(value, Sequence):
        return [_normalise(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise CanonicalError(f"{path}: {type(value).__name__} has no canonical form")


def canonical_json(value: Any) -> bytes:
    """Canonical JSON bytes of ``value`` (see the module docstring)."""
    normalised = _normalise(value, "$")
    return _ENCODER.encode(normalised).encode("utf-8")


def leaf_bytes(leaf_type: str, body: Mapping[str, Any]) -> bytes:
    """Canonical leaf bytes for a leaf of ``leaf_type`` with ``body``."""
    if leaf_type not in LEAF_TYPES:
        raise CanonicalError(f"unknown leaf type {leaf_type!r}")
    return LEAF_VERSION_PREFIX + leaf_type.encode("ascii") + b"\n" + canonical_json(dict(body))


def record_leaf_bytes(fields: Mapping[str, Any]) -> bytes:
    """Leaf bytes for a captured communication (one version of it).

    ``fields`` is whatever the archive model puts in the log; it should include network, account,
    remote id, version, kind, direction, author, participants, thread ids, text, attachment blob
    hashes, ``raw_payload_sha256``, the network and capture timestamps, the adopted mark and the
    approval id. Timestamps may be given as aware datetimes.
    """
    return leaf_bytes(LEAF_TYPE_RECORD, fields)


def audit_event_leaf_bytes(fields: Mapping[str, Any]) -> bytes:
    """Leaf bytes for an audit event of the foundation."""
    return leaf_bytes(LEAF_TYPE_AUDIT_EVENT, fields)


def disposal_leaf_bytes(
    *,
    disposed_index: int,
    original_leaf_hash: bytes,
    disposed_at: dt.datetime,
    reason: str,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Leaf bytes of the disposal record written when a record's content is disposed of."""
    body: dict[str, Any] = dict(extra or {})
    body.update(
        disposed_index=disposed_index,
        original_leaf_hash=original_leaf_hash.hex(),
        disposed_at=disposed_at,
        reason=reason,
    )
    return leaf_bytes(LEAF_TYPE_DISPOSAL, body)


def tombstone_bytes(*, index: int, original_leaf_hash: bytes) -> bytes:
    """Stand-in kept in place of a disposed record's canonical bytes (never hashed as a leaf)."""
    if len(original_leaf_hash) != 32:
        raise CanonicalError("a leaf hash is 32 bytes")
    return TOMBSTONE_PREFIX + canonical_json(
        {"index": index, "leaf_hash": original_leaf_hash.hex()}
    )


@dataclass(frozen=True, slots=True)
class ParsedLeaf:
    leaf_type: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Tombstone:
    index: int
    leaf_hash: bytes


def parse_leaf(data: bytes) -> ParsedLeaf:
    """Parse leaf bytes and check they are canonical (re-encoding gives the same bytes)."""
    if not data.startswith(LEAF_VERSION_PREFIX):
        raise CanonicalError("leaf bytes do not start with 'vetline-leaf-v1 '")
    head, sep, body_bytes = data[len(LEAF_VERSION_PREFIX) :].partition(b"\n")
    if not sep:
        raise CanonicalError("leaf bytes have no newline after the type")
    leaf_type = head.decode("ascii", errors="replace")
    if not _TYPE_RE.fullmatch(leaf_type) or leaf_type not in LEAF_TYPES:
        raise CanonicalError(f"unknown leaf type {leaf_type!r}")
    body = _load_canonical_object(body_bytes)
    return ParsedLeaf(leaf_type, body)


def parse_tombstone(data: bytes) -> Tombstone:
    if not data.startswith(TOMBSTONE_PREFIX):
        raise CanonicalError("not a tombstone")
    body = _load_canonical_object(data[len(TOMBSTONE_PREFIX) :])
    index, hash_hex = body.get("index"), body.get("leaf_hash")
    if set(body) != {"index", "leaf_hash"} or not isinstance(index, int):
        raise CanonicalError("a tombstone holds exactly 'index' and 'leaf_hash'")
    try:
        leaf_hash = bytes.fromhex(hash_hex) if isinstance(hash_hex, str) else b""
    except ValueError as exc:
        raise CanonicalError("tombstone leaf_hash is not hex") from exc
    if len(leaf_hash) != 32:
        raise CanonicalError("tombstone leaf_hash is not 32 bytes")
    return Tombstone(index, leaf_hash)


def _reject_float(text: str) -> Any:
    raise CanonicalError("floats are not allowed in canonical leaves")


def _reject_constant(text: str) -> Any:
    raise CanonicalError(f"{text} is not allowed in canonical leaves")


def _load_canonical_object(body_bytes: bytes) -> dict[str, Any]:
    # Parse, then re-encode and compare: any deviation (key order, duplicate keys, spacing,
    # needless escapes, number spelling) changes the bytes. json.loads only yields plain JSON
    # types here (floats and NaN/Infinity are refused), so no normalisation pass is needed.
    try:
        value = _DECODER.decode(body_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CanonicalError(f"body is not UTF-8 JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CanonicalError("body is not a JSON object")
    try:
        again = _ENCODER.encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalError("body holds a string that is not valid Unicode") from exc
    if again != body_bytes:
        raise CanonicalError("body is not in canonical form (key order, spacing or escapes)")
    return value


# Built once: json.dumps/json.loads with keyword arguments construct a new coder on every call.
_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)
_DECODER: Final = json.JSONDecoder(parse_float=_reject_float, parse_constant=_reject_constant)
