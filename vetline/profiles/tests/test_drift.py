"""The pure drift logic: reading snapshots in each network's words, and comparing."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from vetline.profiles.drift import ProfileFields, compare, live_fields

APPROVED = ProfileFields(
    display_name="Jane Advisor",
    bio="Financial advisor at Harbor Point.",
    title="Senior Advisor",
    links=("https://harborpoint.example/jane",),
    photo="a" * 64,
)


def _raw(body: object) -> bytes:
    return json.dumps(body).encode()


def test_sandbox_snapshot_matches_the_approved_profile() -> None:
    live = live_fields(
        _raw(
            {
                "type": "profile",
                "handle": "jane",
                "display_name": "Jane  Advisor ",
                "bio": "Financial advisor at Harbor Point.",
                "id": "sbx-account-1",
            }
        )
    )
    assert live.title is None and live.links is None and live.photo is None  # not captured
    assert compare(APPROVED, live) == []


def test_a_changed_bio_is_reported_field_by_field() -> None:
    live = live_fields(_raw({"display_name": "Jane Advisor", "bio": "Guaranteed returns!"}))
    [diff] = compare(APPROVED, live)
    assert diff.field == "bio"
    assert diff.approved == "Financial advisor at Harbor Point."
    assert diff.live == "Guaranteed returns!"
    assert diff.label == "Headline / bio"


def test_network_vocabularies() -> None:
    x = live_fields(_raw({"name": "Jane Advisor", "description": "d", "url": "https://x.example"}))
    assert (x.display_name, x.bio, x.links) == ("Jane Advisor", "d", ("https://x.example",))
    mastodon = live_fields(
        _raw(
            {
                "display_name": "Jane",
                "note": "<p>Advisor &amp; planner</p>",
                "fields": [
                    {"name": "Web", "value": '<a href="https://h.example">h.example/jane</a>'}
                ],
            }
        )
    )
    assert mastodon.bio == "Advisor & planner\n"
    assert mastodon.links == ("h.example/jane",)
    bluesky = live_fields(_raw({"displayName": "Jane", "description": "x"}))
    assert (bluesky.display_name, bluesky.bio) == ("Jane", "x")


def test_links_compare_as_sets_ignoring_case_and_trailing_slash() -> None:
    live = ProfileFields(links=("HTTPS://HarborPoint.example/jane/",))
    assert compare(APPROVED, live) == []
    added = ProfileFields(links=("https://harborpoint.example/jane", "https://crypto.example"))
    [diff] = compare(APPROVED, added)
    assert diff.field == "links" and "crypto.example" in diff.live
    emptied = ProfileFields(links=())
    assert [d.field for d in compare(APPROVED, emptied)] == ["links"]


def test_photo_compared_only_when_the_snapshot_has_its_digest() -> None:
    assert compare(APPROVED, live_fields(_raw({"avatar_url": "https://cdn.example/a.png"}))) == []
    changed = live_fields(_raw({"avatar_sha256": "B" * 64}))
    assert [d.field for d in compare(APPROVED, changed)] == ["photo"]


def test_unreadable_payload_falls_back_to_the_record_text() -> None:
    live = live_fields(b"\xff not json", text="Jane Advisor\nSomething else")
    assert [d.field for d in compare(APPROVED, live)] == ["bio"]


@given(st.binary(max_size=200), st.text(max_size=50))
def test_any_payload_reads_without_raising(raw: bytes, text: str) -> None:
    fields = live_fields(raw, text=text)
    compare(APPROVED, fields)


@given(st.text(max_size=40), st.text(max_size=40))
def test_same_profile_never_drifts(name: str, bio: str) -> None:
    approved = ProfileFields(display_name=name, bio=bio, title="", links=(), photo=None)
    assert compare(approved, ProfileFields(display_name=name, bio=bio)) == []
