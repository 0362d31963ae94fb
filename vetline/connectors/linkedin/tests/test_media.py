"""LinkedIn media into the blob store: a post's image and video URNs (Posts API ``content``)
resolved with LinkedIn's client through the Images and Videos APIs (``downloadUrl``), the bytes
fetched from the signed URL and archived through the framework's page path. Recorded-shape
answers (fixtures/README.md) replayed by ``responses``; the video's download URL answers 404."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses

from vetline.archive.blobs import default_store
from vetline.archive.models import ArchivedRecord
from vetline.audit.models import AuditEvent
from vetline.connectors.actions import CaptureOutcome, archive_page
from vetline.connectors.base import TokenSet
from vetline.connectors.facebook.tests.helpers import FakeClock, fixture_bytes, fixture_json
from vetline.connectors.http import RetryPolicy
from vetline.connectors.linkedin.connector import LinkedInConnector, post_media
from vetline.connectors.models import Alert, CaptureState

pytestmark = pytest.mark.django_db
HERE = Path(__file__).parent
REST = "https://api.linkedin.com/rest"
ME = "urn:li:person:8675309abc"
TOKENS = TokenSet(access_token="AQVlinkedinACCESStoken0123456789", remote_account_id=ME)
WITH_IMAGE, WITH_VIDEO = "urn:li:share:7000000000000000011", "urn:li:share:7000000000000000010"
IMAGE_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF office photo\xff\xd9"
PICTURE_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF member picture\xff\xd9"


@pytest.fixture
def blob_dir(settings: Any, tmp_path: Any) -> Any:
    settings.VETLINE_BLOB_BACKEND = "local"
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")
    return tmp_path / "blobs"


def add(method: str, url: str | re.Pattern[str], body: bytes, status: int = 200) -> None:
    responses.add(method, url, body=body, status=status, content_type="application/json")


@responses.activate
def test_post_media_resolved_fetched_and_archived(world: Any, blob_dir: Any) -> None:
    image_url = fixture_json(HERE, "image_get.json")["downloadUrl"]
    video_url = fixture_json(HERE, "video_get.json")["downloadUrl"]
    add("GET", "https://api.linkedin.com/v2/userinfo", fixture_bytes(HERE, "userinfo.json"))
    add("GET", f"{REST}/posts", fixture_bytes(HERE, "posts_media.json"))
    add(
        "GET",
        re.compile(rf"{re.escape(REST)}/socialActions/.*"),
        fixture_bytes(HERE, "comments_empty.json"),
    )
    add("GET", re.compile(rf"{re.escape(REST)}/images/.*"), fixture_bytes(HERE, "image_get.json"))
    add("GET", re.compile(rf"{re.escape(REST)}/videos/.*"), fixture_bytes(HERE, "video_get.json"))
    responses.add("GET", image_url, body=IMAGE_BYTES, content_type="image/jpeg")
    responses.add("GET", video_url, status=404, body=b"")
    picture_url = fixture_json(HERE, "userinfo.json")["picture"]
    responses.add("GET", picture_url, body=PICTURE_BYTES, content_type="image/jpeg")

    connector = LinkedInConnector(
        config={"client_id": "86abcdef", "client_secret": "linkedin-secret-123456"},
        clock=FakeClock(),
        policy=RetryPolicy(max_attempts=3),
    )
    account = world.other
    state = CaptureState.objects.create(account=account)
    outcome = CaptureOutcome(account_id=account.pk, status="captured")
    cursor = None
    for _ in range(20):  # the sweep: profile, posts, their comments
        page = connector.fetch_activity(tokens=TOKENS, handle="acme-corp", cursor=cursor, limit=10)
        archived = archive_page(
            account=account,
            state_id=state.pk,
            expected=state,
            page=page,
            outcome=outcome,
            connector=connector,
            tokens=TOKENS,
        )
        assert archived is not None
        state, cursor = archived, page.cursor
        if not page.more:
            break

    image_post = ArchivedRecord.objects.get(account=account, remote_id=WITH_IMAGE)
    digest = hashlib.sha256(IMAGE_BYTES).hexdigest()
    assert image_post.attachments == [digest]
    assert default_store().get(digest) == IMAGE_BYTES
    raw = json.loads(bytes(image_post.raw_payload))
    assert raw["content"]["media"]["altText"] == "The Dublin office, front desk"
    # The signed download URL is used as is: no token sent to LinkedIn's media servers.
    image_call = next(c for c in responses.calls if c.request.url == image_url)
    assert "Authorization" not in image_call.request.headers
    resolve = next(c for c in responses.calls if "/rest/images/" in c.request.url)
    assert resolve.request.headers["LinkedIn-Version"] == "202610"

    # The member's picture (OpenID userinfo ``picture``) is the profile snapshot's only
    # attachment, fetched from its signed URL without the token.
    profile = ArchivedRecord.objects.get(account=account, kind="profile_snapshot")
    assert profile.attachments == [hashlib.sha256(PICTURE_BYTES).hexdigest()]
    picture_call = next(c for c in responses.calls if c.request.url == picture_url)
    assert "Authorization" not in picture_call.request.headers

    # The video's download URL is gone: the post is archived without it, and it is said so.
    video_post = ArchivedRecord.objects.get(account=account, remote_id=WITH_VIDEO)
    assert video_post.attachments == []
    assert outcome.media_missing == 1
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert event.after is not None
    assert (event.after["network"], event.after["remote_id"], event.after["url"]) == (
        "linkedin",
        WITH_VIDEO,
        "urn:li:video:D4D05AQHr9Vid30w1g",
    )
    assert "HTTP 404" in event.after["reason"]
    assert Alert.objects.filter(account=account, code__startswith="media_missing:").exists()


def test_post_media_of_multi_image_and_article() -> None:
    post = {
        "content": {
            "multiImage": {
                "images": [
                    {"id": "urn:li:image:A", "altText": "one"},
                    {"id": "urn:li:image:B"},
                    {"id": "urn:li:image:A", "altText": "one again"},
                ]
            },
            "article": {"source": "https://example.com", "thumbnail": "urn:li:image:T"},
        }
    }
    assert [(m.ref, m.alt_text) for m in post_media(post)] == [
        ("urn:li:image:A", "one"),
        ("urn:li:image:B", ""),
        ("urn:li:image:T", ""),
    ]
    assert post_media({"commentary": "text only"}) == []
