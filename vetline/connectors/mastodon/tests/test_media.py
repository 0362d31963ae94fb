"""Mastodon media into the blob store: a status's ``media_attachments`` fetched at capture with
Mastodon.py's session, replayed by ``responses`` from recorded-shape answers (MediaAttachment,
docs.joinmastodon.org/entities/MediaAttachment, Mastodon 4.3), including a medium gone (404),
one over the size limit and a media server that fails once (503)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from vetline.archive.blobs import default_store
from vetline.archive.models import ArchivedRecord
from vetline.audit.models import AuditEvent
from vetline.connectors.mastodon.connector import MastodonConnector
from vetline.connectors.mastodon.mapping import attachment_media, profile_snapshot
from vetline.connectors.media import media_of
from vetline.connectors.models import Alert, CaptureState

from .conftest import FakeClock, fixture_json
from .test_archive import (
    AVATAR_BYTES,
    AVATAR_URL,
    MEDIA_BYTES,
    MEDIA_URL,
    connect,
    register_capture,
)

pytestmark = pytest.mark.django_db
WITH_MEDIA = "110000000000000002"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def blob_dir(settings: Any, tmp_path: Any) -> Any:
    settings.VETLINE_BLOB_BACKEND = "local"
    settings.VETLINE_BLOB_DIR = str(tmp_path / "blobs")
    return tmp_path / "blobs"


@pytest.fixture
def mastodon_account(world: Any) -> Any:
    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.identity.roles import Role

    return SocialAccount.objects.create(
        network=Network.MASTODON,
        handle="@acme@mastodon.example",
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
        display_name="Acme",
    )


def capture(account: Any, clock: FakeClock | None = None) -> Any:
    from vetline.connectors.actions import capture_account

    connector = MastodonConnector(config={}, clock=clock or FakeClock())
    outcome = capture_account(account_id=account.pk, connector=connector)
    assert outcome.status == "captured", outcome.error
    return outcome


def test_status_media_are_archived_as_blobs_and_not_fetched_again(
    rsps: responses.RequestsMock, world: Any, mastodon_account: Any, blob_dir: Any
) -> None:
    connect(rsps, world, mastodon_account)
    register_capture(rsps)

    outcome = capture(mastodon_account)
    assert (outcome.ingested, outcome.media_missing) == (9, 0)

    record = ArchivedRecord.objects.get(account=mastodon_account, remote_id=WITH_MEDIA)
    digest = hashlib.sha256(MEDIA_BYTES).hexdigest()
    assert record.attachments == [digest]
    assert default_store().get(digest) == MEDIA_BYTES
    # The alt text is where the server put it: the raw payload, exactly as received.
    raw = json.loads(bytes(record.raw_payload))
    assert raw["media_attachments"][0]["description"] == "Chart of quarterly returns"
    media_calls = [c for c in rsps.calls if c.request.url == MEDIA_URL]
    assert len(media_calls) == 1
    # The media server is not the account's server: the access token is not sent there.
    assert "Authorization" not in media_calls[0].request.headers

    # Lost cursor, everything fetched again: duplicates, and the medium is not downloaded again.
    CaptureState.objects.filter(account=mastodon_account).update(cursor="", has_cursor=False)
    again = capture(mastodon_account)
    assert (again.ingested, again.duplicates, again.quarantined) == (0, 9, 0)
    assert len([c for c in rsps.calls if c.request.url == MEDIA_URL]) == 1


def test_medium_gone_is_archived_without_it_audited_and_alerted(
    rsps: responses.RequestsMock, world: Any, mastodon_account: Any, blob_dir: Any
) -> None:
    connect(rsps, world, mastodon_account)
    register_capture(rsps)
    rsps.replace(responses.GET, MEDIA_URL, status=404, body=b"Not Found")

    outcome = capture(mastodon_account)
    assert (outcome.ingested, outcome.media_missing) == (9, 1)  # capture is not blocked

    record = ArchivedRecord.objects.get(account=mastodon_account, remote_id=WITH_MEDIA)
    assert record.attachments == []
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert event.actor is None and event.actor_name == "capture"
    assert event.after is not None
    assert {k: event.after[k] for k in ("network", "account_id", "remote_id", "url")} == {
        "network": "mastodon",
        "account_id": mastodon_account.pk,
        "remote_id": WITH_MEDIA,
        "url": MEDIA_URL,
    }
    assert "HTTP 404" in event.after["reason"]
    alert = Alert.objects.get(account=mastodon_account, code__startswith="media_missing:")
    assert alert.severity == "warning" and MEDIA_URL in alert.body
    # A 404 is final: asked once, not retried.
    assert len([c for c in rsps.calls if c.request.url == MEDIA_URL]) == 1


def test_oversized_medium_is_not_kept(
    rsps: responses.RequestsMock,
    world: Any,
    mastodon_account: Any,
    blob_dir: Any,
    settings: Any,
) -> None:
    settings.VETLINE_CAPTURE_MEDIA_MAX_BYTES = 1000
    connect(rsps, world, mastodon_account)
    register_capture(rsps)
    video = b"\x00\x00\x00\x18ftypmp42" + b"v" * 5000
    rsps.replace(responses.GET, MEDIA_URL, body=video, content_type="video/mp4")

    outcome = capture(mastodon_account)
    assert outcome.media_missing == 1
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert "over the 1,000-byte limit" in event.after["reason"]
    assert ArchivedRecord.objects.get(remote_id=WITH_MEDIA).attachments == []
    assert not default_store().exists(hashlib.sha256(video).hexdigest())


def test_media_server_failing_once_is_retried_within_the_page(
    rsps: responses.RequestsMock, world: Any, mastodon_account: Any, blob_dir: Any
) -> None:
    connect(rsps, world, mastodon_account)
    register_capture(rsps)
    rsps.replace(responses.GET, MEDIA_URL, status=503, body=b"Service Unavailable")
    rsps.add(responses.GET, MEDIA_URL, body=MEDIA_BYTES, content_type="image/png")
    clock = FakeClock()

    outcome = capture(mastodon_account, clock)
    assert outcome.media_missing == 0
    assert ArchivedRecord.objects.get(remote_id=WITH_MEDIA).attachments == [
        hashlib.sha256(MEDIA_BYTES).hexdigest()
    ]
    assert len(clock.sleeps) == 1  # one backoff on the injected clock, then the medium
    assert not AuditEvent.objects.filter(action="capture.media.missing").exists()


def test_attachment_media_of_status_boost_and_uncached_remote() -> None:
    first, _ = fixture_json("statuses_page1.json")
    assert first["id"] == WITH_MEDIA
    refs = attachment_media(first)
    assert [(r.ref, r.alt_text) for r in refs] == [(MEDIA_URL, "Chart of quarterly returns")]
    remote = dict(first["media_attachments"][0], url=None, remote_url="https://r.example/a.png")
    boost = {"id": "9", "media_attachments": [], "reblog": dict(first, media_attachments=[remote])}
    assert [r.ref for r in attachment_media(boost)] == ["https://r.example/a.png"]
    assert attachment_media({"media_attachments": "nonsense"}) == []


# --- The profile's avatar ---------------------------------------------------------------------


def _profile(account: Any) -> ArchivedRecord:
    return ArchivedRecord.objects.get(account=account, kind="profile_snapshot")


def test_avatar_is_archived_with_the_profile_and_not_fetched_again(
    rsps: responses.RequestsMock, world: Any, mastodon_account: Any, blob_dir: Any
) -> None:
    connect(rsps, world, mastodon_account)
    register_capture(rsps)

    capture(mastodon_account)
    digest = hashlib.sha256(AVATAR_BYTES).hexdigest()
    snapshot = _profile(mastodon_account)
    assert snapshot.attachments == [digest]  # the avatar only: the header is not captured
    assert default_store().get(digest) == AVATAR_BYTES
    avatar_calls = [c for c in rsps.calls if c.request.url == AVATAR_URL]
    assert len(avatar_calls) == 1
    # The avatar is on the media server, not the account's server: no token sent there.
    assert "Authorization" not in avatar_calls[0].request.headers

    # The unchanged profile captured again is a duplicate, and its avatar is not downloaded.
    CaptureState.objects.filter(account=mastodon_account).update(cursor="", has_cursor=False)
    again = capture(mastodon_account)
    assert (again.ingested, again.media_missing) == (0, 0)
    assert len([c for c in rsps.calls if c.request.url == AVATAR_URL]) == 1
    assert _profile(mastodon_account).attachments == [digest]


def test_avatar_gone_leaves_the_snapshot_without_it_and_is_reported(
    rsps: responses.RequestsMock, world: Any, mastodon_account: Any, blob_dir: Any
) -> None:
    connect(rsps, world, mastodon_account)
    register_capture(rsps)
    rsps.replace(responses.GET, AVATAR_URL, status=404, body=b"Not Found")

    outcome = capture(mastodon_account)
    assert (outcome.ingested, outcome.media_missing) == (9, 1)
    snapshot = _profile(mastodon_account)
    assert snapshot.attachments == []
    event = AuditEvent.objects.get(action="capture.media.missing")
    assert event.after is not None
    assert (event.after["remote_id"], event.after["url"]) == (snapshot.remote_id, AVATAR_URL)
    assert Alert.objects.filter(account=mastodon_account, code__startswith="media_missing:")


def test_profile_snapshot_announces_the_avatar_only() -> None:
    account = fixture_json("account_verify_credentials.json")
    item = profile_snapshot(account, handle="@acme@mastodon.example", captured_at="2025-03-01")
    assert [m.ref for m in media_of(item)] == [AVATAR_URL]
    # Only avatar_static given (some compatible servers): that one.
    static = {k: v for k, v in account.items() if k != "avatar"}
    item = profile_snapshot(static, handle="@acme@mastodon.example", captured_at="2025-03-01")
    assert [m.ref for m in media_of(item)] == [account["avatar_static"]]
    # The server's placeholder for an account without a picture is not an avatar.
    missing = "https://mastodon.example/avatars/original/missing.png"
    bare = dict(account, avatar=missing, avatar_static=missing)
    item = profile_snapshot(bare, handle="@acme@mastodon.example", captured_at="2025-03-01")
    assert media_of(item) == [] and "media" not in item
