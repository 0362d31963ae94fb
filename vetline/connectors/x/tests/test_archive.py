"""X capture through the framework: connecting (OAuth 2 with PKCE), the capture path into the
archive with no duplicates on re-capture, token refresh, and bad input quarantined."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from vetline.archive.models import ArchivedRecord, QuarantinedItem
from vetline.connectors.media import without_media
from vetline.connectors.x.connector import CursorState, XConnector

from .conftest import API, CONFIG, USER_ID, FakeClock, fixture_bytes

pytestmark = pytest.mark.django_db
CALLBACK = "http://testserver/connectors/oauth/callback/"
TWEETS = f"{API}/users/{USER_ID}/tweets"
JSON = "application/json; charset=utf-8"


def connect(rsps: responses.RequestsMock, world: Any, settings: Any) -> Any:
    from vetline.connectors.actions import complete_connection, start_connection
    from vetline.identity.roles import Role

    settings.VETLINE_CONNECTORS = {"x": CONFIG}
    admin = world.people[Role.ADMINISTRATOR]
    rsps.post(
        "https://api.x.com/2/oauth2/token", body=fixture_bytes("token.json"), content_type=JSON
    )
    rsps.get(f"{API}/users/me", body=fixture_bytes("users_me.json"), content_type=JSON)
    start = start_connection(actor=admin, account=world.corporate, redirect_uri=CALLBACK)
    state = parse_qs(urlsplit(start.url).query)["state"][0]
    connection = complete_connection(
        actor=admin, state=state, code="VGNibzFWSWREZm01", redirect_uri=CALLBACK
    )
    rsps.reset()
    return connection


#: the photo of post 1897000000000000002 (tweets_page2.json), as X's media CDN sends it
MEDIA_URL = "https://pbs.twimg.com/media/chart.jpg"
MEDIA_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF recorded chart bytes\xff\xd9"


def register_capture(rsps: responses.RequestsMock) -> None:
    rsps.get(MEDIA_URL, body=MEDIA_BYTES, content_type="image/jpeg")
    page1 = json.loads(fixture_bytes("tweets_page1.json"))
    page2 = json.loads(fixture_bytes("tweets_page2.json"))
    everything = {
        "data": page1["data"] + page2["data"],
        "includes": page2["includes"],
        "meta": {
            "result_count": 4,
            "newest_id": "1897000000000000004",
            "oldest_id": "1897000000000000001",
        },
    }
    rsps.get(TWEETS, json=everything, match=[lambda r: ("since_id=" not in r.url, "since")])
    rsps.get(
        TWEETS,
        body=fixture_bytes("tweets_empty.json"),
        content_type=JSON,
        match=[
            matchers.query_param_matcher({"since_id": "1897000000000000004"}, strict_match=False)
        ],
    )
    rsps.get(
        f"{API}/users/{USER_ID}/mentions",
        body=fixture_bytes("mentions.json"),
        content_type=JSON,
        match=[lambda r: ("since_id=" not in r.url, "since")],
    )
    rsps.get(
        f"{API}/users/{USER_ID}/mentions",
        body=fixture_bytes("tweets_empty.json"),
        content_type=JSON,
        match=[lambda r: ("since_id=" in r.url, "no since")],
    )
    rsps.get(f"{API}/dm_events", body=fixture_bytes("dm_events.json"), content_type=JSON)
    register_profile(rsps)


#: the profile's avatar in its original size (users_me_profile.json's ``profile_image_url`` is
#: the ``_normal`` 48x48 variant), as X's media CDN sends it
AVATAR_URL = "https://pbs.twimg.com/profile_images/1/acme.jpg"
AVATAR_BYTES = b"\xff\xd8\xff\xe0 recorded avatar bytes"


def register_profile(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/users/me", body=fixture_bytes("users_me_profile.json"), content_type=JSON)
    rsps.get(AVATAR_URL, body=AVATAR_BYTES, content_type="image/jpeg")


def test_connect_capture_and_recapture_without_duplicates(
    rsps: responses.RequestsMock, world: Any, settings: Any
) -> None:
    from vetline.connectors.actions import capture_account
    from vetline.connectors.models import CaptureState

    connection = connect(rsps, world, settings)
    assert connection.status == "connected" and connection.remote_account_id == USER_ID
    assert connection.token_expires_at is not None
    assert "offline.access" in connection.scopes
    register_capture(rsps)
    connector = XConnector(config=CONFIG, clock=FakeClock())
    outcome = capture_account(account_id=world.corporate.pk, connector=connector)
    assert outcome.status == "captured", outcome.error
    # 3 posts + 1 edit, 2 mentions, 2 DMs, the profile
    assert (outcome.ingested, outcome.quarantined) == (9, 0)
    versions = ArchivedRecord.objects.filter(
        account=world.corporate, remote_id="1897000000000000003"
    )
    assert sorted(versions.values_list("kind", "version")) == [("edit", 2), ("post", 1)]

    outcome = capture_account(account_id=world.corporate.pk, connector=connector)
    assert (outcome.status, outcome.ingested, outcome.quarantined) == ("captured", 0, 0)
    # A crash that lost the cursor: everything again, nothing duplicated.
    CaptureState.objects.filter(account=world.corporate).update(cursor="", has_cursor=False)
    outcome = capture_account(account_id=world.corporate.pk, connector=connector)
    assert (outcome.ingested, outcome.duplicates, outcome.quarantined) == (0, 9, 0)
    assert ArchivedRecord.objects.filter(account=world.corporate).count() == 9


def test_expired_token_is_refreshed_during_capture(
    rsps: responses.RequestsMock, world: Any, settings: Any
) -> None:
    from vetline.connectors.actions import capture_account
    from vetline.connectors.models import Connection

    connect(rsps, world, settings)
    rsps.get(TWEETS, status=401, body=fixture_bytes("unauthorized.json"), content_type=JSON)
    refresh = rsps.post(
        "https://api.x.com/2/oauth2/token",
        body=fixture_bytes("token_refreshed.json"),
        content_type=JSON,
    )
    rsps.get(TWEETS, body=fixture_bytes("tweets_empty.json"), content_type=JSON)
    rsps.get(
        f"{API}/users/{USER_ID}/mentions",
        body=fixture_bytes("tweets_empty.json"),
        content_type=JSON,
    )
    rsps.get(f"{API}/dm_events", body=fixture_bytes("tweets_empty.json"), content_type=JSON)
    register_profile(rsps)
    outcome = capture_account(
        account_id=world.corporate.pk, connector=XConnector(config=CONFIG, clock=FakeClock())
    )
    assert outcome.status == "captured", outcome.error
    assert refresh.call_count == 1
    assert Connection.objects.get(account=world.corporate).status == "connected"


def test_revoked_access_stops_capture(
    rsps: responses.RequestsMock, world: Any, settings: Any
) -> None:
    from vetline.connectors.actions import capture_account
    from vetline.connectors.models import Alert, Connection

    connect(rsps, world, settings)
    rsps.get(TWEETS, status=401, body=fixture_bytes("unauthorized.json"), content_type=JSON)
    rsps.post(
        "https://api.x.com/2/oauth2/token",
        status=400,
        body=fixture_bytes("token_invalid_grant.json"),
        content_type=JSON,
    )
    outcome = capture_account(
        account_id=world.corporate.pk, connector=XConnector(config=CONFIG, clock=FakeClock())
    )
    assert outcome.status == "access_lost", outcome.error
    assert Connection.objects.get(account=world.corporate).status == "revoked"
    assert Alert.objects.filter(account=world.corporate, code="access_lost").exists()


def test_malformed_truncated_and_hostile_items_are_quarantined(
    rsps: responses.RequestsMock, world: Any
) -> None:
    from vetline.archive.actions import ingest_batch
    from vetline.connectors.base import TokenSet

    page = json.loads(fixture_bytes("tweets_page2.json"))
    _, t1 = page["data"]
    t1["text"] = "Hello\u200b world <script>alert(1)</script>"
    huge = dict(t1, id="1897000000000000010", text="A" * 10_500_000)
    bad_time = dict(t1, id="1897000000000000011", created_at="2025-03-01 10:00")
    not_object = "just a string"
    invalid = (
        json.dumps(dict(t1, id="1897000000000000012", text="XX"))
        .encode()
        .replace(b"XX", b"\xc3\x28")
    )
    data = (
        b"["
        + b",".join(
            [
                json.dumps(huge).encode(),
                json.dumps(bad_time).encode(),
                json.dumps(not_object).encode(),
                invalid,
                json.dumps(t1).encode(),
            ]
        )
        + b"]"
    )
    body = (
        b'{"data":'
        + data
        + b',"includes":'
        + json.dumps(page["includes"]).encode()
        + b',"meta":{"result_count":5,"newest_id":"1897000000000000012"}}'
    )
    rsps.get(TWEETS, body=body, content_type=JSON)
    mentions = fixture_bytes("mentions.json")
    rsps.get(
        f"{API}/users/{USER_ID}/mentions", body=mentions[: len(mentions) // 2], content_type=JSON
    )
    rsps.get(f"{API}/dm_events", body=fixture_bytes("tweets_empty.json"), content_type=JSON)
    rsps.get(f"{API}/users/me", body=fixture_bytes("users_me_profile.json"), content_type=JSON)
    tokens = TokenSet(access_token="x" * 40, remote_account_id=USER_ID, remote_handle="@acme")
    result = XConnector(config=CONFIG, clock=FakeClock()).fetch_activity(
        tokens=tokens, handle="@acme", cursor=None
    )
    state = CursorState.load(result.cursor)
    assert state.streams["tweets"]["since_id"] == "1897000000000000012"
    assert "since_id" not in state.streams["mentions"]  # the truncated answer is fetched again

    report = ingest_batch(
        items=[without_media(i) for i in result.items],
        account=world.corporate,
        source="api:x",
        actor=None,
    )
    reasons = sorted(
        QuarantinedItem.objects.filter(account=world.corporate).values_list(
            "reason_code", flat=True
        )
    )
    # 10 MB post, bad time, a non-object, invalid UTF-8, the truncated mentions answer
    assert reasons == sorted(
        ["oversized", "invalid_timestamp", "wrong_type", "invalid_utf8", "invalid_json"]
    )
    assert report.quarantined == 5
    kept = ArchivedRecord.objects.get(account=world.corporate, remote_id="1897000000000000001")
    assert (
        kept.text == "Hello\u200b world <script>alert(1)</script>"
    )  # verbatim; escaped when shown
    assert b"\xc3\x28" in bytes(QuarantinedItem.objects.get(reason_code="invalid_utf8").raw)
