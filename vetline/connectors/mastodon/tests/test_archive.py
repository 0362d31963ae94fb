"""Mastodon capture through the framework: connecting over OAuth, the capture path into the
archive with no duplicates on re-capture, and bad input quarantined with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from vetline.archive.models import ArchivedRecord, QuarantinedItem
from vetline.connectors.mastodon.connector import CursorState, MastodonConnector
from vetline.connectors.media import without_media

from .conftest import ACCOUNT_ID, HOST, TOKEN, FakeClock, fixture_bytes, fixture_json

pytestmark = pytest.mark.django_db
CALLBACK = "http://testserver/connectors/oauth/callback/"
STATUSES = f"{HOST}/api/v1/accounts/{ACCOUNT_ID}/statuses"
JSON = "application/json; charset=utf-8"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


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


def connect(rsps: responses.RequestsMock, world: Any, account: Any) -> Any:
    """The administrator connects the account: app registration, authorize URL, code exchange."""
    from vetline.connectors.actions import complete_connection, start_connection
    from vetline.identity.roles import Role

    admin = world.people[Role.ADMINISTRATOR]
    apps = rsps.post(
        f"{HOST}/api/v1/apps", body=fixture_bytes("apps_create.json"), content_type=JSON
    )
    rsps.get(f"{HOST}/.well-known/oauth-authorization-server", status=404, body=b"Not Found")
    token = rsps.post(
        f"{HOST}/oauth/token", body=fixture_bytes("oauth_token.json"), content_type=JSON
    )
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        body=fixture_bytes("account_verify_credentials.json"),
        content_type=JSON,
    )
    start = start_connection(actor=admin, account=account, redirect_uri=CALLBACK)
    query = parse_qs(urlsplit(start.url).query)
    assert start.url.startswith(f"{HOST}/oauth/authorize?")
    assert query["client_id"] == ["TWhM-tNSuncnqN7DBJmoyeLnk6K3iJJ71KKXxgL1hPM"]
    assert query["redirect_uri"] == [CALLBACK]
    connection = complete_connection(
        actor=admin,
        state=query["state"][0],
        code="qDFUEaYrRK5c-HNmTCJbAzazwLRInJ7VHFat0wcMgCU",
        redirect_uri=CALLBACK,
    )
    assert apps.call_count == 1  # registered once per server
    assert "code=qDFUEaYrRK5c" in token.calls[0].request.body
    return connection


#: the image of status 110000000000000002 (statuses_page1.json), as its media server sends it
MEDIA_URL = "https://files.mastodon.example/media_attachments/files/022/345/792/original/57859aede991da25.png"
MEDIA_BYTES = b"\x89PNG\r\n\x1a\n recorded poster bytes"
#: the account's avatar (account_verify_credentials.json ``avatar``), as its media server sends it
AVATAR_URL = "https://files.mastodon.example/accounts/avatars/109871234567890001/original/a.png"
AVATAR_BYTES = b"\x89PNG\r\n\x1a\n recorded avatar bytes"


def register_capture(rsps: responses.RequestsMock) -> None:
    rsps.get(MEDIA_URL, body=MEDIA_BYTES, content_type="image/png")
    rsps.get(AVATAR_URL, body=AVATAR_BYTES, content_type="image/png")
    everything = json.loads(fixture_bytes("statuses_page2.json")) + json.loads(
        fixture_bytes("statuses_page1.json")
    )
    rsps.get(
        STATUSES,
        json=everything,
        match=[matchers.query_param_matcher({"min_id": "0"}, strict_match=False)],
    )
    rsps.get(
        STATUSES,
        body=b"[]",
        content_type=JSON,
        match=[matchers.query_param_matcher({"min_id": "110000000000000004"}, strict_match=False)],
    )
    rsps.get(
        STATUSES,
        body=fixture_bytes("statuses_newest.json"),
        content_type=JSON,
        match=[lambda r: ("min_id=" not in r.url, "min_id")],
    )
    rsps.get(
        f"{HOST}/api/v1/statuses/110000000000000003/history",
        body=fixture_bytes("status_history.json"),
        content_type=JSON,
    )
    rsps.get(
        f"{HOST}/api/v1/notifications",
        body=fixture_bytes("notifications_mentions.json"),
        content_type=JSON,
        match=[matchers.query_param_matcher({"min_id": "0"}, strict_match=False)],
    )
    rsps.get(
        f"{HOST}/api/v1/notifications",
        body=b"[]",
        content_type=JSON,
        match=[matchers.query_param_matcher({"min_id": "35000002"}, strict_match=False)],
    )


def test_connect_capture_and_recapture_without_duplicates(
    rsps: responses.RequestsMock, world: Any, mastodon_account: Any
) -> None:
    from vetline.connectors.actions import capture_account
    from vetline.connectors.models import CaptureState, Connection

    connection = connect(rsps, world, mastodon_account)
    assert connection.status == "connected"
    assert connection.remote_account_id == f"{ACCOUNT_ID}@mastodon.example"
    assert connection.token_expires_at is None  # Mastodon tokens do not expire
    register_capture(rsps)
    connector = MastodonConnector(config={}, clock=FakeClock())

    outcome = capture_account(account_id=mastodon_account.pk, connector=connector)
    assert outcome.status == "captured", outcome.error
    # 4 own statuses, 2 edits of one of them, 2 mentions, the profile
    assert (outcome.ingested, outcome.quarantined) == (9, 0)
    records = ArchivedRecord.objects.filter(account=mastodon_account)
    assert records.count() == 9
    edits = records.filter(remote_id="110000000000000003").order_by("version")
    assert [(r.kind, r.version) for r in edits] == [("post", 1), ("edit", 2), ("edit", 3)]
    state = CaptureState.objects.get(account=mastodon_account)
    assert CursorState.load(state.cursor).statuses == "110000000000000004"

    # Re-capture from the cursor: nothing new.
    outcome = capture_account(account_id=mastodon_account.pk, connector=connector)
    assert (outcome.status, outcome.ingested) == ("captured", 0)
    # After a crash that lost the cursor, everything is fetched again: still no duplicate.
    CaptureState.objects.filter(pk=state.pk).update(cursor="", has_cursor=False)
    outcome = capture_account(account_id=mastodon_account.pk, connector=connector)
    assert (outcome.status, outcome.ingested, outcome.quarantined) == ("captured", 0, 0)
    assert outcome.duplicates == 9
    assert records.count() == 9
    assert Connection.objects.get(pk=connection.pk).status == "connected"


def test_revoked_token_stops_capture_and_alerts(
    rsps: responses.RequestsMock, world: Any, mastodon_account: Any
) -> None:
    from vetline.connectors.actions import capture_account
    from vetline.connectors.models import Alert, Connection

    connection = connect(rsps, world, mastodon_account)
    rsps.get(STATUSES, status=401, json={"error": "The access token was revoked"})
    outcome = capture_account(
        account_id=mastodon_account.pk, connector=MastodonConnector(config={}, clock=FakeClock())
    )
    assert outcome.status == "access_lost"
    assert Connection.objects.get(pk=connection.pk).status == "revoked"
    assert Alert.objects.filter(account=mastodon_account, code="access_lost").exists()
    assert TOKEN not in outcome.error


def test_malformed_truncated_and_hostile_items_are_quarantined_with_reasons(
    rsps: responses.RequestsMock, mastodon_account: Any
) -> None:
    from vetline.archive.actions import ingest_batch
    from vetline.connectors.base import TokenSet

    s2, s1 = fixture_json("statuses_page1.json")
    s4, s3 = fixture_json("statuses_page2.json")
    s1["account"]["display_name"] = '<img src=x onerror="alert(1)">Acme\u200d\u200b'
    s1["content"] = "<p>Hello\u200b world\u2060</p>"
    no_id = dict(s2)
    del no_id["id"]
    bad_time = dict(s3, id="110000000000000010", created_at="yesterday", edited_at=None)
    huge = dict(
        s4,
        id="110000000000000011",
        visibility="public",
        edited_at=None,
        content="<p>" + "A" * 10_500_000 + "</p>",
    )
    parts = [json.dumps(x).encode() for x in (bad_time, no_id, s1)]
    invalid_utf8 = (
        json.dumps(dict(s1, id="110000000000000012", content="<p>XX</p>"))
        .encode()
        .replace(b"XX", b"\xff\xfe bad bytes")
    )
    complete = b"[" + b",".join([json.dumps(huge).encode(), invalid_utf8, *parts]) + b"]"
    truncated = complete[: len(complete) // 3 * 2 - 7]  # an answer cut off mid-status
    rsps.get(
        STATUSES,
        body=complete,
        content_type=JSON,
        match=[matchers.query_param_matcher({"min_id": "0"}, strict_match=False)],
    )
    rsps.get(f"{HOST}/api/v1/notifications", body=truncated, content_type=JSON)
    rsps.get(
        STATUSES,
        body=fixture_bytes("statuses_newest.json"),
        content_type=JSON,
        match=[lambda r: ("min_id=" not in r.url, "min_id")],
    )
    rsps.get(
        f"{HOST}/api/v1/statuses/110000000000000003/history",
        body=fixture_bytes("status_history.json"),
        content_type=JSON,
    )
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        body=fixture_bytes("account_verify_credentials.json"),
        content_type=JSON,
    )
    tokens = TokenSet(access_token=TOKEN, remote_account_id=f"{ACCOUNT_ID}@mastodon.example")
    connector = MastodonConnector(config={}, clock=FakeClock())
    page = connector.fetch_activity(tokens=tokens, handle="@acme@mastodon.example", cursor=None)
    state = CursorState.load(page.cursor)
    assert state.statuses == "110000000000000012"  # the statuses answer was complete
    assert state.mentions == ""  # the truncated one is fetched again next time

    report = ingest_batch(
        items=[without_media(i) for i in page.items],
        account=mastodon_account,
        source="api:mastodon",
        actor=None,
    )
    reasons = sorted(
        QuarantinedItem.objects.filter(account=mastodon_account).values_list(
            "reason_code", flat=True
        )
    )
    # the truncated answer's tail, the 10 MB post, invalid UTF-8, a bad time, a missing id
    assert reasons == sorted(
        ["invalid_json", "oversized", "invalid_utf8", "invalid_timestamp", "missing_field"]
    )
    kept = ArchivedRecord.objects.get(account=mastodon_account, remote_id="110000000000000001")
    assert kept.text == "Hello\u200b world\u2060"  # zero-width characters verbatim
    # HTML in the display name is stored verbatim in the raw payload (rendered escaped).
    assert b'onerror=\\"alert(1)\\">Acme' in bytes(kept.raw_payload)
    # The invalid bytes are kept exactly as received.
    bad = QuarantinedItem.objects.get(account=mastodon_account, reason_code="invalid_utf8")
    assert b"\xff\xfe bad bytes" in bytes(bad.raw)
    assert report.quarantined == len(reasons)


def test_deleted_status_becomes_a_deletion_record(
    rsps: responses.RequestsMock, world: Any, mastodon_account: Any
) -> None:
    """A status deleted on the server: the next capture notices it missing from the newest page,
    asks for it, and archives the server's 404 as the next version (``deletion``); the archived
    post is left exactly as it was."""
    from vetline.connectors.actions import capture_account

    connect(rsps, world, mastodon_account)
    register_capture(rsps)
    connector = MastodonConnector(config={}, clock=FakeClock())
    assert capture_account(account_id=mastodon_account.pk, connector=connector).ingested == 9
    doomed = "110000000000000004"
    original = ArchivedRecord.objects.get(account=mastodon_account, remote_id=doomed)

    rsps.remove(responses.GET, STATUSES)
    rsps.get(STATUSES, body=b"[]", content_type=JSON, match=[lambda r: ("min_id=" in r.url, "")])
    remaining = [s for s in fixture_json("statuses_newest.json") if s["id"] != doomed]
    rsps.get(STATUSES, json=remaining, match=[lambda r: ("min_id=" not in r.url, "min_id")])
    not_found = rsps.get(
        f"{HOST}/api/v1/statuses/{doomed}", status=404, json={"error": "Record not found"}
    )
    outcome = capture_account(account_id=mastodon_account.pk, connector=connector)
    assert (outcome.status, outcome.ingested, outcome.quarantined) == ("captured", 1, 0)
    assert not_found.call_count == 1
    versions = ArchivedRecord.objects.filter(account=mastodon_account, remote_id=doomed)
    assert [(r.kind, r.version) for r in versions.order_by("version")] == [
        ("direct_message", 1),  # the fixture's newest status is a direct message
        ("deletion", 2),
    ]
    deletion = versions.get(version=2)
    assert json.loads(bytes(deletion.raw_payload)) == {"error": "Record not found"}
    kept = versions.get(version=1)
    assert (bytes(kept.raw_payload), kept.text) == (bytes(original.raw_payload), original.text)
    # The next capture does not ask again, and archives nothing more.
    outcome = capture_account(account_id=mastodon_account.pk, connector=connector)
    assert (outcome.ingested, not_found.call_count) == (0, 1)
