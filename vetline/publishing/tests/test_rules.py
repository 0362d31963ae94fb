"""The pure rules (no database): four-eyes, content hashing, network limits, schedules, diffs,
highlighting, and the declared state machines."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vetline.publishing.rules import (
    MediaInfo,
    ScheduleError,
    check_target,
    content_sha256,
    four_eyes_violation,
    highlight,
    parse_schedule,
    sniff_mime,
    word_diff,
)
from vetline.publishing.states import (
    DRAFT_TRANSITIONS,
    PUBLICATION_TRANSITIONS,
    REQUEST_TRANSITIONS,
    DraftState,
    IllegalTransition,
    PublicationState,
    RequestState,
    check_draft,
    check_publication,
    check_request,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_four_eyes() -> None:
    assert four_eyes_violation(author_id=1, acting_id=1, on_behalf_of_id=None, prior=[])
    assert four_eyes_violation(author_id=1, acting_id=2, on_behalf_of_id=1, prior=[])
    assert four_eyes_violation(author_id=1, acting_id=2, on_behalf_of_id=2, prior=[])
    assert four_eyes_violation(author_id=1, acting_id=2, on_behalf_of_id=None, prior=[(2, None)])
    # A delegate cannot decide again for the person they already decided as, nor vice versa.
    assert four_eyes_violation(author_id=1, acting_id=3, on_behalf_of_id=None, prior=[(2, 3)])
    assert four_eyes_violation(author_id=1, acting_id=2, on_behalf_of_id=4, prior=[(5, 4)])
    assert (
        four_eyes_violation(author_id=1, acting_id=2, on_behalf_of_id=None, prior=[(3, None)])
        is None
    )


@given(st.integers(1, 5), st.integers(1, 5), st.lists(st.tuples(st.integers(1, 5), st.none())))
def test_four_eyes_never_lets_the_author_or_a_repeat_through(
    author: int, actor: int, prior: list[tuple[int, None]]
) -> None:
    why = four_eyes_violation(author_id=author, acting_id=actor, on_behalf_of_id=None, prior=prior)
    if actor == author or actor in {p for p, _ in prior}:
        assert why is not None
    else:
        assert why is None


def test_content_hash_is_canonical() -> None:
    a = content_sha256({"text": "hi", "targets": [1], "media": []})
    b = content_sha256({"media": [], "targets": [1], "text": "hi"})
    assert a == b and len(a) == 64
    assert content_sha256({"text": "hi "}) != content_sha256({"text": "hi"})


def test_network_limits() -> None:
    assert check_target(network="x", label="X", text="a" * 280, media=[]) == []
    assert "280" in check_target(network="x", label="X", text="a" * 281, media=[])[0]
    pdf = MediaInfo("application/pdf", 10)
    assert "does not take" in check_target(network="x", label="X", text="a", media=[pdf])[0]
    big = MediaInfo("image/png", 6 * 1024 * 1024)
    assert "MB" in check_target(network="x", label="X", text="a", media=[big])[0]
    many = [MediaInfo("image/png", 10)] * 5
    assert "at most 4" in check_target(network="x", label="X", text="a", media=many)[0]
    assert check_target(network="linkedin", label="L", text="a" * 3000, media=[]) == []


def test_sniffing_uses_the_bytes_not_the_name() -> None:
    assert sniff_mime(b"\x89PNG\r\n\x1a\nrest") == "image/png"
    assert sniff_mime(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_mime(b"GIF89a...") == "image/gif"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"\x00\x00\x00\x18ftypmp42") == "video/mp4"
    assert sniff_mime(b"%PDF-1.7") is None
    assert sniff_mime(b"") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2026-03-01T13:00:00+01:00", NOW),
        ("2026-03-01T12:00:00Z", NOW),
        ("2026-03-01T07:00:00-05:00", NOW),
        ("2026-10-25T01:30:00+02:00", dt.datetime(2026, 10, 24, 23, 30, tzinfo=dt.UTC)),
    ],
)
def test_schedules_are_read_in_their_zone(value: str | None, expected: dt.datetime | None) -> None:
    assert parse_schedule(value, now=NOW - dt.timedelta(minutes=5)) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-03-01T12:00:00", "time zone"),
        ("1 March", "ISO 8601"),
        ("2026-02-28T12:00:00Z", "past"),
        ("2027-06-01T12:00:00Z", "a year"),
        ("2026-13-01T12:00:00Z", "ISO 8601"),
    ],
)
def test_bad_schedules(value: str, why: str) -> None:
    with pytest.raises(ScheduleError, match=why):
        parse_schedule(value, now=NOW)


@given(st.text(max_size=60), st.text(max_size=60))
def test_word_diff_rebuilds_both_texts(old: str, new: str) -> None:
    pieces = word_diff(old, new)
    assert "".join(t for k, t in pieces if k != "add") == old
    assert "".join(t for k, t in pieces if k != "del") == new


@given(
    st.text(max_size=40),
    st.lists(
        st.tuples(
            st.integers(-5, 45), st.integers(-5, 45), st.sampled_from(["warn", "block", "info"])
        ),
        max_size=4,
    ),
)
def test_highlight_keeps_the_text(text: str, spans: list[tuple[int, int, str]]) -> None:
    assert "".join(t for t, _ in highlight(text, spans)) == text


def test_highlight_prefers_the_more_severe() -> None:
    assert highlight("abcdef", [(0, 4, "warn"), (2, 6, "block")]) == [
        ("ab", "warn"),
        ("cdef", "block"),
    ]


def test_state_machines_are_closed_and_checked() -> None:
    for table, enum in (
        (REQUEST_TRANSITIONS, RequestState),
        (DRAFT_TRANSITIONS, DraftState),
        (PUBLICATION_TRANSITIONS, PublicationState),
    ):
        assert set(table) == set(enum)
    check_request("pending", "approved")
    check_draft("in_review", "approved")
    check_publication("queued", "sending")
    with pytest.raises(IllegalTransition):
        check_request("rejected", "approved")
    with pytest.raises(IllegalTransition):
        check_draft("published", "editing")
    with pytest.raises(IllegalTransition):
        check_publication("published", "sending")  # never twice
    with pytest.raises(IllegalTransition):
        check_publication("frozen", "sending")  # a freeze is lifted by re-confirming first
