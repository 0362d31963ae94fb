"""Facebook Page media into the blob store: each captured post's attachments looked up when
capture fetches its media (StoryAttachment ``media``: signed CDN URLs, never part of the post's
payload, since they change on every read), downloaded with the Graph SDK's session and archived
through the framework's page path. Recorded-shape answers (fixtures/README.md) replayed by
``responses``: an album whose second photo is gone from the CDN (404), a link share (its
preview image is not the post's medium), a visitor's video."""

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
from vetline.connectors.facebook.connector import FacebookPagesConnector, attachment_media
from vetline.connectors.facebook.tests.helpers import fixture_json
from vetline.connectors.models import Alert, CaptureState

from .test_facebook import POST1, POST2, POST3, TOKENS, add, connector, fx, script_first_sweep

pytestmark = pytest.mark.django_db
HERE = Path(__file__).parent
TAGGED = "9000000000000042_3300000000001"
MAP = b"\xff\xd8\xff\xe0 branch map \xff\xd9"
CLIP = b"\x00\x00\x00\x18ftypmp42 unboxing clip"


@pytest.fixture
def blob_dir(settings: Any, tmp_path: Any) -> Any:
    settings.VETLINE_BLOB_BACKEND = "local"
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")
    return tmp_path / "blobs"


def sweep_into_archive(account: Any, c: FacebookPagesConnector) -> CaptureOutcome:
    state = CaptureState.objects.create(account=account)
    outcome = CaptureOutcome(account_id=account.pk, status="captured")
    cursor = None
    for _ in range(50):
        page = c.fetch_activity(tokens=TOKENS, handle="acmebank", cursor=cursor, limit=2)
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
def test_page_post_media_are_archived(world: Any, blob_dir: Any) -> None:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    account = SocialAccount.objects.create(
        network=Network.FACEBOOK,
        handle="acmebank",
        kind=AccountKind.CORPORATE,
        owner=world.people[next(iter(world.people))],
    )
    script_first_sweep()
    add("GET", POST3, fx("post_attachments_album.json"))
    add("GET", POST2, b'{"id": "%s"}' % POST2.encode())
    add("GET", POST1, fx("post_attachments_link.json"))
    add("GET", TAGGED, fx("post_attachments_video.json"))
    album = fixture_json(HERE, "post_attachments_album.json")["attachments"]["data"][0]
    map_url, gone_url = (s["media"]["image"]["src"] for s in album["subattachments"]["data"])
    video = fixture_json(HERE, "post_attachments_video.json")["attachments"]["data"][0]
    responses.add("GET", map_url, body=MAP, content_type="image/jpeg")
    responses.add("GET", gone_url, status=404, body=b"")
    responses.add("GET", video["media"]["source"], body=CLIP, content_type="video/mp4")

    outcome = sweep_into_archive(account, connector())

    store = default_store()
    post = ArchivedRecord.objects.get(account=account, remote_id=POST3)
    assert post.attachments == [hashlib.sha256(MAP).hexdigest()]  # the cover is not twice
    assert store.get(post.attachments[0]) == MAP
    assert ArchivedRecord.objects.get(account=account, remote_id=POST1).attachments == []
    assert ArchivedRecord.objects.get(account=account, remote_id=POST2).attachments == []
    visitor = ArchivedRecord.objects.get(account=account, remote_id=TAGGED)
    assert visitor.attachments == [hashlib.sha256(CLIP).hexdigest()]
    # The album's second photo is gone from the CDN: reported, not silently dropped.
    assert outcome.media_missing == 1
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert event.after is not None
    assert (event.after["network"], event.after["remote_id"], event.after["url"]) == (
        "facebook",
        POST3,
        gone_url,
    )
    assert Alert.objects.filter(account=account, code__startswith="media_missing:").exists()
    # The lookup uses the Page token; the CDN gets only the signed URL.
    lookup = next(
        c
        for c in responses.calls
        if c.request.url.startswith(f"https://graph.facebook.com/v23.0/{POST3}?")
    )
    assert "attachments" in lookup.request.url
    cdn = next(c for c in responses.calls if c.request.url == map_url)
    assert "access_token" not in cdn.request.url and "appsecret_proof" not in cdn.request.url


def test_attachment_media_picks_the_posts_own_media() -> None:
    album = fixture_json(HERE, "post_attachments_album.json")
    assert [m.alt_text for m in attachment_media(album)] == ["Map of our Dublin branches", ""]
    assert attachment_media(fixture_json(HERE, "post_attachments_link.json")) == []
    video = attachment_media(fixture_json(HERE, "post_attachments_video.json"))
    assert [m.ref.split("?")[0][-12:] for m in video] == ["AQN_unboxing.mp4"[-12:]]
    assert attachment_media({"attachments": "nonsense"}) == [] and attachment_media(None) == []
