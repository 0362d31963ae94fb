"""X media into the blob store: the Media objects expanded with ``attachments.media_keys``
(``media.fields`` url, variants, alt_text; docs.x.com, X API v2 Media object) fetched at
capture with tweepy's session, replayed by ``responses`` from recorded-shape answers, including
a medium gone (404) and one over the size limit."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from vetline.archive.blobs import default_store
from vetline.archive.models import ArchivedRecord
from vetline.audit.models import AuditEvent
from vetline.connectors.base import MEDIA_KEY, MediaTooLarge, TokenSet
from vetline.connectors.models import Alert
from vetline.connectors.x.connector import XConnector, media_ref, original_avatar_url

from .conftest import API, CONFIG, USER_ID, FakeClock
from .test_archive import (
    AVATAR_BYTES,
    AVATAR_URL,
    MEDIA_BYTES,
    MEDIA_URL,
    TWEETS,
    connect,
    register_capture,
)

pytestmark = pytest.mark.django_db
WITH_MEDIA = "1897000000000000002"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def blob_dir(settings: Any, tmp_path: Any) -> Any:
    settings.VETLINE_BLOB_BACKEND = "local"
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")
    return tmp_path / "blobs"


def capture(world: Any) -> Any:
    from vetline.connectors.actions import capture_account

    outcome = capture_account(
        account_id=world.corporate.pk, connector=XConnector(config=CONFIG, clock=FakeClock())
    )
    assert outcome.status == "captured", outcome.error
    return outcome


def test_post_photo_is_archived_as_a_blob_with_its_media_object(
    rsps: responses.RequestsMock, world: Any, settings: Any, blob_dir: Any
) -> None:
    connect(rsps, world, settings)
    register_capture(rsps)

    outcome = capture(world)
    assert (outcome.ingested, outcome.media_missing) == (9, 0)
    timeline = next(c for c in rsps.calls if c.request.url.startswith(TWEETS))
    assert "attachments.media_keys" in timeline.request.url
    assert "media.fields=" in timeline.request.url

    record = ArchivedRecord.objects.get(account=world.corporate, remote_id=WITH_MEDIA)
    digest = hashlib.sha256(MEDIA_BYTES).hexdigest()
    assert record.attachments == [digest]
    assert default_store().get(digest) == MEDIA_BYTES
    # The raw payload: the post and its Media object as X sent them (alt text included).
    raw = json.loads(bytes(record.raw_payload))
    assert raw["data"]["id"] == WITH_MEDIA
    assert raw["includes"]["media"] == [
        {
            "media_key": "3_1897000000000000100",
            "type": "photo",
            "url": MEDIA_URL,
            "alt_text": "Chart of quarterly returns",
        }
    ]
    plain = ArchivedRecord.objects.get(account=world.corporate, remote_id="1897000000000000001")
    assert plain.attachments == [] and json.loads(bytes(plain.raw_payload))["id"]
    media_calls = [c for c in rsps.calls if c.request.url == MEDIA_URL]
    assert len(media_calls) == 1
    assert "Authorization" not in media_calls[0].request.headers  # the CDN gets no token


def test_gone_and_oversized_media_are_reported_not_blocking(
    rsps: responses.RequestsMock, world: Any, settings: Any, blob_dir: Any
) -> None:
    connect(rsps, world, settings)
    register_capture(rsps)
    rsps.replace(responses.GET, MEDIA_URL, status=404, body=b"")

    outcome = capture(world)
    assert (outcome.ingested, outcome.media_missing) == (9, 1)
    record = ArchivedRecord.objects.get(account=world.corporate, remote_id=WITH_MEDIA)
    assert record.attachments == []
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert event.after is not None
    assert (event.after["network"], event.after["remote_id"], event.after["url"]) == (
        "x",
        WITH_MEDIA,
        MEDIA_URL,
    )
    assert "HTTP 404" in event.after["reason"]
    assert Alert.objects.filter(account=world.corporate, code__startswith="media_missing:").count()

    # Over the limit: refused from the declared length, the body is not kept.
    settings.VETLINE_CAPTURE_MEDIA_MAX_BYTES = 10
    connector = XConnector(config=CONFIG, clock=FakeClock())
    rsps.replace(responses.GET, MEDIA_URL, body=MEDIA_BYTES, content_type="image/jpeg")
    tokens = TokenSet(access_token="x" * 40, remote_account_id=USER_ID, remote_handle="@acme")

    with pytest.raises(MediaTooLarge, match="over the 10-byte limit"):
        connector.fetch_media(tokens=tokens, media=media_ref({"url": MEDIA_URL}), max_bytes=10)


def test_media_ref_picks_the_best_mp4_variant() -> None:
    video = {
        "media_key": "7_1",
        "type": "video",
        "alt_text": "Webinar clip",
        "preview_image_url": "https://pbs.twimg.com/ext_tw_video_thumb/1/pu/img/p.jpg",
        "variants": [
            {"content_type": "application/x-mpegURL", "url": "https://video.twimg.com/1.m3u8"},
            {"bit_rate": 632000, "content_type": "video/mp4", "url": "https://video.twimg.com/a"},
            {"bit_rate": 2176000, "content_type": "video/mp4", "url": "https://video.twimg.com/b"},
        ],
    }
    ref = media_ref(video)
    assert (ref.ref, ref.mime_type, ref.alt_text) == (
        "https://video.twimg.com/b",
        "video/mp4",
        "Webinar clip",
    )
    # No address at all: named by its key, and reported missing when fetched (not dropped).
    assert media_ref({"media_key": "3_9", "type": "photo"}).ref == "media_key:3_9"


def test_search_results_carry_no_media(rsps: responses.RequestsMock) -> None:
    from .conftest import fixture_bytes

    rsps.get(
        f"{API}/tweets/search/recent",
        body=fixture_bytes("search_recent.json"),
        content_type="application/json",
    )
    tokens = TokenSet(access_token="x" * 40, remote_account_id=USER_ID, remote_handle="@acme")
    found = XConnector(config=CONFIG, clock=FakeClock()).search(tokens=tokens, query="acme")
    assert found and all(MEDIA_KEY not in item for item in found)
    assert all(base64.b64decode(item["raw_payload_b64"]) for item in found)


# --- The profile's avatar ---------------------------------------------------------------------


def test_avatar_is_archived_in_its_original_size_and_not_fetched_again(
    rsps: responses.RequestsMock, world: Any, settings: Any, blob_dir: Any
) -> None:
    from vetline.connectors.models import CaptureState

    connect(rsps, world, settings)
    register_capture(rsps)

    assert capture(world).media_missing == 0
    snapshot = ArchivedRecord.objects.get(account=world.corporate, kind="profile_snapshot")
    digest = hashlib.sha256(AVATAR_BYTES).hexdigest()
    assert snapshot.attachments == [digest]
    assert default_store().get(digest) == AVATAR_BYTES
    # The raw payload keeps X's own _normal URL; the original size was fetched, without a token.
    raw = json.loads(bytes(snapshot.raw_payload))
    assert raw["profile_image_url"].endswith("/acme_normal.jpg")
    calls = [c for c in rsps.calls if c.request.url == AVATAR_URL]
    assert len(calls) == 1 and "Authorization" not in calls[0].request.headers

    CaptureState.objects.filter(account=world.corporate).update(cursor="", has_cursor=False)
    again = capture(world)
    assert (again.ingested, again.media_missing) == (0, 0)
    assert len([c for c in rsps.calls if c.request.url == AVATAR_URL]) == 1


def test_avatar_that_cannot_be_fetched_is_reported(
    rsps: responses.RequestsMock, world: Any, settings: Any, blob_dir: Any
) -> None:
    connect(rsps, world, settings)
    register_capture(rsps)
    rsps.replace(responses.GET, AVATAR_URL, status=404, body=b"")

    assert capture(world).media_missing == 1
    snapshot = ArchivedRecord.objects.get(account=world.corporate, kind="profile_snapshot")
    assert snapshot.attachments == []
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert event.after is not None and event.after["url"] == AVATAR_URL


def test_original_avatar_url() -> None:
    base = "https://pbs.twimg.com/profile_images/1466/AbC_d"
    assert original_avatar_url(f"{base}_normal.jpg") == f"{base}.jpg"
    assert original_avatar_url(f"{base}_400x400.png") == f"{base}.png"
    assert original_avatar_url(f"{base}_bigger") == base
    assert original_avatar_url(f"{base}.jpg") == f"{base}.jpg"  # already the original
    assert original_avatar_url(None) == ""
