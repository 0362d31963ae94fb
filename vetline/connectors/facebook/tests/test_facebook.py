"""Facebook Pages connector against recorded Graph API v23.0 responses (fixtures/README.md),
replayed by ``responses`` to the real Business SDK."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import responses

from vetline.connectors.base import (
    AccountRef,
    AuthExpired,
    AuthRevoked,
    Media,
    PermanentError,
    PublishRequest,
    RateLimited,
    TokenSet,
    TransientError,
)
from vetline.connectors.facebook.connector import FacebookPagesConnector
from vetline.connectors.facebook.graph import PublishUncertain
from vetline.connectors.facebook.tests.helpers import (
    FakeClock,
    by_id,
    drain,
    fixture_bytes,
    fixture_json,
    raw_of,
    reasons,
    unreadable,
)
from vetline.connectors.http import RetryPolicy, TokenRedactingFilter

HERE = Path(__file__).parent
G = "https://graph.facebook.com/v23.0"
PAGE = "104857600000001"
POST1, POST2, POST3 = (f"{PAGE}_82200000000000{i}" for i in (1, 2, 3))
TOKEN = "EAAGPAGEtokenFORacmebank0123456789"
TOKENS = TokenSet(access_token=TOKEN, remote_account_id=PAGE)


def fx(name: str) -> bytes:
    return fixture_bytes(HERE, name)


def connector(clock: FakeClock | None = None) -> FacebookPagesConnector:
    return FacebookPagesConnector(
        config={"app_id": "1234567890", "app_secret": "appsecret-abcdef123456"},
        clock=clock or FakeClock(),
        policy=RetryPolicy(max_attempts=4),
    )


def add(method: str, path: str, body: bytes, status: int = 200, **headers: str) -> None:
    responses.add(
        method,
        f"{G}/{path}",
        body=body,
        status=status,
        content_type="application/json; charset=UTF-8",
        headers=headers,
    )


def script_first_sweep() -> None:
    add("GET", PAGE, fx("page.json"))
    add("GET", f"{PAGE}/feed", fx("feed_page1.json"))
    add("GET", f"{PAGE}/feed", fx("feed_page2.json"))
    add("GET", f"{PAGE}/tagged", fx("tagged.json"))
    add("GET", f"{PAGE}/conversations", fx("conversations.json"))
    add("GET", f"{POST3}/comments", fx("comments_post3.json"))
    add("GET", f"{POST2}/comments", fx("comments_empty.json"))
    add("GET", f"{POST1}/comments", fx("comments_empty.json"))
    add("GET", "t_10161234567890123/messages", fx("messages.json"))


def fetcher(c: FacebookPagesConnector, tokens: TokenSet = TOKENS) -> Any:
    return lambda cursor: c.fetch_activity(tokens=tokens, handle="acmebank", cursor=cursor, limit=2)


@responses.activate
def test_backfill_pages_through_feed_comments_and_messages() -> None:
    script_first_sweep()
    items, cursor, calls = drain(fetcher(connector()))
    assert calls == 9  # one Graph request per call: the cursor is stored after each page
    found = by_id(items)
    assert set(found) == {
        POST1,
        POST2,
        POST3,
        "822000000000003_7001",
        "822000000000003_7002",
        "m_AbCdEf1",
        "m_AbCdEf2",
        "9000000000000042_3300000000001",
    } | {i for i in found if i.startswith("profile:")}
    mention = found["9000000000000042_3300000000001"]
    assert (mention["kind"], mention["direction"], mention["author"]) == (
        "post",
        "inbound",
        "Sam Shopper",
    )
    # The page's own post and a visitor's post on the Page
    assert found[POST3]["kind"] == "post" and found[POST3]["direction"] == "outbound"
    assert found[POST2]["direction"] == "inbound"
    assert found[POST2]["author"] == "<b>Eve</b>\u200b Customer"  # verbatim, escaped at render
    assert found[POST3]["network_timestamp"] == "2025-06-03T09:00:00+00:00"
    # Comments by others (inbound) and the Page's reply
    comment, reply = found["822000000000003_7001"], found["822000000000003_7002"]
    assert (comment["kind"], comment["direction"]) == ("comment", "inbound")
    assert comment["text"] == "Why so early?\u200b\u200d"
    assert (reply["kind"], reply["direction"]) == ("reply", "outbound")
    assert reply["parent_remote_id"] == "822000000000003_7001" and reply["thread_id"] == POST3
    # Messenger conversation
    dm_in, dm_out = found["m_AbCdEf1"], found["m_AbCdEf2"]
    assert (dm_in["kind"], dm_in["direction"]) == ("direct_message", "inbound")
    assert dm_out["direction"] == "outbound"
    assert dm_in["conversation_id"] == "t_10161234567890123"
    assert dm_in["participants"] == ["Acme Bank", "Jo Customer"]
    # Raw payload: the item's JSON exactly as in the response
    feed = fixture_json(HERE, "feed_page1.json")
    assert json.loads(raw_of(found[POST2])) == feed["data"][1]
    profile = next(i for i in items if not isinstance(i, bytes) and i["kind"] == "profile_snapshot")
    assert raw_of(profile) == fx("page.json")
    # The second feed page was asked for with the `after` cursor; no token in the cursor
    feed_calls = [c.request.url for c in responses.calls if "/feed" in c.request.url]
    assert "after=QVFIUk5fTUFHNF9" in feed_calls[1]
    assert cursor is not None and TOKEN not in cursor and "EAAG" not in cursor


@responses.activate
def test_rate_limit_code_32_waits_what_the_usage_header_says() -> None:
    clock = FakeClock()
    usage = json.dumps(
        {PAGE: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 2}]}
    )
    add(
        "GET",
        PAGE,
        fx("error_rate_limited.json"),
        status=400,
        **{"X-Business-Use-Case-Usage": usage, "X-App-Usage": '{"call_count":100}'},
    )
    add("GET", PAGE, fx("page.json"))
    profile = connector(clock).fetch_profile(tokens=TOKENS, handle="acmebank")
    assert profile.display_name == "Acme Bank"
    assert len(clock.sleeps) == 1 and 120 <= clock.sleeps[0] <= 121


@responses.activate
def test_http_429_retry_after_then_a_long_wait_goes_back_to_the_scheduler() -> None:
    clock = FakeClock()
    add("GET", PAGE, b"", status=429, **{"Retry-After": "7"})
    add("GET", PAGE, fx("page.json"))
    connector(clock).fetch_profile(tokens=TOKENS, handle="acmebank")
    assert 7 <= clock.sleeps[0] <= 8
    responses.reset()
    add("GET", PAGE, b"", status=429, **{"Retry-After": "3600"})
    with pytest.raises(RateLimited) as info:
        connector(clock).fetch_profile(tokens=TOKENS, handle="acmebank")
    assert info.value.retry_after == 3600


@pytest.mark.parametrize(
    ("fixture", "error"),
    [("error_token_expired.json", AuthExpired), ("error_token_revoked.json", AuthRevoked)],
)
@responses.activate
def test_expired_and_revoked_tokens(fixture: str, error: type[Exception]) -> None:
    add("GET", PAGE, fx(fixture), status=400)
    with pytest.raises(error) as info:
        connector().fetch_activity(tokens=TOKENS, handle="acmebank", cursor=None)
    assert TOKEN not in str(info.value)
    assert len(responses.calls) == 1  # not retried


@responses.activate
def test_server_errors_are_retried_then_reported() -> None:
    clock = FakeClock()
    add("GET", PAGE, b"<html>502 Bad Gateway</html>", status=502)
    add("GET", PAGE, fx("error_transient.json"), status=500)
    add("GET", PAGE, fx("page.json"))
    connector(clock).fetch_profile(tokens=TOKENS, handle="acmebank")
    assert len(clock.sleeps) == 2
    responses.reset()
    add("GET", PAGE, fx("error_transient.json"), status=500)
    with pytest.raises(TransientError) as info:
        connector(clock).fetch_profile(tokens=TOKENS, handle="acmebank")
    assert "Graph API error 2" in info.value.message
    assert len(responses.calls) == 4  # RetryPolicy(max_attempts=4)


@responses.activate
def test_truncated_malformed_and_invalid_utf8_are_handed_over_not_dropped() -> None:
    truncated = fx("feed_page1.json")[:200]
    add("GET", PAGE, fx("page.json"))
    add("GET", f"{PAGE}/feed", truncated)
    add("GET", f"{PAGE}/tagged", fx("comments_empty.json"))
    add("GET", f"{PAGE}/conversations", fx("comments_empty.json"))
    items, _, _ = drain(fetcher(connector()))
    assert truncated in unreadable(items)

    responses.reset()
    bad = (
        b'{"data":[{"message":"no id here","created_time":"2025-06-03T09:00:00+0000"},'
        b'{"id":"' + POST1.encode() + b'","message":"caf\xe9 latin-1 byte",'
        b'"created_time":"2025-06-01T08:00:00+0000","from":{"id":"' + PAGE.encode() + b'"}},'
        b'{"id":"' + POST2.encode() + b'","message":"' + b"x" * 2_000_000 + b'",'
        b'"created_time":"2025-06-02T08:00:00+0000","from":{"id":"' + PAGE.encode() + b'"}}]}'
    )
    add("GET", PAGE, fx("page.json"))
    add("GET", f"{PAGE}/feed", bad)
    add("GET", f"{PAGE}/tagged", fx("comments_empty.json"))
    add("GET", f"{PAGE}/conversations", fx("comments_empty.json"))
    add("GET", f"{POST1}/comments", fx("comments_empty.json"))
    add("GET", f"{POST2}/comments", fx("comments_empty.json"))
    items, _, _ = drain(fetcher(connector()))
    assert json.loads(unreadable(items)[0]) == {
        "message": "no id here",
        "created_time": "2025-06-03T09:00:00+0000",
    }
    assert reasons(items) == ["facebook posts: no id or time"]  # the connector says why
    found = by_id(items)
    assert b"caf\xe9 latin-1 byte" in raw_of(found[POST1])  # the invalid byte as received
    assert len(found[POST2]["text"]) == 2_000_000


@responses.activate
def test_edits_and_deletions_are_found_by_re_fetch() -> None:
    clock = FakeClock()
    c = connector(clock)
    script_first_sweep()
    _, cursor, _ = drain(fetcher(c))
    responses.reset()
    clock.t += 3600
    edited = fixture_json(HERE, "feed_page1.json")
    edited["data"][0]["message"] = "Our branches close at 4pm on Friday."
    edited["paging"] = {"cursors": {"before": "a", "after": "b"}}
    add("GET", PAGE, fx("page.json"))
    add("GET", f"{PAGE}/feed", json.dumps(edited).encode())
    add("GET", f"{PAGE}/tagged", fx("comments_empty.json"))
    add("GET", f"{PAGE}/conversations", json.dumps({"data": []}).encode())
    add("GET", f"{POST3}/comments", fx("comments_post3.json"))
    add("GET", f"{POST2}/comments", fx("comments_empty.json"))
    add("GET", POST1, fx("error_not_found.json"), status=400)  # the confirm lookup
    items, cursor, _ = drain(fetcher(c), cursor)
    feed_url = next(c.request.url for c in responses.calls if "/feed" in c.request.url)
    assert "since=" in feed_url  # later sweeps read the re-fetch window only
    found = by_id(items)
    assert found[POST3]["kind"] == "edit" and found[POST3]["parent_remote_id"] == POST3
    assert found[POST3]["text"] == "Our branches close at 4pm on Friday."
    gone = found[POST1]
    assert gone["kind"] == "deletion" and gone["direction"] == "outbound"
    assert raw_of(gone) == fx("error_not_found.json")
    assert found[POST2]["kind"] == "post"  # a visitor's post: never an edit


@responses.activate
def test_publish_post_photo_reply_and_delete() -> None:
    add("POST", f"{PAGE}/feed", b'{"id":"' + POST3.encode() + b'"}')
    c = connector()
    result = c.publish(tokens=TOKENS, request=PublishRequest(text="Hello"))
    assert result.remote_id == POST3 and result.url == f"https://www.facebook.com/{POST3}"
    add("POST", f"{PAGE}/photos", b'{"id":"555","post_id":"' + POST2.encode() + b'"}')
    photo = Media(content=b"\x89PNG...", mime_type="image/png", alt_text="A branch")
    result = c.publish(tokens=TOKENS, request=PublishRequest(text="Look", media=(photo,)))
    assert result.remote_id == POST2
    upload = responses.calls[-1].request
    assert b'name="source"' in upload.body and b"alt_text_custom" in upload.body
    add("POST", "822000000000003_7001/comments", b'{"id":"822000000000003_7003"}')
    reply = c.publish(
        tokens=TOKENS,
        request=PublishRequest(text="Thanks!", reply_to_remote_id="822000000000003_7001"),
    )
    assert reply.remote_id == "822000000000003_7003"
    add("DELETE", POST3, b'{"success":true}')
    c.delete(tokens=TOKENS, remote_id=POST3)
    add("DELETE", POST1, fx("error_not_found.json"), status=400)
    c.delete(tokens=TOKENS, remote_id=POST1)  # already gone: fine


@responses.activate
def test_publishing_is_not_repeated_after_a_server_error() -> None:
    clock = FakeClock()
    add("POST", f"{PAGE}/feed", fx("error_transient.json"), status=500)
    with pytest.raises(PublishUncertain):
        connector(clock).publish(tokens=TOKENS, request=PublishRequest(text="Hello"))
    assert len(responses.calls) == 1 and clock.sleeps == []


@responses.activate
def test_facebook_login_gives_the_page_token() -> None:
    add("GET", "oauth/access_token", fx("oauth_short.json"))
    add("GET", "oauth/access_token", fx("oauth_long.json"))
    add("GET", "me/permissions", fx("permissions.json"))
    add("GET", "me/accounts", fx("accounts.json"))
    c = connector()
    url = c.authorization_url(
        redirect_uri="https://vetline.example/cb", state="st", code_challenge="ch", handle="x"
    )
    assert url.startswith("https://www.facebook.com/v23.0/dialog/oauth?")
    assert "code_challenge=ch" in url and "pages_messaging" in url
    tokens = c.exchange_code(code="AQDcode", redirect_uri="https://x/cb", code_verifier="v" * 43)
    assert tokens.access_token == TOKEN and tokens.remote_account_id == PAGE
    assert tokens.expires_at is None
    assert "pages_messaging" not in tokens.scopes  # declined in the dialog
    # The capability report says what the permissions left out cost: messages, and (not
    # asked for in this recorded grant) comments by others and replying to them.
    report = c.probe(tokens=tokens)
    assert report.missing == {
        "capture_direct_messages": "scope not granted: pages_messaging",
        "capture_replies": "scope not granted: pages_read_user_content",
        "capture_mentions": "scope not granted: pages_read_user_content",
        "publish_reply": "scope not granted: pages_manage_engagement",
    }
    assert "publish_post" in report.allowed and "capture_own_posts" in report.allowed
    exchange = responses.calls[1].request.url
    assert "grant_type=fb_exchange_token" in exchange


@responses.activate
def test_login_granting_several_pages_picks_the_account_being_connected() -> None:
    """People often hold several Pages and leave them all ticked in the dialog: the Page whose
    username, name or id is the registered account's handle is the one connected."""
    pages = fixture_json(HERE, "accounts.json")
    other = dict(pages["data"][0], id="104857600000009", name="Acme Insurance", username="acmeins")
    pages["data"].append(other | {"access_token": "EAAGPAGEtokenFORacmeins0123456789"})
    for _ in range(3):
        add("GET", "oauth/access_token", fx("oauth_short.json"))
        add("GET", "oauth/access_token", fx("oauth_long.json"))
        add("GET", "me/permissions", fx("permissions.json"))
        add("GET", "me/accounts", json.dumps(pages).encode())
    c = connector()
    code = {"code": "AQDcode", "redirect_uri": "https://x/cb", "code_verifier": "v" * 43}
    tokens = c.exchange_code(**code, account=AccountRef(handle="@acmeins"))
    assert tokens.remote_account_id == "104857600000009"
    with pytest.raises(PermanentError, match="none of them @nobody"):
        c.exchange_code(**code, account=AccountRef(handle="@nobody"))
    with pytest.raises(PermanentError, match="2 Pages"):
        c.exchange_code(**code)  # without the account, one Page at a time


@responses.activate
def test_tokens_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    add("GET", PAGE, b"", status=503)
    add("GET", PAGE, fx("page.json"))
    handler_filter = TokenRedactingFilter()
    with caplog.at_level(logging.DEBUG):
        connector(clock).fetch_profile(tokens=TOKENS, handle="acmebank")
    assert caplog.records
    for record in caplog.records:
        handler_filter.filter(record)
        assert TOKEN not in record.getMessage() and TOKEN not in str(record.__dict__)


@pytest.mark.django_db
@responses.activate
def test_capture_round_trip_lands_in_the_archive_once(world: Any) -> None:
    from django.db import transaction

    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.archive.models import ArchivedRecord, QuarantinedItem
    from vetline.connectors import actions
    from vetline.connectors.models import CaptureState, Connection
    from vetline.identity.roles import Role

    admin = world.people[Role.ADMINISTRATOR]
    account = SocialAccount.objects.create(
        network=Network.FACEBOOK,
        handle="acmebank",
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
    )
    Connection.objects.create(
        account=account, status="connected", connected_by=admin, remote_account_id=PAGE
    )
    with transaction.atomic():
        actions._store_tokens(account=account, tokens=TOKENS, set_by=admin)
    clock = FakeClock()
    c = connector(clock)
    script_first_sweep()
    outcome = actions.capture_account(account_id=account.pk, connector=c, page_size=2)
    assert outcome.status == "captured", outcome.error
    assert outcome.ingested == 9 and outcome.quarantined == 0
    records = ArchivedRecord.objects.filter(account=account)
    assert records.count() == 9
    assert records.get(remote_id=POST2).raw_payload_sha256  # stored with its raw payload

    # Re-capture: the same answers are duplicates, nothing new and nothing quarantined.
    responses.reset()
    script_first_sweep()
    clock.t += 600
    again = actions.capture_account(account_id=account.pk, connector=c, page_size=2)
    assert again.status == "captured"
    assert again.ingested == 0 and again.duplicates == 9, again
    assert ArchivedRecord.objects.filter(account=account).count() == 9
    assert not QuarantinedItem.objects.filter(account=account).exists()
    assert CaptureState.objects.get(account=account).has_cursor
