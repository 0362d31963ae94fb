"""Captured Bluesky media into the blob store, against the real reference PDS (the pinned
@atproto/dev-env): an image posted through the PDS is fetched with ``com.atproto.sync.getBlob``
at capture, stored once by content, and named in the archived record's attachments."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from typing import Any

import pytest
from atproto import models  # type: ignore[import-untyped]

from vetline.archive.blobs import default_store
from vetline.archive.models import ArchivedRecord
from vetline.audit.models import AuditEvent
from vetline.connectors.base import Media, PublishRequest
from vetline.connectors.bluesky.connector import BlueskyConnector
from vetline.connectors.bluesky.mapping import blob_refs, raw_cid
from vetline.connectors.bluesky.tests.test_bluesky import capture, tokens
from vetline.connectors.models import Alert, CaptureState

pytestmark = pytest.mark.django_db(transaction=False)


def image(seed: int, *, width: int = 2) -> bytes:
    """A valid PNG whose pixels depend on ``seed`` (so two seeds are two different blobs)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, 1, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes((seed + i) % 256 for i in range(3 * width))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def blob_dir(settings: Any, tmp_path: Any) -> Any:
    settings.VETLINE_BLOB_BACKEND = "local"
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")
    return tmp_path / "blobs"


def test_posted_images_are_archived_as_blobs(
    bsky_account: Any, connector: BlueskyConnector, blob_dir: Any
) -> None:
    t = tokens(bsky_account)
    first, second = image(1), image(2)
    two = connector.publish(
        tokens=t,
        request=PublishRequest(
            text="Two charts",
            media=(Media(first, "image/png", "Q1 chart"), Media(second, "image/png", "Q2")),
        ),
    )
    again = connector.publish(
        tokens=t,
        request=PublishRequest(text="The Q1 chart again", media=(Media(first, "image/png"),)),
    )
    plain = connector.publish(tokens=t, request=PublishRequest(text="No picture"))

    capture(bsky_account, connector)

    store = default_store()
    record = ArchivedRecord.objects.get(account=bsky_account, remote_id=two.remote_id)
    sha_first, sha_second = (hashlib.sha256(b).hexdigest() for b in (first, second))
    assert record.attachments == [sha_first, sha_second]  # in the post's order
    assert store.get(sha_first) == first and store.get(sha_second) == second
    # Alt text and type stay where the network put them: in the record's raw payload.
    raw = json.loads(bytes(record.raw_payload))
    images = raw["value"]["embed"]["images"]
    assert [i["alt"] for i in images] == ["Q1 chart", "Q2"]
    assert images[0]["image"]["mimeType"] == "image/png"
    assert images[0]["image"]["ref"]["$link"] == raw_cid(first)
    # The same bytes posted twice are one blob.
    reposted = ArchivedRecord.objects.get(account=bsky_account, remote_id=again.remote_id)
    assert reposted.attachments == [sha_first]
    assert len([p for p in blob_dir.rglob("*") if p.is_file()]) == 2
    assert ArchivedRecord.objects.get(remote_id=plain.remote_id).attachments == []
    assert not AuditEvent.objects.filter(action="capture.media.missing").exists()

    # A full replay of the repository is all duplicates: archived attachments are kept as they
    # are, nothing is fetched or archived again.
    CaptureState.objects.filter(account=bsky_account).update(cursor="", has_cursor=False)
    replay = capture(bsky_account, connector)
    assert (replay.ingested, replay.media_missing) == (0, 0)


def test_oversized_medium_is_archived_without_it_and_reported(
    bsky_account: Any, connector: BlueskyConnector, blob_dir: Any, settings: Any
) -> None:
    t = tokens(bsky_account)
    small, big = image(3, width=1), image(4, width=64)
    assert len(small) < 100 < len(big)
    settings.VETLINE_CAPTURE_MEDIA_MAX_BYTES = 100
    post = connector.publish(
        tokens=t,
        request=PublishRequest(
            text="Brochure",
            media=(Media(small, "image/png", "logo"), Media(big, "image/png", "brochure")),
        ),
    )

    outcome = capture(bsky_account, connector)
    assert outcome.media_missing == 1

    record = ArchivedRecord.objects.get(account=bsky_account, remote_id=post.remote_id)
    assert record.attachments == [hashlib.sha256(small).hexdigest()]
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert event.after["network"] == "bluesky"
    assert event.after["account_id"] == bsky_account.pk
    assert event.after["remote_id"] == post.remote_id
    assert event.after["url"] == raw_cid(big)
    assert "over the 100-byte limit" in event.after["reason"]
    alert = Alert.objects.get(account=bsky_account, code__startswith="media_missing:")
    assert alert.resolved_at is None and post.remote_id in alert.body
    assert not default_store().exists(hashlib.sha256(big).hexdigest())


def test_blob_refs_of_nested_embeds() -> None:
    """Blobs are found wherever the lexicons nest them (recordWithMedia > media > images; a
    video's thumbnail has no alt), once each."""
    blob = {"$type": "blob", "mimeType": "image/jpeg", "size": 10, "ref": {"$link": "bafkA"}}
    video = {"$type": "blob", "mimeType": "video/mp4", "size": 99, "ref": {"$link": "bafkV"}}
    value = {
        "text": "x",
        "embed": {
            "$type": "app.bsky.embed.recordWithMedia",
            "record": {"record": {"uri": "at://did:plc:b/app.bsky.feed.post/1", "cid": "bafyX"}},
            "media": {
                "$type": "app.bsky.embed.images",
                "images": [{"alt": "a chart", "image": blob}, {"alt": "dup", "image": blob}],
            },
        },
        "other": {"$type": "app.bsky.embed.video", "video": video, "alt": "clip"},
    }
    refs = blob_refs(value, "did:plc:a")
    assert [(r.ref, r.mime_type, r.alt_text, r.size_bytes) for r in refs] == [
        ("bafkA", "image/jpeg", "a chart", 10),
        ("bafkV", "video/mp4", "clip", 99),
    ]
    assert {r.owner for r in refs} == {"did:plc:a"}
    assert blob_refs({"text": "no media"}, "did:plc:a") == []


# --- The profile's avatar, and photo drift against the approved profile ------------------------


def photo(seed: int, *, side: int = 32) -> bytes:
    """A valid ``side`` x ``side`` PNG (a profile photo: at least 32 pixels a side) whose pixels
    depend on ``seed``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    rows = b"".join(
        b"\x00" + bytes((seed + x + y) % 256 for x in range(3 * side)) for y in range(side)
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _snapshot(account: Any) -> ArchivedRecord:
    return ArchivedRecord.objects.filter(account=account, kind="profile_snapshot").latest("pk")


def _approve_profile(account: Any, make_person: Any, *, name: str, picture: bytes) -> Any:
    """The account's owner proposes the profile with ``picture``; another compliance officer
    approves it (four-eyes: the owner may not)."""
    from vetline.identity.roles import Role
    from vetline.profiles import actions as profiles

    revision = profiles.save_proposal(
        actor=account.owner, account=account, display_name=name, photo=picture, submit=True
    )
    approver = make_person(
        Role.COMPLIANCE_OFFICER, "officer2@example.com", full_name="Oscar Officer"
    )
    profiles.approve_proposal(actor=approver, proposal=revision.proposal, revision_number=1)
    revision.refresh_from_db()
    return revision


def test_avatar_is_archived_with_the_profile_and_photo_drift_is_detected(
    bsky_account: Any,
    connector: BlueskyConnector,
    blob_dir: Any,
    make_person: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from vetline.profiles.actions import detect_drift
    from vetline.profiles.models import ProfileDrift

    t = tokens(bsky_account)
    first, second, third = photo(1), photo(2), photo(3)
    sha_first, sha_second = (hashlib.sha256(b).hexdigest() for b in (first, second))
    revision = _approve_profile(bsky_account, make_person, name="Acme Advisers", picture=first)
    assert revision.photo_sha256 == sha_first
    banner = photo(9)
    connector.update_profile(
        tokens=t, display_name="Acme Advisers", avatar=Media(first, "image/png")
    )
    # A banner is set too: it is not the avatar, and it is not captured with the profile.
    client, did = connector._client(t)
    uploaded = client.com.atproto.repo.upload_blob(banner, headers={"Content-Type": "image/png"})
    current = connector._maybe_record(client, connector._profile_uri(did))
    assert current is not None
    value = dict(current["value"])
    value["banner"] = uploaded.blob.model_dump(by_alias=True, exclude_none=True)
    client.com.atproto.repo.put_record(
        models.ComAtprotoRepoPutRecord.Data(
            repo=did, collection="app.bsky.actor.profile", rkey="self", record=value
        )
    )
    fetched: list[str] = []
    fetch = connector.fetch_media

    def counting_fetch(**kwargs: Any) -> bytes:
        fetched.append(kwargs["media"].ref)
        return fetch(**kwargs)

    monkeypatch.setattr(connector, "fetch_media", counting_fetch)

    # Captured: the snapshot's only attachment is the avatar, byte for byte; same photo as
    # approved, so no drift.
    assert capture(bsky_account, connector).media_missing == 0
    snapshot = _snapshot(bsky_account)
    assert snapshot.attachments == [sha_first]
    assert default_store().get(sha_first) == first
    assert not default_store().exists(hashlib.sha256(banner).hexdigest())
    assert detect_drift().get("match") == 1
    assert not ProfileDrift.objects.exists()

    # Re-captured unchanged (a full replay of the repository): a duplicate, nothing fetched.
    calls = len(fetched)
    CaptureState.objects.filter(account=bsky_account).update(cursor="", has_cursor=False)
    assert capture(bsky_account, connector).ingested == 0
    assert len(fetched) == calls

    # The photo is changed on the network: a new snapshot, and photo drift.
    connector.update_profile(tokens=t, avatar=Media(second, "image/png"))
    capture(bsky_account, connector)
    assert _snapshot(bsky_account).attachments == [sha_second]
    assert detect_drift().get("drift") == 1
    drift = ProfileDrift.objects.get()
    assert drift.differences == [{"field": "photo", "approved": sha_first, "live": sha_second}]

    # Back to the approved photo: the drift resolves itself. (A blank bio makes it a new record
    # version: a record byte-identical to an archived one has its CID, so it is a duplicate.)
    connector.update_profile(tokens=t, description=" ", avatar=Media(first, "image/png"))
    capture(bsky_account, connector)
    assert detect_drift().get("resolved") == 1
    drift.refresh_from_db()
    assert drift.status == "resolved"

    # A new photo that capture cannot fetch (over the size limit): the snapshot has no
    # attachment, the medium is reported missing, and the photo is "not seen": no drift.
    settings.VETLINE_CAPTURE_MEDIA_MAX_BYTES = 50
    connector.update_profile(tokens=t, avatar=Media(third, "image/png"))
    assert capture(bsky_account, connector).media_missing == 1
    assert _snapshot(bsky_account).attachments == []
    assert AuditEvent.objects.filter(action="capture.media.missing").count() == 1
    assert detect_drift().get("match") == 1
    assert not ProfileDrift.objects.exclude(status="resolved").exists()
