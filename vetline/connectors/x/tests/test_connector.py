"""The X connector against recorded, real-shaped X API v2 answers (see fixtures/README.md),
replayed by ``responses`` to the real tweepy client."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from vetline.connectors.base import (
    AuthExpired,
    AuthRevoked,
    Media,
    PublishRequest,
    RateLimited,
    TransientError,
    Unsupported,
)
from vetline.connectors.x.connector import CursorState, XConnector

from .conftest import API, CONFIG, TOKEN, USER_ID, FakeClock, fixture_bytes

TWEETS = f"{API}/users/{USER_ID}/tweets"
MENTIONS = f"{API}/users/{USER_ID}/mentions"
DMS = f"{API}/dm_events"
ME = f"{API}/users/me"
JSON = "application/json; charset=utf-8"


def q(**params: str) -> Any:
    return matchers.query_param_matcher(params, strict_match=False)


def no_param(name: str) -> Any:
    return lambda request: (f"{name}=" not in request.url, f"has {name}")


def quiet_streams(rsps: responses.RequestsMock, *, dms: bool = True) -> None:
    rsps.get(MENTIONS, body=fixture_bytes("tweets_empty.json"), content_type=JSON)
    if dms:
        rsps.get(DMS, body=fixture_bytes("tweets_empty.json"), content_type=JSON)
    rsps.get(ME, body=fixture_bytes("users_me_profile.json"), content_type=JSON)


def test_own_tweets_backlog_is_archived_oldest_first_then_since_id(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any
) -> None:
    """X lists newest first. A backlog of two pages is scanned (page 1, then page 2 through its
    ``next_token``), then archived from the oldest page up, so the archived boundary
    (``since_id``) only grows and a crash anywhere resumes without a hole."""
    first = rsps.get(
        TWEETS,
        body=fixture_bytes("tweets_page1.json"),
        content_type=JSON,
        match=[no_param("pagination_token"), no_param("since_id")],
    )
    second = rsps.get(
        TWEETS,
        body=fixture_bytes("tweets_page2.json"),
        content_type=JSON,
        match=[q(pagination_token="7140dibdnow9c7btw4b0qfmy3smmcgo6a3aajnsfl1bl4")],
    )
    rsps.get(
        TWEETS,
        body=fixture_bytes("tweets_empty.json"),
        content_type=JSON,
        match=[q(since_id="1897000000000000004")],
    )
    quiet_streams(rsps)

    def own(page: Any) -> list[tuple[str, str, Any]]:
        return [
            (i["remote_id"], i["kind"], i.get("version"))
            for i in page.items
            if i["kind"] != "profile_snapshot" and i["author"] == "@acme"
        ]

    # 1. The scan: page 1 has a next_token, nothing is emitted yet.
    page = connector.fetch_activity(tokens=tokens, handle="@acme", cursor=None)
    assert page.more is True and own(page) == []
    stream = CursorState.load(page.cursor).streams["tweets"]
    assert "since_id" not in stream and stream["scan_next"]
    # 2. Page 2 is the oldest: archived at once, the boundary moves up to its newest.
    page = connector.fetch_activity(tokens=tokens, handle="@acme", cursor=page.cursor)
    assert page.more is True
    assert own(page) == [
        ("1897000000000000001", "post", None),
        ("1897000000000000002", "reply", None),
    ]
    reply = page.items[1]
    assert reply["parent_remote_id"] == "1896999999999999990"  # type: ignore[index]
    assert reply["participants"] == ["@acme", "@carol_invests"]  # type: ignore[index]
    assert CursorState.load(page.cursor).streams["tweets"]["since_id"] == "1897000000000000002"
    # 3. Page 1 again, now emitted: the post and its edit (a new id whose history starts at
    #    the original, archived as version 2).
    page = connector.fetch_activity(tokens=tokens, handle="@acme", cursor=page.cursor)
    assert page.more is False
    assert own(page) == [
        ("1897000000000000003", "post", None),
        ("1897000000000000003", "edit", 2),
    ]
    edit = page.items[1]
    assert edit["parent_remote_id"] == "1897000000000000003"  # type: ignore[index]
    raw = base64.b64decode(edit["raw_payload_b64"])  # type: ignore[index]
    assert raw in fixture_bytes("tweets_page1.json")  # the Tweet object's exact bytes
    assert json.loads(raw)["edit_controls"]["is_edit_eligible"] is True
    assert page.items[-1]["kind"] == "profile_snapshot"  # type: ignore[index]
    stream = CursorState.load(page.cursor).streams["tweets"]
    assert stream == {"since_id": "1897000000000000004"}  # the backlog's newest
    assert (first.call_count, second.call_count) == (2, 1)  # all but the oldest page twice

    # 4. From now on, since_id: one request, nothing new.
    page = connector.fetch_activity(tokens=tokens, handle="@acme", cursor=page.cursor)
    assert [i["kind"] for i in page.items] == ["profile_snapshot"]  # type: ignore[index]
    assert (first.call_count, second.call_count) == (2, 1)


def test_mentions_and_dms(rsps: responses.RequestsMock, connector: XConnector, tokens: Any) -> None:
    rsps.get(TWEETS, body=fixture_bytes("tweets_empty.json"), content_type=JSON)
    rsps.get(MENTIONS, body=fixture_bytes("mentions.json"), content_type=JSON)
    dms = rsps.get(DMS, body=fixture_bytes("dm_events.json"), content_type=JSON)
    rsps.get(ME, body=fixture_bytes("users_me_profile.json"), content_type=JSON)
    page = connector.fetch_activity(tokens=tokens, handle="@acme", cursor=None)
    items = [i for i in page.items if i["kind"] != "profile_snapshot"]  # type: ignore[index]
    assert [(i["remote_id"], i["kind"], i["direction"], i["author"]) for i in items] == [  # type: ignore[index]
        ("1897000000000000050", "reply", "inbound", "@carol_invests"),
        # a reply to a deleted post: the API's errors[] says so; the parent id is kept
        ("1897000000000000051", "reply", "inbound", "@carol_invests"),
        ("1897000000000000900", "direct_message", "inbound", "@carol_invests"),
        ("1897000000000000901", "direct_message", "outbound", "@acme"),
    ]
    assert items[0]["text"].endswith("\u200b")  # type: ignore[index]
    assert items[1]["parent_remote_id"] == "1896000000000000000"  # type: ignore[index]
    assert items[2]["conversation_id"] == "1466796521412771840-2244994945"  # type: ignore[index]
    assert items[2]["participants"] == ["@acme", "@carol_invests"]  # type: ignore[index]
    sent = parse_qs(urlsplit(dms.calls[0].request.url).query)
    assert sent["event_types"] == ["MessageCreate"]
    state = CursorState.load(page.cursor)
    assert state.streams["dms"]["since_id"] == "1897000000000000901"
    assert state.streams["mentions"]["since_id"] == "1897000000000000051"

    # Next time, DM events already archived are recognised and paging stops there.
    rsps.get(TWEETS, body=fixture_bytes("tweets_empty.json"), content_type=JSON)
    page = connector.fetch_activity(tokens=tokens, handle="@acme", cursor=page.cursor)
    assert not [i for i in page.items if i["kind"] == "direct_message"]  # type: ignore[index]


def test_dms_not_in_the_access_tier_are_recorded_not_fatal(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any
) -> None:
    rsps.get(TWEETS, body=fixture_bytes("tweets_empty.json"), content_type=JSON)
    dms = rsps.get(DMS, status=403, body=fixture_bytes("dm_forbidden.json"), content_type=JSON)
    quiet_streams(rsps, dms=False)
    page = connector.fetch_activity(tokens=tokens, handle="@acme", cursor=None)
    assert "direct_messages" in connector.capability_report
    state = CursorState.load(page.cursor)
    assert "403" in state.unavailable["direct_messages"]["reason"]
    connector.fetch_activity(tokens=tokens, handle="@acme", cursor=page.cursor)
    assert dms.call_count == 1  # not asked again until re-checked (a day later)


def test_429_waits_for_x_rate_limit_reset_on_the_fake_clock(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any, clock: FakeClock
) -> None:
    reset = int(clock.now()) + 42
    rsps.get(
        ME,
        status=429,
        body=fixture_bytes("too_many_requests.json"),
        content_type=JSON,
        headers={
            "x-rate-limit-limit": "75",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset),
        },
    )
    rsps.get(ME, body=fixture_bytes("users_me_profile.json"), content_type=JSON)
    assert connector.fetch_profile(tokens=tokens, handle="@acme").handle == "@acme"
    assert len(clock.sleeps) == 1 and 42 <= clock.sleeps[0] <= 43


def test_429_beyond_what_may_be_waited_is_raised_for_the_scheduler(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any, clock: FakeClock
) -> None:
    rsps.get(
        ME,
        status=429,
        body=fixture_bytes("too_many_requests.json"),
        content_type=JSON,
        headers={"Retry-After": "900"},
    )
    with pytest.raises(RateLimited) as info:
        connector.fetch_profile(tokens=tokens, handle="@acme")
    assert info.value.retry_after == 900 and clock.sleeps == []


def test_server_errors_are_retried_then_reported(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any, clock: FakeClock
) -> None:
    rsps.get(ME, status=503, json={"title": "Service Unavailable", "status": 503})
    with pytest.raises(TransientError, match="HTTP 503"):
        connector.fetch_profile(tokens=tokens, handle="@acme")
    assert len(clock.sleeps) == 4


def test_expired_token_then_refresh(
    rsps: responses.RequestsMock,
    connector: XConnector,
    tokens: Any,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    rsps.get(ME, status=401, body=fixture_bytes("unauthorized.json"), content_type=JSON)
    with pytest.raises(AuthExpired):
        connector.fetch_profile(tokens=tokens, handle="@acme")
    token = rsps.post(
        "https://api.x.com/2/oauth2/token",
        body=fixture_bytes("token_refreshed.json"),
        content_type=JSON,
    )
    fresh = connector.refresh(tokens=tokens)
    assert fresh.access_token.startswith("Tk9tRzZ3")
    assert fresh.refresh_token.startswith("Zk1HUGZ3")  # X rotates refresh tokens
    assert fresh.expires_at is not None and fresh.expires_at.timestamp() == clock.now() + 7200
    body = parse_qs(token.calls[0].request.body)
    assert body["grant_type"] == ["refresh_token"] and body["client_id"] == [CONFIG["client_id"]]
    assert TOKEN not in caplog.text


def test_revoked_refresh_token(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any
) -> None:
    rsps.post(
        "https://api.x.com/2/oauth2/token",
        status=400,
        body=fixture_bytes("token_invalid_grant.json"),
        content_type=JSON,
    )
    with pytest.raises(AuthRevoked):
        connector.refresh(tokens=tokens)


def test_authorization_url_and_code_exchange_with_pkce(
    rsps: responses.RequestsMock, connector: XConnector
) -> None:
    from vetline.connectors.base import new_pkce_pair

    verifier, challenge = new_pkce_pair()
    url = connector.authorization_url(
        redirect_uri="https://vetline.example/cb",
        state="s1",
        code_challenge=challenge,
        handle="@acme",
    )
    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://x.com/i/oauth2/authorize?")
    assert query["code_challenge"] == [challenge] and query["code_challenge_method"] == ["S256"]
    assert "offline.access" in query["scope"][0]
    token = rsps.post(
        "https://api.x.com/2/oauth2/token", body=fixture_bytes("token.json"), content_type=JSON
    )
    rsps.get(ME, body=fixture_bytes("users_me.json"), content_type=JSON)
    tokens = connector.exchange_code(
        code="VGNibzFWSWREZm01bjN1N3dicWlNUG1oa2xRRVNNdmVHelJGY2hPWGxNd2dxOjE2MjIxNjA4MjU4MjU6MToxOmFjOjE",
        redirect_uri="https://vetline.example/cb",
        code_verifier=verifier,
    )
    assert (tokens.remote_account_id, tokens.remote_handle) == (USER_ID, "@acme")
    assert "offline.access" in tokens.scopes and tokens.refresh_token
    assert parse_qs(token.calls[0].request.body)["code_verifier"] == [verifier]


def test_publish_reply_with_media_through_the_v2_media_endpoint(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any
) -> None:
    upload = rsps.post(
        "https://api.x.com/2/media/upload",
        body=fixture_bytes("media_upload.json"),
        content_type=JSON,
    )
    meta = rsps.post(
        "https://api.x.com/2/media/metadata",
        json={"data": {"associated_metadata": True, "id": "1897000000000000300"}},
    )
    create = rsps.post(
        f"{API}/tweets", status=201, body=fixture_bytes("create_tweet.json"), content_type=JSON
    )
    result = connector.publish(
        tokens=tokens,
        request=PublishRequest(
            text="Hello from Vetline",
            reply_to_remote_id="1896999999999999990",
            media=(Media(content=b"\x89PNG..", mime_type="image/png", alt_text="A chart"),),
        ),
    )
    assert result.remote_id == "1897000000000000200"
    assert result.url == "https://x.com/i/web/status/1897000000000000200"
    assert b'name="media_category"' in upload.calls[0].request.body
    assert json.loads(meta.calls[0].request.body)["metadata"]["alt_text"]["text"] == "A chart"
    sent = json.loads(create.calls[0].request.body)
    assert sent == {
        "text": "Hello from Vetline",
        "reply": {"in_reply_to_tweet_id": "1896999999999999990"},
        "media": {"media_ids": ["1897000000000000300"]},
    }
    assert create.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_delete_and_delete_again(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any
) -> None:
    rsps.delete(
        f"{API}/tweets/1897000000000000001",
        body=fixture_bytes("delete_tweet.json"),
        content_type=JSON,
    )
    connector.delete(tokens=tokens, remote_id="1897000000000000001")
    rsps.replace(
        responses.DELETE,
        f"{API}/tweets/1897000000000000001",
        status=404,
        body=fixture_bytes("delete_not_found.json"),
        content_type=JSON,
    )
    connector.delete(tokens=tokens, remote_id="1897000000000000001")


def test_search_is_unsupported_on_tiers_without_it(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any
) -> None:
    rsps.get(
        f"{API}/tweets/search/recent",
        status=403,
        body=fixture_bytes("dm_forbidden.json"),
        content_type=JSON,
    )
    with pytest.raises(Unsupported):
        connector.search(tokens=tokens, query="acme")
    assert "search" in connector.capability_report


def test_search(rsps: responses.RequestsMock, connector: XConnector, tokens: Any) -> None:
    rsps.get(
        f"{API}/tweets/search/recent",
        body=fixture_bytes("search_recent.json"),
        content_type=JSON,
        match=[q(query="acme fund")],
    )
    found = connector.search(tokens=tokens, query="acme fund")
    assert [(i["remote_id"], i["direction"]) for i in found] == [("1897000000000000050", "inbound")]


def test_publishing_is_not_retried_after_a_server_error(
    rsps: responses.RequestsMock, connector: XConnector, tokens: Any, clock: FakeClock
) -> None:
    create = rsps.post(f"{API}/tweets", status=503, json={"title": "Service Unavailable"})
    with pytest.raises(TransientError, match="may or may not have been published"):
        connector.publish(tokens=tokens, request=PublishRequest(text="Once only"))
    assert create.call_count == 1 and clock.sleeps == []
