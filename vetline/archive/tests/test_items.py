"""Item validation: the short path for plainly valid items accepts exactly what the full checks
accept, with the same result, and anything else gets the full checks' error (property-based)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vetline.archive.items import (
    MAX_SHORT,
    CleanItem,
    ItemError,
    _clean_plain,
    clean_item,
    clean_item_checked,
)

# Values near every boundary the checks draw: wrong types, blanks, NUL, lone surrogates,
# lengths at and over the limits, non-ASCII.
_strings = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "é", "post", "outbound", "inbound"]),
    st.sampled_from(["x" * MAX_SHORT, "x" * (MAX_SHORT + 1), "é" * MAX_SHORT]),
)
_odd = st.one_of(st.none(), st.integers(-2, 3), st.booleans(), st.floats(allow_nan=False))
_digest = st.sampled_from(["a" * 64, "A" * 64, "0" * 63, "f" * 64])
_short = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8)
# field -> (a valid value, a value near a boundary or wrong)
_fields: dict[str, tuple[Any, Any]] = {
    "remote_id": (st.text(min_size=1, max_size=8).filter(str.strip), st.one_of(_strings, _odd)),
    "kind": (
        st.sampled_from(["post", "edit", "deletion", "reply"]),
        st.one_of(st.just("nope"), _odd),
    ),
    "direction": (st.sampled_from(["outbound", "inbound"]), st.one_of(st.just("up"), _odd)),
    "text": (_short, st.one_of(_strings, _odd, st.just("t" * 1_000_001))),
    "author": (_short, st.one_of(_strings, _odd)),
    "participants": (
        st.lists(_short, max_size=3),
        st.one_of(st.lists(st.one_of(_strings, _odd), max_size=3), _odd, _strings),
    ),
    "conversation_id": (_short, st.one_of(_strings, _odd)),
    "thread_id": (_short, st.one_of(_strings, _odd)),
    "parent_remote_id": (_short, st.one_of(_strings, _odd)),
    "attachments": (
        st.lists(st.just("a" * 64), max_size=2),
        st.one_of(st.lists(st.one_of(_digest, _odd), max_size=2), _odd),
    ),
    "network_timestamp": (
        st.sampled_from(["2025-01-01T00:00:00Z", "2025-06-01T08:30:00.5+02:00", None, ""]),
        st.one_of(st.sampled_from(["2025-01-01T00:00:00", "2025-13-01"]), _odd),
    ),
    "version": (st.integers(1, 2**31 - 1), st.one_of(st.integers(-1, 2**31), _odd)),
    "adopted": (st.booleans(), st.one_of(_odd, _strings)),
    "record_class": (
        st.sampled_from(["", "trade_record", None]),
        st.one_of(st.sampled_from(["Bad Class", "x" * 41]), _odd),
    ),
    "approval_ref": (st.one_of(st.none(), _short), st.one_of(_strings, _odd, st.just("r" * 101))),
    "raw": (
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.one_of(_strings, st.just({"x": float("nan")})),
    ),
    "raw_payload_b64": (st.just("aGVsbG8="), st.one_of(st.just("not base64!"), _odd)),
    "unknown": (st.nothing(), st.integers()),
}
_REQUIRED = ("remote_id", "kind", "direction")


@st.composite
def items(draw: Any) -> dict[str, Any]:
    """Items that are valid but for (sometimes) one or two fields."""
    keys = [*_REQUIRED, *draw(st.sets(st.sampled_from(sorted(_fields)), max_size=8))]
    broken = set(draw(st.lists(st.sampled_from(keys), max_size=2))) if draw(st.booleans()) else ()
    item: dict[str, Any] = {}
    for key in keys:
        valid, odd = _fields[key]
        if key in broken:
            item[key] = draw(odd)
        elif key != "unknown":
            item[key] = draw(valid)
    return item


def _outcome(clean: Any, item: dict[str, Any]) -> CleanItem | tuple[str, str, str]:
    try:
        result: CleanItem = clean(item)
    except ItemError as exc:
        return (exc.code, exc.message, exc.remote_id)
    return result


@settings(max_examples=600)
@given(items())
def test_the_short_path_agrees_with_the_full_checks(item: dict[str, Any]) -> None:
    assert _outcome(clean_item, item) == _outcome(clean_item_checked, item)


@pytest.mark.parametrize(
    "item",
    [
        {"remote_id": "1", "kind": "post", "direction": "outbound"},
        {
            "remote_id": "é-1",
            "kind": "reply",
            "direction": "inbound",
            "text": "ünïcode \n\t",
            "participants": ["@a", "@b"],
            "attachments": ["a" * 64],
            "network_timestamp": "2025-01-01T10:00:00+02:00",
            "version": 2,
            "adopted": True,
            "record_class": "trade_record",
            "approval_ref": "APR-1",
            "raw": {"id": 1},
        },
    ],
)
def test_plain_items_take_the_short_path(item: dict[str, Any]) -> None:
    plain = _clean_plain(item, None)
    assert plain is not None
    assert plain == clean_item_checked(item)


@pytest.mark.parametrize(
    "change",
    [
        {"text": "a\x00b"},
        {"author": "\ud800"},
        {"participants": ["ok", 3]},
        {"version": True},
        {"record_class": "Bad"},
        {"surplus": 1},
    ],
)
def test_anything_else_is_left_to_the_full_checks(change: dict[str, Any]) -> None:
    item = {"remote_id": "1", "kind": "post", "direction": "outbound", **change}
    assert _clean_plain(item, None) is None
    with pytest.raises(ItemError):
        clean_item(item)
