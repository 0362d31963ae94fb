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
