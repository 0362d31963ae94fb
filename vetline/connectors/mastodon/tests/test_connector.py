"""The Mastodon connector against recorded, real-shaped answers (see fixtures/README.md),
replayed by ``responses`` to the real Mastodon.py client."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from responses import matchers

from vetline.connectors.base import (
    AccountRef,
    AuthExpired,
    AuthRevoked,
    Media,
    PermanentError,
    PublishRequest,
    TokenSet,
    TransientError,
)
from vetline.connectors.mastodon.connector import CursorState, MastodonConnector

from .conftest import ACCOUNT_ID, HOST, TOKEN, FakeClock, fixture_bytes, fixture_json

HANDLE = "@acme@mastodon.example"
STATUSES = f"{HOST}/api/v1/accounts/{ACCOUNT_ID}/statuses"
NOTIFICATIONS = f"{HOST}/api/v1/notifications"
JSON = "application/json; charset=utf-8"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def link(path: str, newest: str, oldest: str) -> dict[str, str]:
    return {
        "Link": f'<{HOST}{path}?max_id={oldest}>; rel="next", <{HOST}{path}?min_id={newest}>; '
        'rel="prev"'
    }


def q(**params: str) -> Any:
    return matchers.query_param_matcher(params, strict_match=False)


def without_min_id(request: Any) -> tuple[bool, str]:
    return ("min_id=" not in (request.url or ""), "has min_id")


def decoded(item: Any) -> Any:
    return json.loads(base64.b64decode(item["raw_payload_b64"]))


def add_empty_streams(rsps: responses.RequestsMock, statuses_min: str, mentions_min: str) -> None:
    rsps.get(STATUSES, body=b"[]", content_type=JSON, match=[q(min_id=statuses_min)])
    rsps.get(NOTIFICATIONS, body=b"[]", content_type=JSON, match=[q(min_id=mentions_min)])


def add_lookback_and_profile(
    rsps: responses.RequestsMock, newest: str = "statuses_newest.json"
) -> None:
    rsps.get(STATUSES, body=fixture_bytes(newest), content_type=JSON, match=[without_min_id])
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        body=fixture_bytes("account_verify_credentials.json"),
        content_type=JSON,
    )


# --- Capture, pagination, edits ---------------------------------------------------------------


def test_capture_pages_forward_with_link_headers(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any
) -> None:
    path = f"/api/v1/accounts/{ACCOUNT_ID}/statuses"
    rsps.get(
        STATUSES,
        body=fixture_bytes("statuses_page1.json"),
        content_type=JSON,
        headers=link(path, "110000000000000002", "110000000000000001"),
        match=[q(min_id="0", limit="2")],
    )
    rsps.get(
        NOTIFICATIONS,
        body=fixture_bytes("notifications_mentions.json"),
        content_type=JSON,
        headers=link("/api/v1/notifications", "35000002", "35000001"),
        match=[q(min_id="0", **{"types[]": "mention"})],
    )
    page = connector.fetch_activity(tokens=tokens, handle=HANDLE, cursor=None, limit=4)
    assert page.more is True
    kinds = [(i["remote_id"], i["kind"], i["direction"]) for i in page.items]  # type: ignore[index]
    assert kinds == [
        ("110000000000000001", "post", "outbound"),
        ("110000000000000002", "reply", "outbound"),
        ("110000000000000101", "reply", "inbound"),
        ("110000000000000102", "direct_message", "inbound"),
    ]
    post, reply, inbound_reply, dm = page.items  # type: ignore[misc]
    assert post["text"] == "Our Q1 outlook is out: acme.example/q1"
    assert post["author"] == "acme@mastodon.example"
    assert post["network_timestamp"] == "2025-03-01T10:00:00.000Z"
    assert reply["parent_remote_id"] == "109999000000000777"
    assert reply["participants"] == ["acme@mastodon.example", "carol@other.example"]
    # The raw payload is the exact bytes of that status in the answer.
    assert base64.b64decode(reply["raw_payload_b64"]) in fixture_bytes("statuses_page1.json")
    assert decoded(inbound_reply)["type"] == "mention"  # the notification, as received
    assert inbound_reply["author"] == "carol@other.example"
    assert inbound_reply["parent_remote_id"] == "110000000000000001"
    assert "\u200b" in inbound_reply["text"]  # zero-width characters are kept verbatim
    assert dm["conversation_id"] == "dm:acme@mastodon.example|carol@other.example"
    state = CursorState.load(page.cursor)
    assert (state.statuses, state.mentions) == ("110000000000000002", "35000002")

    # Resume from the stored cursor: the next page, with an edited status and its history.
    rsps.get(
        STATUSES,
        body=fixture_bytes("statuses_page2.json"),
        content_type=JSON,
        headers=link(path, "110000000000000004", "110000000000000003"),
        match=[q(min_id="110000000000000002")],
    )
    rsps.get(NOTIFICATIONS, body=b"[]", content_type=JSON, match=[q(min_id="35000002")])
    rsps.get(
        f"{HOST}/api/v1/statuses/110000000000000003/history",
        body=fixture_bytes("status_history.json"),
        content_type=JSON,
    )
    page = connector.fetch_activity(tokens=tokens, handle=HANDLE, cursor=page.cursor, limit=4)
    summary = [(i["remote_id"], i["kind"], i.get("version")) for i in page.items]  # type: ignore[union-attr,index]
    assert summary == [
        ("110000000000000003", "post", None),
        ("110000000000000003", "edit", 2),
        ("110000000000000003", "edit", 3),
        ("110000000000000004", "direct_message", None),
    ]
    assert page.items[1]["text"] == "Rates update: 4.25%"  # type: ignore[index]
    assert page.more is True

    # Caught up: the newest page is looked at again for edits, and the profile is captured.
    add_empty_streams(rsps, "110000000000000004", "35000002")
    add_lookback_and_profile(rsps)
    page = connector.fetch_activity(tokens=tokens, handle=HANDLE, cursor=page.cursor, limit=4)
    assert page.more is False
    assert [i["kind"] for i in page.items] == ["profile_snapshot"]  # type: ignore[index]
    profile = page.items[0]
    assert "followers_count" not in profile["raw"]  # type: ignore[index]


def test_edit_after_capture_is_found_on_the_newest_page(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any
) -> None:
    cursor = CursorState(statuses="110000000000000004", mentions="35000002").dump()
    add_empty_streams(rsps, "110000000000000004", "35000002")
    add_lookback_and_profile(rsps)
    rsps.get(
        f"{HOST}/api/v1/statuses/110000000000000003/history",
        body=fixture_bytes("status_history.json"),
        content_type=JSON,
    )
    page = connector.fetch_activity(tokens=tokens, handle=HANDLE, cursor=cursor, limit=4)
    assert [(i["kind"], i.get("version")) for i in page.items] == [  # type: ignore[union-attr,index]
        ("edit", 2),
        ("edit", 3),
        ("profile_snapshot", None),
    ]
    # Seen once, not again.
    page = connector.fetch_activity(tokens=tokens, handle=HANDLE, cursor=page.cursor, limit=4)
    assert [i["kind"] for i in page.items] == ["profile_snapshot"]  # type: ignore[index]


# --- Rate limits, server errors, tokens -------------------------------------------------------


def test_429_waits_retry_after_on_the_injected_clock(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any, clock: FakeClock
) -> None:
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        status=429,
        json={"error": "Too many requests"},
        headers={"Retry-After": "7", "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0"},
    )
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        body=fixture_bytes("account_verify_credentials.json"),
        content_type=JSON,
    )
    profile = connector.fetch_profile(tokens=tokens, handle=HANDLE)
    assert profile.handle == HANDLE
    assert len(clock.sleeps) == 1 and 7 <= clock.sleeps[0] <= 8


def test_429_honours_mastodons_iso_reset_header(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any, clock: FakeClock
) -> None:
    import datetime as dt

    reset = dt.datetime.fromtimestamp(clock.now() + 30, tz=dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        status=429,
        json={"error": "Too many requests"},
        headers={"X-RateLimit-Reset": reset, "X-RateLimit-Remaining": "0"},
    )
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        body=fixture_bytes("account_verify_credentials.json"),
        content_type=JSON,
    )
    connector.fetch_profile(tokens=tokens, handle=HANDLE)
    assert len(clock.sleeps) == 1 and 30 <= clock.sleeps[0] <= 31


def test_server_errors_are_retried_then_reported_clearly(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any, clock: FakeClock
) -> None:
    rsps.get(f"{HOST}/api/v1/accounts/verify_credentials", status=502, body=b"<html>Bad Gateway")
    with pytest.raises(TransientError) as info:
        connector.fetch_profile(tokens=tokens, handle=HANDLE)
    assert "HTTP 502" in info.value.message
    assert len(clock.sleeps) == 4  # five attempts, backoff between them
    assert clock.sleeps == sorted(clock.sleeps) or max(clock.sleeps) <= 120


def test_server_error_then_success(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any, clock: FakeClock
) -> None:
    rsps.get(f"{HOST}/api/v1/accounts/verify_credentials", status=503, body=b"")
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        body=fixture_bytes("account_verify_credentials.json"),
        content_type=JSON,
    )
    assert connector.fetch_profile(tokens=tokens, handle=HANDLE).display_name == "Acme Advisers"
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("The access token was revoked", AuthRevoked),
        ("The access token is invalid", AuthRevoked),
        ("The access token expired", AuthExpired),
    ],
)
def test_refused_tokens(
    rsps: responses.RequestsMock,
    connector: MastodonConnector,
    tokens: Any,
    message: str,
    error: type[Exception],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    rsps.get(STATUSES, status=401, json={"error": message})
    with pytest.raises(error) as info:
        connector.fetch_activity(tokens=tokens, handle=HANDLE, cursor=None)
    assert message.rsplit(" ", 1)[-1] in str(info.value)  # revoked, invalid, expired
    assert TOKEN not in caplog.text and TOKEN not in str(info.value)


# --- Deleted items ----------------------------------------------------------------------------


def test_deleting_a_status_already_gone_succeeds(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any
) -> None:
    rsps.delete(
        f"{HOST}/api/v1/statuses/110000000000000001", status=404, json={"error": "Record not found"}
    )
    connector.delete(tokens=tokens, remote_id="110000000000000001")


def test_edited_then_deleted_status_is_not_a_missing_endpoint(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any
) -> None:
    rsps.get(
        STATUSES,
        body=fixture_bytes("statuses_page2.json"),
        content_type=JSON,
        match=[q(min_id="0")],
    )
    rsps.get(NOTIFICATIONS, body=b"[]", content_type=JSON)
    gone = {"error": "Record not found"}
    rsps.get(f"{HOST}/api/v1/statuses/110000000000000003/history", status=404, json=gone)
    rsps.get(f"{HOST}/api/v1/statuses/110000000000000003", status=404, json=gone)
    add_lookback_and_profile(rsps)
    page = connector.fetch_activity(tokens=tokens, handle=HANDLE, cursor=None, limit=80)
    assert "edit_history" not in connector.capability_report
    assert "edit_history" not in CursorState.load(page.cursor).unavailable


def test_mention_whose_status_was_deleted_is_skipped(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any
) -> None:
    notifications = fixture_json("notifications_mentions.json")
    notifications[0]["status"] = None
    rsps.get(STATUSES, body=b"[]", content_type=JSON, match=[q(min_id="0")])
    rsps.get(NOTIFICATIONS, json=notifications, match=[q(min_id="0")])
    add_lookback_and_profile(rsps)
    rsps.get(
        f"{HOST}/api/v1/statuses/110000000000000003/history",
        body=fixture_bytes("status_history.json"),
        content_type=JSON,
    )
    page = connector.fetch_activity(tokens=tokens, handle=HANDLE, cursor=None, limit=80)
    assert [i["remote_id"] for i in page.items][:1] == ["110000000000000101"]  # type: ignore[index]
    assert CursorState.load(page.cursor).mentions == "35000002"


# --- Compatible servers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "instance", "statuses", "software", "not_found"),
    [
        (
            "akkoma.example",
            "instance_akkoma.json",
            "akkoma_statuses.json",
            "akkoma",
            {"error": "Not found"},
        ),
        (
            "gts.example",
            "instance_gotosocial.json",
            "gotosocial_statuses.json",
            "gotosocial-or-mastodon",
            {"error": "Not Found: not found"},
        ),
    ],
)
def test_compatible_servers_degrade_without_edit_history(
    rsps: responses.RequestsMock,
    clock: FakeClock,
    server: str,
    instance: str,
    statuses: str,
    software: str,
    not_found: dict[str, str],
) -> None:
    from vetline.connectors.base import TokenSet

    host = f"https://{server}"
    body = fixture_json(statuses)
    account_id = body[0]["account"]["id"]
    status_id = body[0]["id"]
    tokens = TokenSet(access_token=TOKEN, remote_account_id=f"{account_id}@{server}")
    connector = MastodonConnector(config={}, clock=clock)
    me = fixture_json("account_verify_credentials.json") | {"id": account_id}
    rsps.get(f"{host}/api/v1/instance/", body=fixture_bytes(instance), content_type=JSON)
    rsps.get(f"{host}/api/v1/accounts/verify_credentials", json=me)
    rsps.get(
        f"{host}/api/v1/accounts/{account_id}/statuses",
        body=fixture_bytes(statuses),
        content_type=JSON,
    )
    history = rsps.get(f"{host}/api/v1/statuses/{status_id}/history", status=404, json=not_found)
    rsps.get(f"{host}/api/v1/statuses/{status_id}", json=body[0])
    rsps.get(f"{host}/api/v2/search", json={"accounts": [], "statuses": [], "hashtags": []})
    rsps.get(f"{host}/api/v1/notifications", body=b"[]", content_type=JSON)

    report = connector.probe(tokens=tokens, account=AccountRef(handle=f"@acme@{server}"))
    assert report.server["software"] == software
    assert "edit history" in report.missing["capture_edits"]
    assert "search" in report.allowed and "capture_edits" not in report.allowed
    assert connector.capability_report["edit_history"]

    connector = MastodonConnector(config={}, clock=clock)
    page = connector.fetch_activity(tokens=tokens, handle=f"@acme@{server}", cursor=None)
    assert [i["kind"] for i in page.items] == ["post", "profile_snapshot"]  # type: ignore[index]
    state = CursorState.load(page.cursor)
    assert "404" in state.unavailable["edit_history"]["reason"]
    assert connector.capability_report["edit_history"]
    assert state.statuses == status_id

    # The unavailable endpoint is not asked again on every capture (re-checked after a day).
    calls = history.call_count
    state.edits.clear()
    connector.fetch_activity(tokens=tokens, handle=f"@acme@{server}", cursor=state.dump())
    assert history.call_count == calls


# --- Publishing --------------------------------------------------------------------------------


def test_publish_a_reply_with_media(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any
) -> None:
    media = rsps.post(
        f"{HOST}/api/v2/media", body=fixture_bytes("media_posted.json"), content_type=JSON
    )
    posted = rsps.post(
        f"{HOST}/api/v1/statuses", body=fixture_bytes("status_posted.json"), content_type=JSON
    )
    result = connector.publish(
        tokens=tokens,
        request=PublishRequest(
            text="Hello from Vetline",
            reply_to_remote_id="109999000000000777",
            media=(Media(content=b"\x89PNG\r\n", mime_type="image/png", alt_text="A chart"),),
        ),
    )
    assert result.remote_id == "110000000000000200"
    assert result.url == "https://mastodon.example/@acme/110000000000000200"
    assert b"A chart" in media.calls[0].request.body
    sent = posted.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["Idempotency-Key"]
    assert "in_reply_to_id=109999000000000777" in sent.body
    assert "22345792" in sent.body


def test_publish_falls_back_to_v1_media_on_old_servers(
    rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any
) -> None:
    rsps.post(f"{HOST}/api/v2/media", status=404, json={"error": "Not found"})
    rsps.post(f"{HOST}/api/v1/media", body=fixture_bytes("media_posted.json"), content_type=JSON)
    rsps.post(
        f"{HOST}/api/v1/statuses", body=fixture_bytes("status_posted.json"), content_type=JSON
    )
    request = PublishRequest(text="Hi", media=(Media(content=b"img", mime_type="image/png"),))
    assert connector.publish(tokens=tokens, request=request).remote_id == "110000000000000200"
    assert "media_v2" in connector.capability_report


def test_search(rsps: responses.RequestsMock, connector: MastodonConnector, tokens: Any) -> None:
    rsps.get(
        f"{HOST}/api/v2/search",
        body=fixture_bytes("search_v2.json"),
        content_type=JSON,
        match=[q(q="fund", type="statuses")],
    )
    found = connector.search(tokens=tokens, query="fund")
    assert [(i["remote_id"], i["direction"]) for i in found] == [("110000000000000101", "inbound")]


def test_code_exchange_and_publishing_know_the_server_from_the_account(
    rsps: responses.RequestsMock, clock: Any
) -> None:
    """Each server is its own OAuth provider: the account being connected says which one issued
    the code (even when the worker that started the flow is gone), and publishing with tokens
    that carry only the account's handle goes to that server."""
    app = {"client_id": "cid", "client_secret": "csecret"}
    connector = MastodonConnector(config={"apps": {"mastodon.example": app}}, clock=clock)
    rsps.get(f"{HOST}/.well-known/oauth-authorization-server", status=404, body=b"Not Found")
    token = rsps.post(
        f"{HOST}/oauth/token",
        body=fixture_bytes("oauth_token.json"),
        content_type="application/json",
    )
    rsps.get(
        f"{HOST}/api/v1/accounts/verify_credentials",
        json=fixture_json("account_verify_credentials.json"),
    )
    tokens = connector.exchange_code(
        code="the-code",
        redirect_uri="https://vetline.example/cb",
        code_verifier="v" * 43,
        account=AccountRef(handle="@acme@mastodon.example"),
    )
    assert "code=the-code" in token.calls[0].request.body
    assert tokens.remote_account_id.endswith("@mastodon.example")
    with pytest.raises(PermanentError, match="unknown or has expired"):
        connector.exchange_code(code="c", redirect_uri="https://x/cb", code_verifier="w" * 43)

    posted = rsps.post(
        f"{HOST}/api/v1/statuses",
        body=fixture_bytes("status_posted.json"),
        content_type="application/json",
    )
    handle_only = TokenSet(access_token=TOKEN, remote_handle="@acme@mastodon.example")
    connector.publish(tokens=handle_only, request=PublishRequest(text="Hello"))
    assert posted.call_count == 1
