"""Instagram media into the blob store: each captured IG Media's files looked up when capture
fetches them (``media_url``, a carousel's ``children``: signed CDN URLs, never part of the
post's payload), downloaded with the Graph SDK's session and archived through the framework's
page path. Recorded-shape answers (fixtures/README.md) replayed by ``responses``: a carousel
video over the size limit, and a tagged post deleted before its media could be fetched."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import responses

from vetline.archive.blobs import default_store
from vetline.archive.models import ArchivedRecord
from vetline.audit.models import AuditEvent
from vetline.connectors.actions import CaptureOutcome, archive_page
from vetline.connectors.facebook.tests.helpers import fixture_json
from vetline.connectors.instagram.connector import InstagramConnector, media_files
from vetline.connectors.models import CaptureState

from .test_instagram import M1, M2, TOKENS, G, add, connector, fx, script_sweep

pytestmark = pytest.mark.django_db
TAGGED = "17900000000000099"
PHOTO = b"\xff\xd8\xff\xe0 branch opening photo \xff\xd9"
SLIDE = b"\xff\xd8\xff\xe0 carousel slide one \xff\xd9"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000


@pytest.fixture
def blob_dir(settings: Any, tmp_path: Any) -> Any:
    settings.VETLINE_BLOB_BACKEND = "local"
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")
    return tmp_path / "blobs"


def sweep_into_archive(account: Any, c: InstagramConnector) -> CaptureOutcome:
    """The capture loop's page path: each page archived with its media, cursor advanced."""
    state = CaptureState.objects.create(account=account)
    outcome = CaptureOutcome(account_id=account.pk, status="captured")
    cursor = None
    for _ in range(50):
        page = c.fetch_activity(tokens=TOKENS, handle="acmebank", cursor=cursor, limit=1)
        archived = archive_page(
            account=account,
            state_id=state.pk,
            expected=state,
            page=page,
            outcome=outcome,
            connector=c,
            tokens=TOKENS,
        )
        assert archived is not None
        state, cursor = archived, page.cursor
        if not page.more:
            return outcome
    raise AssertionError("the sweep does not end")


@responses.activate
def test_instagram_media_files_are_archived(world: Any, blob_dir: Any, settings: Any) -> None:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    settings.VETLINE_CAPTURE_MEDIA_MAX_BYTES = 1000
    account = SocialAccount.objects.create(
        network=Network.INSTAGRAM,
        handle="acmebank",
        kind=AccountKind.CORPORATE,
        owner=world.people[next(iter(world.people))],
    )
    script_sweep()
    image = fixture_json(Path(__file__).parent, "media_urls_image.json")
    carousel = fixture_json(Path(__file__).parent, "media_urls_carousel.json")
    add("GET", M2, fx("media_urls_image.json"))
    add("GET", M1, fx("media_urls_carousel.json"))
    add("GET", TAGGED, fx("error_not_found.json"), status=400)
    slide_url, video_url = (c["media_url"] for c in carousel["children"]["data"])
    responses.add("GET", image["media_url"], body=PHOTO, content_type="image/jpeg")
    responses.add("GET", slide_url, body=SLIDE, content_type="image/jpeg")
    responses.add("GET", video_url, body=VIDEO, content_type="video/mp4")

    outcome = sweep_into_archive(account, connector())

    store = default_store()
    single = ArchivedRecord.objects.get(account=account, remote_id=M2)
    assert single.attachments == [hashlib.sha256(PHOTO).hexdigest()]
    assert store.get(single.attachments[0]) == PHOTO
    # The carousel: its image is kept; its video is over the limit, said so, not kept.
    album = ArchivedRecord.objects.get(account=account, remote_id=M1)
    assert album.attachments == [hashlib.sha256(SLIDE).hexdigest()]
    assert not store.exists(hashlib.sha256(VIDEO).hexdigest())
    # The tagged post was deleted before its media could be asked for: archived, reported.
    tagged = ArchivedRecord.objects.get(account=account, remote_id=TAGGED)
    assert tagged.attachments == []
    assert outcome.media_missing == 2
    events = {
        e.after["remote_id"]: e.after
        for e in AuditEvent.objects.filter(action="capture.media.missing")
        if e.after is not None
    }
    assert events[M1]["url"] == video_url and "over the 1,000-byte limit" in events[M1]["reason"]
    assert events[TAGGED]["url"] == f"graph:{TAGGED}" and events[TAGGED]["network"] == "instagram"
    # The media lookups asked for the URL fields; the CDN got no access token.
    lookup = next(c for c in responses.calls if c.request.url.startswith(f"{G}/{M2}?"))
    assert "media_url" in lookup.request.url
    cdn = next(c for c in responses.calls if c.request.url == image["media_url"])
    assert "access_token" not in cdn.request.url and "Authorization" not in cdn.request.headers


def test_media_files_of_single_and_carousel() -> None:
    assert [m.ref for m in media_files({"media_type": "IMAGE", "media_url": "https://a/1"})] == [
        "https://a/1"
    ]
    children = {"data": [{"media_url": "https://a/2"}, {"media_url": "https://a/2"}, {}]}
    assert [m.ref for m in media_files({"children": children, "media_url": "x"})] == ["https://a/2"]
    assert media_files({"media_type": "IMAGE"}) == [] and media_files("nonsense") == []
