"""Canonical leaf bytes: deterministic, documented, strict."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vetline.archive.integrity.canonical import (
    CanonicalError,
    canonical_json,
    disposal_leaf_bytes,
    leaf_bytes,
    parse_leaf,
    parse_tombstone,
    record_leaf_bytes,
    tombstone_bytes,
)


def test_exact_bytes() -> None:
    when = dt.datetime(2025, 3, 4, 5, 6, 7, 8, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    data = record_leaf_bytes({"text": "Grüße\n", "b": [1, True, None], "a": when})
    assert data == (
        b'vetline-leaf-v1 record\n{"a":"2025-03-04T03:06:07.000008Z","b":[1,true,null],'
        b'"text":"Gr\xc3\xbc\xc3\x9fe\\n"}'
    )


def test_key_order_does_not_matter() -> None:
    assert record_leaf_bytes({"a": 1, "b": {"y": 2, "x": 3}}) == record_leaf_bytes(
        {"b": {"x": 3, "y": 2}, "a": 1}
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"x": 1.5},
        {"x": float("nan")},
        {"x": b"raw"},
        {"x": dt.datetime(2025, 1, 1)},  # naive
        {"x": "\ud800"},  # lone surrogate
        {1: "non-string key"},
        {"x": object()},
    ],
)
def test_values_without_a_canonical_form_are_rejected(bad: dict[Any, Any]) -> None:
    with pytest.raises(CanonicalError):
        record_leaf_bytes(bad)


def test_unknown_type_rejected() -> None:
    with pytest.raises(CanonicalError):
        leaf_bytes("tweet", {})


@pytest.mark.parametrize(
    "data",
    [
        b'vetline-leaf-v1 record\n{"b":1,"a":2}',  # key order
        b'vetline-leaf-v1 record\n{"a": 1}',  # whitespace
        b'vetline-leaf-v1 record\n{"a":1.0}',  # float
        b'vetline-leaf-v1 record\n{"a":1,"a":1}',  # duplicate key
        b'vetline-leaf-v1 record\n{"a":"\\u00e9"}',  # needless escape
        b"vetline-leaf-v1 record\n[1]",  # not an object
        b"vetline-leaf-v1 tweet\n{}",  # unknown type
        b"vetline-leaf-v2 record\n{}",  # unknown version
        b'vetline-leaf-v1 record\n{"a":"\xff"}',  # invalid UTF-8
    ],
)
def test_non_canonical_bytes_are_detected(data: bytes) -> None:
    with pytest.raises(CanonicalError):
        parse_leaf(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(body=st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_roundtrip_and_determinism(body: dict[str, Any]) -> None:
    data = record_leaf_bytes(body)
    parsed = parse_leaf(data)
    assert parsed.leaf_type == "record"
    assert parsed.body == json.loads(canonical_json(body))
    assert record_leaf_bytes(parsed.body) == data


def test_disposal_and_tombstone() -> None:
    original = b"\x42" * 32
    when = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    leaf = disposal_leaf_bytes(
        disposed_index=17, original_leaf_hash=original, disposed_at=when, reason="retention"
    )
    parsed = parse_leaf(leaf)
    assert parsed.leaf_type == "disposal"
    assert parsed.body["original_leaf_hash"] == original.hex()
    tomb = tombstone_bytes(index=17, original_leaf_hash=original)
    assert (
        tomb == b'vetline-tombstone-v1\n{"index":17,"leaf_hash":"' + original.hex().encode() + b'"}'
    )
    assert parse_tombstone(tomb).leaf_hash == original
