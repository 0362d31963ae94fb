"""The pure drift logic: reading snapshots in each network's words, and comparing."""

from __future__ import annotations

import base64
import hashlib
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


# --- The photo: the snapshot's avatar, as capture fetched it ------------------------------------

NEW_PHOTO = "b" * 64


def test_photo_is_the_fetched_avatar_attachment() -> None:
    raw = _raw({"display_name": "Jane Advisor", "avatar": "https://files.example/a.png"})
    same = live_fields(raw, attachments=["a" * 64])
    assert same.photo == "a" * 64
    assert [d.field for d in compare(APPROVED, same)] == []
    changed = live_fields(raw, attachments=[NEW_PHOTO])
    [diff] = [d for d in compare(APPROVED, changed) if d.field == "photo"]
    assert (diff.approved, diff.live) == ("a" * 64, NEW_PHOTO)


def test_an_avatar_that_was_not_fetched_is_not_seen() -> None:
    """The payload names an avatar but the snapshot has no attachment: capture could not fetch
    it (too large, gone, the network failing). Not "no photo": not seen, never drift."""
    for body in (
        {"avatar": "https://files.example/a.png"},  # Mastodon
        {"profile_image_url": "https://pbs.twimg.com/profile_images/1/a_normal.jpg"},  # X
        {"picture": "https://media.licdn.com/dms/image/v2/x/0/1?e=1&t=a"},  # LinkedIn member
    ):
        live = live_fields(_raw(body), attachments=[])
        assert live.photo is None, body
        assert compare(APPROVED, live) == []


def test_no_avatar_on_the_network_is_no_photo() -> None:
    """An empty avatar field, or the network's placeholder, is a profile without a picture:
    drift against an approved photo, none against an approved profile without one."""
    for body in (
        {"avatar": ""},
        {"avatar": "https://mastodon.example/avatars/original/missing.png"},
        {"profile_image_url": "https://abs.twimg.com/sticky/default_profile_images/d_normal.png"},
        {"picture": {"data": {"is_silhouette": True, "url": "https://fb.example/s.jpg"}}},
    ):
        live = live_fields(_raw(body))
        assert live.photo == "", body
        assert [d.field for d in compare(APPROVED, live)] == ["photo"]
        without = ProfileFields(display_name="Jane Advisor", photo=None)
        assert compare(without, live) == []


def test_a_network_that_does_not_report_the_avatar_is_not_compared() -> None:
    live = live_fields(_raw({"name": "Jane Advisor"}), attachments=[NEW_PHOTO])
    assert live.photo is None


def _bsky_snapshot(value: dict[str, object]) -> bytes:
    return _raw(
        {"uri": "at://did:plc:a/app.bsky.actor.profile/self", "cid": "bafy", "value": value}
    )


def _cid(data: bytes) -> str:
    raw = b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().rstrip("=").lower()


def test_bluesky_profile_record_avatar_is_checked_against_its_cid() -> None:
    avatar, banner = b"avatar bytes", b"banner bytes"
    sha_avatar, sha_banner = (hashlib.sha256(b).hexdigest() for b in (avatar, banner))
    blob = {"$type": "blob", "ref": {"$link": _cid(avatar)}, "mimeType": "image/png", "size": 12}
    value = {"$type": "app.bsky.actor.profile", "displayName": "Jane Advisor", "avatar": blob}
    live = live_fields(_bsky_snapshot(value), attachments=[sha_avatar])
    assert (live.display_name, live.photo) == ("Jane Advisor", sha_avatar)
    # Snapshots archived when the banner was captured too: the avatar is the CID's blob.
    assert live_fields(_bsky_snapshot(value), attachments=[sha_banner, sha_avatar]).photo == (
        sha_avatar
    )
    # Only the banner was fetched: the avatar was not, so the photo is not seen.
    assert live_fields(_bsky_snapshot(value), attachments=[sha_banner]).photo is None
    # A Bluesky profile record without an avatar has no photo.
    bare = {"$type": "app.bsky.actor.profile", "displayName": "Jane Advisor"}
    assert live_fields(_bsky_snapshot(bare), attachments=[]).photo == ""


@given(st.binary(max_size=200), st.lists(st.text(max_size=70), max_size=3))
def test_any_payload_and_attachments_read_without_raising(raw: bytes, names: list[str]) -> None:
    compare(APPROVED, live_fields(raw, attachments=names))
