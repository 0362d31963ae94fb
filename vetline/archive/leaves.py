"""The canonical leaf bytes of archived records and audit events, built from their rows.

Ingest and verification both call these functions, so the bytes a record was logged with are
recomputed from exactly the same fields. The body format is the one of
:mod:`vetline.archive.integrity.canonical` (``vetline-leaf-v1``); the encoder below is the same
canonical JSON encoder (``tests/test_leaves.py`` checks the bytes against ``record_leaf_bytes``)
without its generic validation pass, because ingest validates every value itself.

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
