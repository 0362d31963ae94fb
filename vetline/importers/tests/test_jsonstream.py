"""The streaming JSON reader: exact bytes per element whatever the chunking."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vetline.importers.jsonstream import JsonStream, Oversized, StreamError, Truncated

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def elements(data: bytes, chunk: int) -> list[bytes]:
    stream = JsonStream(io.BytesIO(data), chunk_bytes=chunk)
    stream.skip_prefix()
    stream.begin_array()
    out = []
    while stream.next_element():
        out.append(stream.read_value())
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(json_values, max_size=6), st.integers(min_value=1, max_value=64), st.booleans())
def test_elements_are_exact_bytes_for_any_chunking(values: list, chunk: int, pretty: bool) -> None:
    parts = [json.dumps(v, indent=2 if pretty else None) for v in values]
    data = ("window.YTD.tweets.part0 = [\n" + ",\n".join(parts) + "\n]").encode()
    got = elements(data, chunk)
    assert [g.decode() for g in got] == parts
    assert [json.loads(g) for g in got] == values


def test_a_malformed_element_is_one_element_not_the_end() -> None:
    got = elements(b'[{"a": tru}, {"b": "x]}\\""}, 3]', 4)
    assert got == [b'{"a": tru}', b'{"b": "x]}\\""}', b"3"]


def test_truncation_reports_the_offset_and_the_partial_entry() -> None:
    with pytest.raises(Truncated) as info:
        elements(b'[{"a": 1}, {"b": [1, 2', 3)
    assert info.value.offset == 11 and info.value.partial == b'{"b": [1, 2'


def test_garbage_between_elements_stops_with_the_offset() -> None:
    with pytest.raises(StreamError, match="at byte 10"):
        elements(b'[{"a": 1} {"b": 2}]', 2)


def test_a_single_entry_over_the_limit_stops_reading() -> None:
    data = b'[{"a": "' + b"x" * 5000 + b'"}]'
    stream = JsonStream(io.BytesIO(data), chunk_bytes=64, max_value=1000)
    stream.begin_array()
    stream.next_element()
    with pytest.raises(Oversized):
        stream.read_value()
