"""The canonical leaf bytes of archived records and audit events, built from their rows.

Ingest and verification both call these functions, so the bytes a record was logged with are
recomputed from exactly the same fields. The body format is the one of
:mod:`vetline.archive.integrity.canonical` (``vetline-leaf-v1``): canonical JSON, keys sorted, no
whitespace, strings as-is.

Two encoders write these bytes. :func:`record_leaf_from_row` builds the body as a dictionary and
runs the generic canonical encoder: exports, proofs and retention use it. Ingest and
``vetline archive verify`` handle every record, so they use :func:`encode_content` and
:func:`record_leaf_encoded`: the record body has a fixed set of keys, so it is written out with
the keys already in sorted order, each string through the standard library's own JSON string
encoder (``json.encoder.encode_basestring``, what ``json.dumps(..., ensure_ascii=False)``
calls), and a value of any other type than expected through the generic encoder. Both write the
same bytes (``tests/test_leaves.py`` checks it on generated records, also against
:func:`~vetline.archive.integrity.canonical.record_leaf_bytes`).

Record body (every key always present)::

    account_id, network, remote_id, version, previous_log_index, record_class, kind, direction,
    author, participants, conversation_id, thread_id, parent_remote_id, text, attachments,
    network_timestamp, captured_at, raw_payload_sha256, adopted, approval_ref, source

The *content* of a record is the same object without the capture metadata (``version``,
``previous_log_index``, ``captured_at``, ``source``); its SHA-256 decides whether a re-ingested
item is a duplicate or a conflict.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, Final

from vetline.archive.integrity.canonical import (
    LEAF_TYPE_RECORD,
    LEAF_VERSION_PREFIX,
    audit_event_leaf_bytes,
    format_timestamp,
)

RECORD_PREFIX: Final = LEAF_VERSION_PREFIX + LEAF_TYPE_RECORD.encode("ascii") + b"\n"
_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)
CAPTURE_METADATA: Final = ("version", "previous_log_index", "captured_at", "source")
_UTC = dt.UTC
_str = encode_basestring

# A record's content as canonical JSON, in four pieces: the capture metadata keys sort between
# them (captured_at, previous_log_index, source, version), so the leaf body is the pieces with
# the metadata spliced in. See :func:`encode_content`.
Encoded = tuple[str, str, str, str]


def json_string(value: Any) -> str:
    """A string as canonical JSON; any other value through the generic canonical encoder."""
    if type(value) is str:
        return encode_basestring(value)
    return _ENCODER.encode(value)


def json_int(value: Any) -> str:
    return str(value) if type(value) is int else _ENCODER.encode(value)


def json_optional_int(value: Any) -> str:
    if value is None:
        return "null"
    return str(value) if type(value) is int else _ENCODER.encode(value)


def json_string_list(values: Any) -> str:
    """A list of strings as canonical JSON (anything else through the generic encoder)."""
    if type(values) is list:
        if not values:
            return "[]"
        try:
            return "[" + ",".join(map(encode_basestring, values)) + "]"
        except TypeError:  # an element that is not a string
            pass
    return _ENCODER.encode(values)


def json_bool(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _ENCODER.encode(value)


def json_optional_string(value: Any) -> str:
    return "null" if value is None else json_string(value)


def timestamp_text(value: dt.datetime) -> str:
    """:func:`~vetline.archive.integrity.canonical.format_timestamp`, without ``strftime``."""
    tz = value.tzinfo
    if tz is not _UTC:
        if tz is None or value.utcoffset() is None:
            return format_timestamp(value)  # raises: naive
        value = value.astimezone(_UTC)
    if value.year < 1000:  # strftime's %Y does not pad years before 1000; keep its spelling
        return format_timestamp(value)
    text = value.isoformat()  # YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00
    return f"{text[:19]}.000000Z" if len(text) == 25 else f"{text[:26]}Z"


def encode_content(
    *,
    account_id: int,
    network: str,
    remote_id: str,
    record_class: str,
    kind: str,
    direction: str,
    author: str,
    participants_json: str,
    conversation_id: str,
    thread_id: str,
    parent_remote_id: str,
    text: str,
    attachments_json: str,
    network_timestamp: str | None,
    raw_payload_sha256: str,
    adopted: bool,
    approval_ref: str | None,
) -> Encoded:
    """A record's content as canonical JSON pieces (:data:`Encoded`). The lists come encoded
    (:func:`json_string_list`) and ``network_timestamp`` in its canonical text form
    (:func:`timestamp_text`) or None."""
    return encode_content_values(
        account_id,
        adopted,
        approval_ref,
        attachments_json,
        author,
        conversation_id,
        direction,
        kind,
        network,
        network_timestamp,
        parent_remote_id,
        participants_json,
        raw_payload_sha256,
        record_class,
        remote_id,
        text,
        thread_id,
    )


def encode_content_values(
    account_id: Any,
    adopted: Any,
    approval_ref: Any,
    attachments_json: str,
    author: Any,
    conversation_id: Any,
    direction: Any,
    kind: Any,
    network: Any,
    network_timestamp: Any,
    parent_remote_id: Any,
    participants_json: str,
    raw_payload_sha256: Any,
    record_class: Any,
    remote_id: Any,
    text: Any,
    thread_id: Any,
    /,
) -> Encoded:
    """:func:`encode_content` with the values in key order and the two lists already encoded
    (:func:`json_string_list`): the hot loop of verification calls this one.

    The keys are written out in sorted order (``tests/test_leaves.py`` checks the result against
    the generic encoder). A string field holding something else than a string (possible only in
    a row altered in the database) is encoded by the generic encoder."""
    try:
        return (
            f'{{"account_id":{json_int(account_id)},"adopted":{json_bool(adopted)},'
            f'"approval_ref":{"null" if approval_ref is None else _str(approval_ref)},'
            f'"attachments":{attachments_json},"author":{_str(author)}',
            f',"conversation_id":{_str(conversation_id)},"direction":{_str(direction)},'
            f'"kind":{_str(kind)},"network":{_str(network)},"network_timestamp":'
            f"{'null' if network_timestamp is None else _str(network_timestamp)},"
            f'"parent_remote_id":{_str(parent_remote_id)},"participants":{participants_json}',
            f',"raw_payload_sha256":{_str(raw_payload_sha256)},'
            f'"record_class":{_str(record_class)},"remote_id":{_str(remote_id)}',
            f',"text":{_str(text)},"thread_id":{_str(thread_id)}',
        )
    except TypeError:  # a field that is not a string
        j = json_string
        return (
            f'{{"account_id":{json_int(account_id)},"adopted":{json_bool(adopted)},'
            f'"approval_ref":{json_optional_string(approval_ref)},'
            f'"attachments":{attachments_json},"author":{j(author)}',
            f',"conversation_id":{j(conversation_id)},"direction":{j(direction)},'
            f'"kind":{j(kind)},"network":{j(network)},'
            f'"network_timestamp":{json_optional_string(network_timestamp)},'
            f'"parent_remote_id":{j(parent_remote_id)},"participants":{participants_json}',
            f',"raw_payload_sha256":{j(raw_payload_sha256)},'
            f'"record_class":{j(record_class)},"remote_id":{j(remote_id)}',
            f',"text":{j(text)},"thread_id":{j(thread_id)}',
        )


def content_json(encoded: Encoded) -> bytes:
    """Canonical JSON of a record's content (the input of ``content_sha256``)."""
    a, b, c, d = encoded
    return f"{a}{b}{c}{d}}}".encode()


def record_leaf_encoded(
    encoded: Encoded,
    *,
    version: int,
    previous_log_index: int | None,
    captured_at: str,
    source: str,
) -> bytes:
    """Leaf bytes of a record from its encoded content and its capture metadata
    (``captured_at`` in canonical text form)."""
    a, b, c, d = encoded
    return (
        RECORD_PREFIX
        + (
            f'{a},"captured_at":{json_string(captured_at)}{b},'
            f'"previous_log_index":{json_optional_int(previous_log_index)}{c},'
            f'"source":{json_string(source)}{d},"version":{json_int(version)}}}'
        ).encode()
    )


def content_body(
    *,
    account_id: int,
    network: str,
    remote_id: str,
    record_class: str,
    kind: str,
    direction: str,
    author: str,
    participants: Sequence[str],
    conversation_id: str,
    thread_id: str,
    parent_remote_id: str,
    text: str,
    attachments: Sequence[str],
    network_timestamp: dt.datetime | None,
    raw_payload_sha256: str,
    adopted: bool,
    approval_ref: str | None,
) -> dict[str, Any]:
    """The content body as a plain object (for the generic encoder and for readers)."""
    return {
        "account_id": account_id,
        "network": network,
        "remote_id": remote_id,
        "record_class": record_class,
        "kind": kind,
        "direction": direction,
        "author": author,
        "participants": list(participants),
        "conversation_id": conversation_id,
        "thread_id": thread_id,
        "parent_remote_id": parent_remote_id,
        "text": text,
        "attachments": list(attachments),
        "network_timestamp": (
            format_timestamp(network_timestamp) if network_timestamp is not None else None
        ),
        "raw_payload_sha256": raw_payload_sha256,
        "adopted": adopted,
        "approval_ref": approval_ref,
    }


def content_sha256(content: Mapping[str, Any]) -> str:
    return hashlib.sha256(_ENCODER.encode(content).encode("utf-8")).hexdigest()


def record_leaf(
    content: Mapping[str, Any],
    *,
    version: int,
    previous_log_index: int | None,
    captured_at: dt.datetime,
    source: str,
) -> bytes:
    body = dict(content)
    body["version"] = version
    body["previous_log_index"] = previous_log_index
    body["captured_at"] = format_timestamp(captured_at)
    body["source"] = source
    return RECORD_PREFIX + _ENCODER.encode(body).encode("utf-8")


def record_content_from_row(row: Any, *, payload_sha256: str | None = None) -> dict[str, Any]:
    """The content body of an :class:`ArchivedRecord` (or a ``values()`` dict-like object).

    ``payload_sha256`` overrides the stored ``raw_payload_sha256``: verification passes the hash
    of the stored payload bytes, so altered payload bytes change the leaf."""
    return content_body(
        account_id=row.account_id,
        network=row.network,
        remote_id=row.remote_id,
        record_class=row.record_class,
        kind=row.kind,
        direction=row.direction,
        author=row.author_handle,
        participants=row.participants,
        conversation_id=row.conversation_id,
        thread_id=row.thread_id,
        parent_remote_id=row.parent_remote_id,
        text=row.text,
        attachments=row.attachments,
        network_timestamp=row.network_timestamp,
        raw_payload_sha256=payload_sha256 or row.raw_payload_sha256,
        adopted=row.adopted,
        approval_ref=row.approval_ref,
    )


def record_leaf_from_row(row: Any, *, payload_sha256: str | None = None) -> bytes:
    return record_leaf(
        record_content_from_row(row, payload_sha256=payload_sha256),
        version=row.version,
        previous_log_index=row.previous_version_id,
        captured_at=row.captured_at,
        source=row.source,
    )


def _plain_json(value: Any) -> Any:
    # Audit before/after data may hold floats, which have no canonical form: they go in as
    # their shortest round-trip spelling, tagged so they cannot be mistaken for a string.
    if isinstance(value, float):
        return {"$float": repr(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(v) for v in value]
    return value


def audit_leaf_from_row(event: Any) -> bytes:
    """Leaf bytes of an :class:`~vetline.audit.models.AuditEvent` row."""
    return audit_event_leaf_bytes(
        {
            "id": event.id,
            "occurred_at": event.occurred_at,
            "action": event.action,
            "actor_id": event.actor_id,
            "actor_name": event.actor_name,
            "object_type": event.object_type,
            "object_id": event.object_id,
            "object_repr": event.object_repr,
            "before": _plain_json(event.before),
            "after": _plain_json(event.after),
            "ip": event.ip,
            "user_agent": event.user_agent,
            "request_id": event.request_id,
            "channel": event.channel,
        }
    )
