"""The fast leaf encoders of ingest and verification write exactly the bytes of the generic
canonical encoder, for any content (property-based)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vetline.archive.integrity.canonical import format_timestamp, record_leaf_bytes
from vetline.archive.leaves import (
    content_body,
    content_json,
    content_sha256,
    encode_content,
    json_string_list,
    record_leaf,
    record_leaf_encoded,
    timestamp_text,
)
from vetline.archive.log import _db_list_json, _db_timestamp_text, db_datetime, db_json

# Any text without lone surrogates: quotes, backslashes, control characters, non-ASCII.
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
stamps = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=st.timezones()
)


@st.composite
def contents(draw: Any) -> dict[str, Any]:
    return {
        "account_id": draw(st.integers(min_value=1, max_value=2**62)),
        "network": draw(texts),
        "remote_id": draw(texts),
        "record_class": draw(texts),
        "kind": draw(texts),
        "direction": draw(texts),
        "author": draw(texts),
        "participants": draw(st.lists(texts, max_size=4)),
        "conversation_id": draw(texts),
        "thread_id": draw(texts),
        "parent_remote_id": draw(texts),
        "text": draw(texts),
        "attachments": draw(st.lists(texts, max_size=3)),
        "network_timestamp": draw(st.none() | stamps),
        "raw_payload_sha256": draw(texts),
        "adopted": draw(st.booleans()),
        "approval_ref": draw(st.none() | texts),
    }


@settings(max_examples=300)
@given(
    contents(),
    st.integers(min_value=1, max_value=2**31),
    st.none() | st.integers(min_value=0, max_value=2**62),
    stamps,
    texts,
)
def test_fast_encoder_writes_the_generic_bytes(
    content: dict[str, Any], version: int, previous: int | None, captured: dt.datetime, source: str
) -> None:
    stamp = content["network_timestamp"]
    fields = {k: v for k, v in content.items() if k not in ("participants", "attachments")}
    encoded = encode_content(
        **{**fields, "network_timestamp": timestamp_text(stamp) if stamp else None},
        participants_json=json_string_list(content["participants"]),
        attachments_json=json_string_list(content["attachments"]),
    )
    body = content_body(**content)
    assert content_json(encoded).decode() == json.dumps(
        body, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    assert content_sha256(body) == hashlib.sha256(content_json(encoded)).hexdigest()
    leaf = record_leaf_encoded(
        encoded,
        version=version,
        previous_log_index=previous,
        captured_at=timestamp_text(captured),
        source=source,
    )
    assert leaf == record_leaf(
        body, version=version, previous_log_index=previous, captured_at=captured, source=source
    )
    full = {
        **body,
        "version": version,
        "previous_log_index": previous,
        "captured_at": captured,
        "source": source,
    }
    assert leaf == record_leaf_bytes(full)


@given(stamps)
def test_timestamp_text_is_format_timestamp(value: dt.datetime) -> None:
    assert timestamp_text(value) == format_timestamp(value)


@given(stamps)
def test_stored_sqlite_timestamps_read_back_canonically(value: dt.datetime) -> None:
    # Django stores an aware datetime on SQLite as the text of its naive UTC value.
    stored = str(value.astimezone(dt.UTC).replace(tzinfo=None))
    assert _db_timestamp_text(stored) == format_timestamp(value)
    assert _db_timestamp_text(value) == format_timestamp(value)
    # PostgreSQL: read AT TIME ZONE 'UTC', a naive UTC datetime
    naive = value.astimezone(dt.UTC).replace(tzinfo=None)
    assert _db_timestamp_text(naive) == format_timestamp(value)


@given(stamps)
def test_ingest_writes_datetimes_as_django_does(value: dt.datetime) -> None:
    from django.db import connection

    adapt = db_datetime()
    if connection.vendor != "sqlite":
        assert adapt(value, timestamp_text(value)) is value  # the driver takes it as it is
        return
    django_value = connection.ops.adapt_datetimefield_value(value)
    assert adapt(value, timestamp_text(value)) == django_value
    assert adapt(value.astimezone(dt.UTC), None) == django_value


@given(st.lists(texts, max_size=5))
def test_stored_json_lists_read_back_canonically(values: list[str]) -> None:
    canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    assert db_json(values) == json.dumps(values)
    assert _db_list_json(db_json(values)) == canonical  # SQLite: Django's text
    # PostgreSQL's jsonb prints non-ASCII as is and ", " between elements
    assert _db_list_json(json.dumps(values, ensure_ascii=False)) == canonical


def test_json_lists_of_separator_like_strings() -> None:
    for values in ([","], [", "], ['", "'], ["a", ",", ", ", "\x7f", "~"]):
        canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        assert db_json(values) == json.dumps(values)
        assert _db_list_json(json.dumps(values)) == canonical
        assert _db_list_json(json.dumps(values, ensure_ascii=False)) == canonical


def test_altered_json_lists_are_read_as_the_orm_reads_them() -> None:
    assert _db_list_json('["a","b"]') == '["a","b"]'
    assert _db_list_json('["a",  "b"]') == '["a","b"]'
    assert _db_list_json("[1.5, null]") == "[1.5,null]"
    assert _db_list_json('{"a": 1}') == '{"a":1}'
    assert _db_list_json("not json") == '"not json"'
