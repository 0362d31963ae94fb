"""The Bluesky connector against the real reference server (the pinned @atproto/dev-env): connect
an account, publish posts, replies and media, edit and delete, update the profile, and capture
all of it through backfill and the firehose (and polling) into the archive."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest

from vetline.accounts.models import AccountKind, Network, SocialAccount
from vetline.archive.actions import ingest_batch
from vetline.archive.models import ArchivedRecord, QuarantinedItem
from vetline.connectors import actions
from vetline.connectors.actions import _tokens_for
from vetline.connectors.base import Media, PublishRequest
from vetline.connectors.bluesky.connector import BlueskyConnector, CaptureCursor
from vetline.connectors.bluesky.tests.conftest import LocalNetwork, new_remote_account
from vetline.connectors.models import CaptureState, Connection
from vetline.connectors.registry import installed
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db(transaction=False)


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def tokens(account: Any) -> Any:
    return _tokens_for(Connection.objects.select_related("account").get(account=account))


def capture(account: Any, connector: BlueskyConnector) -> Any:
    outcome = actions.capture_account(account_id=account.pk, connector=connector)
    assert outcome.status == "captured", outcome
    assert outcome.quarantined == 0, list(QuarantinedItem.objects.values("reason"))
    return outcome


def archived(account: Any) -> list[tuple[str, str, str, int]]:
    return sorted(
        ArchivedRecord.objects.filter(account=account).values_list(
            "remote_id", "kind", "direction", "version"
        )
    )


def test_entry_point_and_capabilities() -> None:
    plugin = installed()["bluesky"]
    assert plugin.cls is BlueskyConnector
    caps = BlueskyConnector.capabilities
    assert caps.streaming and caps.capture_deletions and caps.capture_edits
    assert not caps.capture_direct_messages and not caps.oauth2
    assert any("chat.bsky" in note for note in caps.notes)


def test_connect_stores_session_not_password(world: Any, bsky_account: Any) -> None:
    connection = Connection.objects.get(account=bsky_account)
    assert connection.status == "connected"
    assert connection.remote_account_id == bsky_account.remote_did
    assert connection.token_expires_at is not None
    from vetline.accounts.models import Credential

    kinds = set(
        Credential.objects.filter(account=bsky_account, revoked_at__isnull=True).values_list(
            "kind", flat=True
        )
    )
    assert kinds == {"access_token", "refresh_token"}  # the app password is never kept


def test_app_password_refusals(world: Any, bsky_network: LocalNetwork, connector: Any) -> None:
    """A wrong app password, and an app password of another account, are clear errors that
    leave the account unconnected."""
    from vetline.core.errors import ValidationFailed

    handle, _, _ = new_remote_account(bsky_network, "refused")
    other_handle, _, other_password = new_remote_account(bsky_network, "other")
    account = SocialAccount.objects.create(
        network=Network.BLUESKY,
        handle=handle,
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
    )
    admin = world.people[Role.ADMINISTRATOR]
    with pytest.raises(ValidationFailed) as info:
        actions.connect_with_app_password(
            actor=admin,
            account=account,
            identifier=handle,
            app_password="wrong-pass-word-1234",
            connector=connector,
        )
    assert info.value.code == "sign_in_refused"
    with pytest.raises(ValidationFailed) as info:
        actions.connect_with_app_password(
            actor=admin,
            account=account,
            identifier=other_handle,
            app_password=other_password,
            connector=connector,
        )
    assert info.value.code == "wrong_account"
    assert not Connection.objects.filter(account=account, status="connected").exists()


def test_refresh_rotates_the_session(
    world: Any, bsky_account: Any, connector: BlueskyConnector
) -> None:
    connection = Connection.objects.get(account=bsky_account)
    before = tokens(bsky_account)
    fresh = actions.refresh_tokens(connection_id=connection.pk, connector=connector)
    assert fresh.refresh_token != before.refresh_token
    assert fresh.remote_account_id == bsky_account.remote_did
    # The fresh session works. (The PDS still accepts the old refresh token for a grace
    # period, so a refresh lost in a crash is not fatal.)
    assert connector.fetch_profile(tokens=tokens(bsky_account), handle="").remote_account_id


def test_publish_edit_delete_profile_and_capture(
    world: Any, bsky_network: LocalNetwork, bsky_account: Any, connector: BlueskyConnector
) -> None:
    t = tokens(bsky_account)
    did = bsky_account.remote_did
    post = connector.publish(
        tokens=t, request=PublishRequest(text="Spring webinar open https://example.com #news")
    )
    assert post.remote_id.startswith(f"at://{did}/app.bsky.feed.post/")
    assert post.url.endswith(post.remote_id.rsplit("/", 1)[1])
    media = connector.publish(
        tokens=t,
        request=PublishRequest(text="Poster", media=(Media(png(), "image/png", "the poster"),)),
    )
    doomed = connector.publish(tokens=t, request=PublishRequest(text="Oops, wrong account"))
    connector.update_profile(tokens=t, display_name="Acme <b>Corp</b>", description="Hello")

    # Backfill: everything in the repository so far.
    first = capture(bsky_account, connector)
    assert first.ingested == 4
    state = CaptureState.objects.get(account=bsky_account)
    assert CaptureCursor.load(state.cursor).phase == "live"
    rows = {r[0]: r for r in archived(bsky_account)}
    assert rows[post.remote_id][1:] == ("post", "outbound", 1)
    media_record = ArchivedRecord.objects.get(account=bsky_account, remote_id=media.remote_id)
    raw = json.loads(bytes(media_record.raw_payload))
    assert raw["uri"] == media.remote_id and raw["value"]["embed"]["images"][0]["alt"] == (
        "the poster"
    )
    profile = ArchivedRecord.objects.get(account=bsky_account, kind="profile_snapshot")
    assert profile.text == "Acme <b>Corp</b>\nHello"

    # Reply from a customer on the same PDS, our reply to it, an edit, a deletion, a new
    # profile: all reach the archive through the firehose.
    c_handle, c_did, c_password = new_remote_account(bsky_network, "casey")
    customer = connector.create_session(identifier=c_handle, app_password=c_password)
    theirs = connector.publish(
        tokens=customer,
        request=PublishRequest(text="Any fees?", reply_to_remote_id=post.remote_id),
    )
    ours = connector.publish(
        tokens=t, request=PublishRequest(text="No fees.", reply_to_remote_id=theirs.remote_id)
    )
    connector.edit(tokens=t, remote_id=post.remote_id, text="Spring webinar open (edited)")
    connector.delete(tokens=t, remote_id=doomed.remote_id)
    connector.update_profile(tokens=t, description="Hello again")

    second = capture(bsky_account, connector)
    assert second.ingested == 5, "\n".join(map(str, archived(bsky_account)))
    cursor = CaptureCursor.load(CaptureState.objects.get(account=bsky_account).cursor)
    assert cursor.seq is not None  # resumes from the firehose position from now on
    by_key = {(r[0], r[3]): r for r in archived(bsky_account)}
    assert by_key[(theirs.remote_id, 1)][1:3] == ("reply", "inbound")
    assert by_key[(ours.remote_id, 1)][1:3] == ("reply", "outbound")
    assert by_key[(post.remote_id, 2)][1] == "edit"
    assert by_key[(doomed.remote_id, 2)][1] == "deletion"
    reply = ArchivedRecord.objects.get(account=bsky_account, remote_id=ours.remote_id)
    assert reply.parent_remote_id == theirs.remote_id
    assert reply.thread_id == post.remote_id == reply.conversation_id
    inbound = ArchivedRecord.objects.get(account=bsky_account, remote_id=theirs.remote_id)
    assert inbound.author_handle == c_did and not inbound.adopted
    edit = ArchivedRecord.objects.get(account=bsky_account, remote_id=post.remote_id, version=2)
    assert edit.text == "Spring webinar open (edited)" and edit.network_timestamp is not None
    assert ArchivedRecord.objects.filter(account=bsky_account, kind="profile_snapshot").count() == 2

    # Nothing new: capturing again adds nothing, and neither does replaying the whole
    # repository (backfill from scratch) or the whole firehose: no duplicates, no conflicts.
    assert capture(bsky_account, connector).ingested == 0
    CaptureState.objects.filter(account=bsky_account).update(cursor="", has_cursor=False)
    replay = capture(bsky_account, connector)
    assert replay.ingested == 0
    assert replay.quarantined == 0
    live = CaptureCursor(phase="live", seq=0, rev="x").dump()
    CaptureState.objects.filter(account=bsky_account).update(cursor=live, has_cursor=True)
    assert capture(bsky_account, connector).ingested == 0
    assert len(archived(bsky_account)) == 9


def test_crash_resume_from_the_firehose_cursor(
    world: Any, bsky_account: Any, connector: BlueskyConnector
) -> None:
    t = tokens(bsky_account)
    capture(bsky_account, connector)  # backfill of an empty repository, then live
    capture(bsky_account, connector)
    published = [
        connector.publish(tokens=t, request=PublishRequest(text=f"Update {i}")) for i in range(5)
    ]
    # A capture that fetched a page and crashed before archiving it leaves the cursor as it
    # was: the next one gets the same items again, in small pages, with no loss.
    page = connector.fetch_activity(
        tokens=t,
        handle=bsky_account.handle,
        cursor=CaptureState.objects.get(account=bsky_account).cursor,
        limit=2,
    )
    assert len(page.items) == 2 and page.more
    outcome = actions.capture_account(account_id=bsky_account.pk, connector=connector, page_size=2)
    assert outcome.status == "captured" and outcome.ingested == 5 and outcome.pages >= 3
    assert {p.remote_id for p in published} <= {r[0] for r in archived(bsky_account)}
    # Re-archiving the page fetched before the "crash" is recognised as duplicates.
    report = ingest_batch(
        items=list(page.items), account=bsky_account, source="api:bluesky", actor=None
    )
    assert report.duplicates == 2 and report.ingested == 0


def test_polling_fallback_detects_new_records_edits_and_deletions(
    world: Any, bsky_network: LocalNetwork, bsky_account: Any
) -> None:
    polling = BlueskyConnector(config=bsky_network.config(firehose=False))
    t = tokens(bsky_account)
    kept = polling.publish(tokens=t, request=PublishRequest(text="Kept"))
    gone = polling.publish(tokens=t, request=PublishRequest(text="Gone soon"))
    capture(bsky_account, polling)
    assert capture(bsky_account, polling).ingested == 0  # head unchanged: one cheap call
    polling.delete(tokens=t, remote_id=gone.remote_id)
    polling.edit(tokens=t, remote_id=kept.remote_id, text="Kept (edited)")
    fresh = polling.publish(tokens=t, request=PublishRequest(text="New"))
    assert capture(bsky_account, polling).ingested == 3
    kinds = {(r[0], r[3]): r[1] for r in archived(bsky_account)}
    assert kinds[(gone.remote_id, 2)] == "deletion"
    assert kinds[(kept.remote_id, 2)] == "edit"
    assert kinds[(fresh.remote_id, 1)] == "post"
    assert capture(bsky_account, polling).ingested == 0


def test_firehose_unreachable_falls_back_to_polling(
    world: Any, bsky_network: LocalNetwork, bsky_account: Any
) -> None:
    broken = BlueskyConnector(
        config=bsky_network.config(firehose_url="ws://127.0.0.1:9/xrpc/com.atproto.sync.x")
    )
    t = tokens(bsky_account)
    capture(bsky_account, broken)
    post = broken.publish(tokens=t, request=PublishRequest(text="Still captured"))
    capture(bsky_account, broken)
    assert post.remote_id in {r[0] for r in archived(bsky_account)}


def test_expired_session_is_refreshed_by_the_framework(
    world: Any, bsky_account: Any, connector: BlueskyConnector
) -> None:
    import datetime as dt

    Connection.objects.filter(account=bsky_account).update(
        token_expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    )
    old = tokens(bsky_account)
    capture(bsky_account, connector)
    # (Access JWTs issued within the same second are identical; refresh JWTs are unique.)
    assert tokens(bsky_account).refresh_token != old.refresh_token
    assert Connection.objects.get(account=bsky_account).token_expires_at.year > 2000


def test_tokens_never_logged(
    world: Any, bsky_account: Any, connector: BlueskyConnector, caplog: Any
) -> None:
    import logging

    from vetline.connectors.http import TokenRedactingFilter

    t = tokens(bsky_account)
    logger = logging.getLogger("vetline.test.bluesky")
    with caplog.at_level(logging.INFO):
        logger.info("session %s", t.access_token)
    record = caplog.records[-1]
    TokenRedactingFilter().filter(record)
    assert t.access_token not in record.getMessage()
