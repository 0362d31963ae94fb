"""LinkedIn connector against recorded responses following the Posts, Social Actions/Comments,
Images and OpenID userinfo references (fixtures/README.md), replayed by ``responses`` to
LinkedIn's own client (RestliClient, AuthClient)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import responses

from vetline.connectors.base import (
    AccountRef,
    AuthExpired,
    AuthRevoked,
    Media,
    PublishRequest,
    RateLimited,
    TokenSet,
    TransientError,
)
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
from vetline.connectors.http import RetryPolicy
from vetline.connectors.linkedin.connector import LinkedInConnector

HERE = Path(__file__).parent
REST = "https://api.linkedin.com/rest"
ME = "urn:li:person:8675309abc"
P1, P2, P3 = (f"urn:li:share:700000000000000000{i}" for i in (1, 2, 3))
C1 = "urn:li:comment:(urn:li:activity:7100000000000000003,7200000000000000001)"
C2 = "urn:li:comment:(urn:li:activity:7100000000000000003,7200000000000000002)"
TOKEN = "AQVlinkedinACCESStoken0123456789"
TOKENS = TokenSet(access_token=TOKEN, remote_account_id=ME)


def fx(name: str) -> bytes:
    return fixture_bytes(HERE, name)


def add(
    method: str, url: str | re.Pattern[str], body: bytes, status: int = 200, **headers: str
) -> None:
    responses.add(
        method, url, body=body, status=status, content_type="application/json", headers=headers
    )


def comments_of(urn_id: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(REST)}/socialActions/[^/]*{urn_id}[^/]*/comments.*")


def post_url(urn_id: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(REST)}/posts/[^/?]*{urn_id}$")


def connector(clock: FakeClock | None = None) -> LinkedInConnector:
    return LinkedInConnector(
        config={"client_id": "86abcdef", "client_secret": "linkedin-secret-123456"},
        clock=clock or FakeClock(),
        policy=RetryPolicy(max_attempts=3),
    )


def fetch(c: LinkedInConnector, handle: str = "dana") -> Any:
    return lambda cursor: c.fetch_activity(tokens=TOKENS, handle=handle, cursor=cursor, limit=2)


def script_sweep() -> None:
    add("GET", "https://api.linkedin.com/v2/userinfo", fx("userinfo.json"))
    add("GET", f"{REST}/posts", fx("posts_page1.json"))
    add("GET", f"{REST}/posts", fx("posts_page2.json"))
    add("GET", comments_of("7000000000000000003"), fx("comments_post3.json"))
    add("GET", comments_of("7000000000000000002"), fx("comments_empty.json"))
    add("GET", comments_of("7000000000000000001"), fx("comments_empty.json"))


@responses.activate
def test_backfill_posts_with_start_count_paging_and_comments() -> None:
    script_sweep()
    items, cursor, _ = drain(fetch(connector()))
    found = by_id(items)
    assert {P1, P2, P3, C1, C2} <= set(found)
    assert found[P3]["kind"] == "post" and found[P3]["direction"] == "outbound"
    assert found[P3]["network_timestamp"] == "2025-06-03T09:00:00+00:00"
    page1 = fixture_json(HERE, "posts_page1.json")
    assert json.loads(raw_of(found[P3])) == page1["elements"][0]
    comment, reply = found[C1], found[C2]
    assert (comment["kind"], comment["direction"], comment["author"]) == (
        "comment",
        "inbound",
        "urn:li:person:jo12345",
    )
    assert comment["text"].endswith("<iframe src=//evil></iframe>\u200b")
    assert (reply["kind"], reply["direction"], reply["parent_remote_id"]) == (
        "reply",
        "outbound",
        C1,
    )
    # Counters are left out of the stored comment (they change on every read)
    assert "likesSummary" not in json.loads(raw_of(comment))
    profile = next(i for i in items if not isinstance(i, bytes) and i["kind"] == "profile_snapshot")
    assert raw_of(profile) == fx("userinfo.json")
    finder = [c.request for c in responses.calls if c.request.url.startswith(f"{REST}/posts")]
    assert "q=author" in finder[0].url and "start=0" in finder[0].url
    assert "start=2" in finder[1].url and "count=2" in finder[1].url
    assert "author=urn%3Ali%3Aperson%3A8675309abc" in finder[0].url
    assert finder[0].headers["LinkedIn-Version"] == "202610"
    assert finder[0].headers["X-RestLi-Protocol-Version"] == "2.0.0"
    assert cursor is not None and TOKEN not in cursor


@responses.activate
def test_organization_page_capture_uses_the_organization() -> None:
    add("GET", f"{REST}/organizations/2414183", fx("organization.json"))
    add(
        "GET",
        f"{REST}/posts",
        json.dumps({"paging": {"start": 0, "count": 2}, "elements": []}).encode(),
    )
    items, _, _ = drain(fetch(connector(), handle="urn:li:organization:2414183"))
    assert items[0]["kind"] == "profile_snapshot" and items[0]["text"].startswith("Acme Bank")
    finder = next(c.request.url for c in responses.calls if "/posts" in c.request.url)
    assert "urn%3Ali%3Aorganization%3A2414183" in finder


@responses.activate
def test_edit_and_deletion_on_the_next_sweep() -> None:
    clock = FakeClock()
    c = connector(clock)
    script_sweep()
    _, cursor, _ = drain(fetch(c))
    responses.reset()
    clock.t += 3600
    page = fixture_json(HERE, "posts_page1.json")
    page["elements"][0]["commentary"] = "Hiring: compliance analysts in Dublin and Cork."
    page["elements"][0]["lastModifiedAt"] = 1748990000000
    page["elements"][0]["lifecycleStateInfo"] = {"isEditedByAuthor": True}
    add("GET", "https://api.linkedin.com/v2/userinfo", fx("userinfo.json"))
    add("GET", f"{REST}/posts", json.dumps(page).encode())
    add(
        "GET",
        f"{REST}/posts",
        json.dumps({"paging": {"start": 2, "count": 2}, "elements": []}).encode(),
    )
    add("GET", comments_of("7000000000000000003"), fx("comments_post3.json"))
    add("GET", comments_of("7000000000000000002"), fx("comments_empty.json"))
    add("GET", post_url("7000000000000000001"), fx("error_not_found.json"), status=404)
    items, _, _ = drain(fetch(c), cursor)
    found = by_id(items)
    assert found[P3]["kind"] == "edit" and found[P3]["text"].endswith("and Cork.")
    assert found[P2]["kind"] == "post"
    assert found[P1]["kind"] == "deletion" and raw_of(found[P1]) == fx("error_not_found.json")


@responses.activate
def test_429_with_retry_after_and_the_daily_quota() -> None:
    clock = FakeClock()
    add(
        "GET",
        "https://api.linkedin.com/v2/userinfo",
        fx("error_throttled.json"),
        status=429,
        **{"Retry-After": "5"},
    )
    add("GET", "https://api.linkedin.com/v2/userinfo", fx("userinfo.json"))
    assert (
        connector(clock).fetch_profile(tokens=TOKENS, handle="dana").display_name.startswith("Dana")
    )
    assert 5 <= clock.sleeps[0] <= 6
    responses.reset()
    add("GET", "https://api.linkedin.com/v2/userinfo", fx("error_throttled.json"), status=429)
    with pytest.raises(RateLimited) as info:
        connector(clock).fetch_profile(tokens=TOKENS, handle="dana")
    now = dt.datetime.fromtimestamp(clock.t, dt.UTC)
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert info.value.retry_after == pytest.approx((midnight - now).total_seconds())


@pytest.mark.parametrize(
    ("fixture", "error"), [("error_revoked.json", AuthRevoked), ("error_expired.json", AuthExpired)]
)
@responses.activate
def test_revoked_and_expired_tokens(fixture: str, error: type[Exception]) -> None:
    add("GET", "https://api.linkedin.com/v2/userinfo", fx(fixture), status=401)
    with pytest.raises(error):
        connector().fetch_activity(tokens=TOKENS, handle="dana", cursor=None)
    assert len(responses.calls) == 1


@responses.activate
def test_server_errors_retried_then_clear_error() -> None:
    clock = FakeClock()
    add("GET", "https://api.linkedin.com/v2/userinfo", fx("error_server.json"), status=500)
    add("GET", "https://api.linkedin.com/v2/userinfo", b"<html>504</html>", status=504)
    add("GET", "https://api.linkedin.com/v2/userinfo", fx("error_server.json"), status=500)
    with pytest.raises(TransientError) as info:
        connector(clock).fetch_profile(tokens=TOKENS, handle="dana")
    assert "HTTP 500" in info.value.message and len(clock.sleeps) == 2


@responses.activate
def test_truncated_and_malformed_posts_are_kept() -> None:
    truncated = fx("posts_page1.json")[:300]
    add("GET", "https://api.linkedin.com/v2/userinfo", fx("userinfo.json"))
    add("GET", f"{REST}/posts", truncated)
    items, _, _ = drain(fetch(connector()))
    assert truncated in items
    responses.reset()
    bad = {"paging": {"start": 0, "count": 2}, "elements": [{"id": P1, "commentary": "no times"}]}
    add("GET", "https://api.linkedin.com/v2/userinfo", b"\xff\xfe not json")
    add("GET", f"{REST}/posts", json.dumps(bad).encode())
    items, _, _ = drain(fetch(connector()))
    assert b"\xff\xfe not json" in items
    assert (
        json.loads(next(i for i in unreadable(items) if i.startswith(b"{"))) == (bad["elements"][0])
    )
    assert reasons(items) == ["linkedin posts: no id or times"]


@responses.activate
def test_publish_text_image_comment_and_delete() -> None:
    add("POST", f"{REST}/images", fx("image_init.json"))
    responses.add("PUT", re.compile(r"https://www\.linkedin\.com/dms-uploads/.*"), status=201)
    add("POST", f"{REST}/posts", b"", status=201, **{"x-restli-id": P3})
    image = Media(content=b"\x89PNG", mime_type="image/png", alt_text="Our team")
    result = connector().publish(
        tokens=TOKENS, request=PublishRequest(text="Hello", media=(image,))
    )
    assert result.remote_id == P3
    assert result.url == f"https://www.linkedin.com/feed/update/{P3}/"
    init = json.loads(responses.calls[0].request.body)
    assert init == {"initializeUploadRequest": {"owner": ME}}
    assert responses.calls[0].request.url.endswith("action=initializeUpload")
    created = json.loads(responses.calls[2].request.body)
    assert created["author"] == ME and created["commentary"] == "Hello"
    assert created["content"] == {
        "media": {"id": "urn:li:image:D4D10AQH4a1b2c3d4", "altText": "Our team"}
    }

    add(
        "POST",
        comments_of("7100000000000000003"),
        json.dumps({"commentUrn": C2}).encode(),
        status=201,
    )
    reply = connector().publish(
        tokens=TOKENS, request=PublishRequest(text="Yes", reply_to_remote_id=C1)
    )
    assert reply.remote_id == C2
    body = json.loads(responses.calls[-1].request.body)
    assert body["parentComment"] == C1 and body["object"] == "urn:li:activity:7100000000000000003"

    add("DELETE", post_url("7000000000000000003"), b"", status=204)
    connector().delete(tokens=TOKENS, remote_id=P3)
    add("DELETE", post_url("7000000000000000001"), fx("error_not_found.json"), status=404)
    connector().delete(tokens=TOKENS, remote_id=P1)  # already gone


@responses.activate
def test_organization_publishing_posts_as_the_organization() -> None:
    """The organization page's account: its posts and comments are the organization's, though
    the token is that of the administrator who connected it; with only the tokens (publishing
    through ``account_tokens``), the handle stored with them says the same."""
    org = "urn:li:organization:2414183"
    add("POST", f"{REST}/posts", b"", status=201, **{"x-restli-id": P3})
    connector().publish(
        tokens=TOKENS, request=PublishRequest(text="News"), account=AccountRef(handle=org)
    )
    assert json.loads(responses.calls[-1].request.body)["author"] == org
    stored = TokenSet(access_token=TOKEN, remote_account_id=ME, remote_handle=org)
    connector().publish(tokens=stored, request=PublishRequest(text="More news"))
    assert json.loads(responses.calls[-1].request.body)["author"] == org
    member = TokenSet(access_token=TOKEN, remote_account_id=ME, remote_handle="jane-advisor")
    connector().publish(tokens=member, request=PublishRequest(text="Mine"))
    assert json.loads(responses.calls[-1].request.body)["author"] == ME
    add("DELETE", re.compile(rf"{REST}/socialActions/.*"), b"", status=204)
    connector().delete(tokens=TOKENS, remote_id=C1, account=AccountRef(handle=org))
    assert f"actor={org.replace(':', '%3A')}" in responses.calls[-1].request.url


@responses.activate
def test_oauth_code_exchange_and_refresh() -> None:
    add("POST", "https://www.linkedin.com/oauth/v2/accessToken", fx("token.json"))
    add("GET", "https://api.linkedin.com/v2/userinfo", fx("userinfo.json"))
    c = connector()
    url = c.authorization_url(
        redirect_uri="https://v.example/cb", state="st8", code_challenge="x", handle="d"
    )
    assert url.startswith("https://www.linkedin.com/oauth/v2/authorization?") and "state=st8" in url
    tokens = c.exchange_code(code="AQTcode", redirect_uri="https://v.example/cb", code_verifier="")
    assert tokens.remote_account_id == ME and tokens.refresh_token.startswith("AQX")
    assert "r_member_social" in tokens.scopes and tokens.expires_at is not None
    add(
        "POST",
        "https://www.linkedin.com/oauth/v2/accessToken",
        fx("refresh_refused.json"),
        status=400,
    )
    with pytest.raises(AuthRevoked):
        c.refresh(tokens=tokens)


def test_probe_checks_the_organization_scopes_for_an_organization_page() -> None:
    member = TokenSet(
        access_token=TOKEN, scopes=("openid", "profile", "w_member_social"), remote_account_id=ME
    )
    report = connector().probe(tokens=member, account=AccountRef(handle="jane-advisor"))
    assert "publish_post" in report.allowed
    # Reading a member's own posts needs r_member_social (approved partners only).
    assert report.missing["capture_own_posts"] == "scope not granted: r_member_social"
    org = AccountRef(handle="urn:li:organization:2414183")
    report = connector().probe(tokens=member, account=org)
    assert report.missing["publish_post"] == "scope not granted: w_organization_social"
