"""Instagram connector against recorded Instagram Graph API v23.0 responses
(fixtures/README.md), replayed by ``responses`` to the real Business SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses

from vetline.connectors.base import (
    AuthRevoked,
    Media,
    PermanentError,
    PublishRequest,
    TokenSet,
    Unsupported,
)
from vetline.connectors.facebook.tests.helpers import (
    FakeClock,
    by_id,
    drain,
    fixture_bytes,
    fixture_json,
    raw_of,
)
from vetline.connectors.http import RetryPolicy
from vetline.connectors.instagram.connector import InstagramConnector

HERE = Path(__file__).parent
G = "https://graph.facebook.com/v23.0"
IG = "17841400000000001"
M1, M2 = "17900000000000001", "17900000000000002"
CONV = "aWdfZAG06MTpJR01lc3NhZA2VUaHJlYWQ6MTc4"
TOKEN = "EAAGIGPAGEtoken0123456789"
TOKENS = TokenSet(access_token=TOKEN, remote_account_id=IG)


def fx(name: str) -> bytes:
    return fixture_bytes(HERE, name)


def add(method: str, path: str, body: bytes, status: int = 200, **headers: str) -> None:
    responses.add(
        method,
        f"{G}/{path}",
        body=body,
        status=status,
        content_type="application/json",
        headers=headers,
    )


def connector(clock: FakeClock | None = None, **kwargs: Any) -> InstagramConnector:
    return InstagramConnector(
        config={"app_id": "1234567890", "app_secret": "appsecret-abcdef123456"},
        clock=clock or FakeClock(),
        policy=RetryPolicy(max_attempts=3),
        **kwargs,
    )


def fetch(c: InstagramConnector) -> Any:
    return lambda cursor: c.fetch_activity(tokens=TOKENS, handle="acmebank", cursor=cursor, limit=1)


def script_sweep(
    *, media_pages: tuple[str, ...] = ("media_page1.json", "media_page2.json")
) -> None:
    add("GET", IG, fx("user.json"))
    for page in media_pages:
        add("GET", f"{IG}/media", fx(page))
    add("GET", f"{IG}/tags", fx("tags.json"))
    add("GET", "me", fx("me_page.json"))
    add("GET", "104857600000001/conversations", fx("conversations.json"))
    add("GET", f"{M2}/comments", fx("comments.json"))
    add("GET", f"{M1}/comments", fx("empty.json"))
    add("GET", f"{CONV}/messages", fx("messages.json"))


@responses.activate
def test_backfill_media_comments_replies_tags_and_messages() -> None:
    script_sweep()
    items, cursor, _ = drain(fetch(connector()))
    found = by_id(items)
    assert found[M2]["kind"] == "post" and found[M2]["direction"] == "outbound"
    assert found[M1]["text"] == "Hello Instagram"
    comment, reply = found["17850000000000011"], found["17850000000000012"]
    assert (comment["kind"], comment["direction"], comment["author"]) == (
        "comment",
        "inbound",
        "jo.customer",
    )
    assert comment["parent_remote_id"] == M2
    assert (reply["kind"], reply["direction"]) == ("reply", "outbound")
    assert reply["parent_remote_id"] == "17850000000000011"
    # The comment's raw payload is its JSON without the nested replies (each is its own item)
    raw_comment = json.loads(raw_of(comment))
    assert "replies" not in raw_comment and raw_comment["text"].startswith("Where is it?")
    mention = found["17900000000000099"]
    assert (mention["direction"], mention["author"]) == ("inbound", "happy.customer")
    dm = found["aWdfZAG06MTpJR01lc3NhZA2U6MTc4NDE0"]
    assert (dm["kind"], dm["direction"], dm["conversation_id"]) == (
        "direct_message",
        "inbound",
        CONV,
    )
    conversations = next(c.request.url for c in responses.calls if "conversations" in c.request.url)
    assert "platform=instagram" in conversations
    media_calls = [c.request.url for c in responses.calls if f"{IG}/media" in c.request.url]
    assert "after=QVFIUjBn" in media_calls[1]
    assert cursor is not None and TOKEN not in cursor


@responses.activate
def test_caption_edit_and_deleted_media_on_the_next_sweep() -> None:
    clock = FakeClock()
    c = connector(clock)
    script_sweep()
    _, cursor, _ = drain(fetch(c))
    responses.reset()
    clock.t += 3600
    page = fixture_json(HERE, "media_page1.json")
    page["data"][0]["caption"] = "New branch opening 🎉 #acme (edited)"
    page["paging"] = {"cursors": {"before": "x", "after": "y"}}
    add("GET", IG, fx("user.json"))
    add("GET", f"{IG}/media", json.dumps(page).encode())
    add("GET", f"{IG}/tags", fx("empty.json"))
    add("GET", "me", fx("me_page.json"))
    add("GET", "104857600000001/conversations", fx("empty.json"))
    add("GET", f"{M2}/comments", fx("empty.json"))
    add("GET", M1, fx("error_not_found.json"), status=400)
    items, _, _ = drain(fetch(c), cursor)
    found = by_id(items)
    assert found[M2]["kind"] == "edit"
    assert found[M1]["kind"] == "deletion" and raw_of(found[M1]) == fx("error_not_found.json")


@responses.activate
def test_rate_limit_code_4_is_waited_out() -> None:
    clock = FakeClock()
    add("GET", IG, fx("error_app_rate_limit.json"), status=403)
    add("GET", IG, fx("user.json"))
    profile = connector(clock).fetch_profile(tokens=TOKENS, handle="acmebank")
    assert profile.bio.startswith("Banking") and clock.sleeps and clock.sleeps[0] >= 60


@responses.activate
def test_app_removed_is_revoked() -> None:
    add("GET", IG, fx("error_app_removed.json"), status=400)
    with pytest.raises(AuthRevoked):
        connector().fetch_activity(tokens=TOKENS, handle="acmebank", cursor=None)


@responses.activate
def test_publish_needs_a_public_image_url() -> None:
    with pytest.raises(PermanentError):
        connector().publish(tokens=TOKENS, request=PublishRequest(text="text only"))
    image = Media(content=b"\xff\xd8jpeg", mime_type="image/jpeg", alt_text="Our branch")
    with pytest.raises(Unsupported):
        connector().publish(tokens=TOKENS, request=PublishRequest(text="x", media=(image,)))
    add("POST", f"{IG}/media", fx("container.json"))
    add("POST", f"{IG}/media_publish", fx("published.json"))
    add("GET", "17900000000000003", fx("permalink.json"))
    c = connector(media_url_for=lambda m: "https://cdn.acme.example/i/1.jpg")
    result = c.publish(tokens=TOKENS, request=PublishRequest(text="Opening!", media=(image,)))
    assert result.remote_id == "17900000000000003"
    assert result.url == "https://www.instagram.com/p/C7abcdEF003/"
    container = responses.calls[0].request.body
    assert "image_url=https%3A%2F%2Fcdn.acme.example%2Fi%2F1.jpg" in container
    assert "caption=Opening%21" in container
    publish = responses.calls[1].request.body
    assert "creation_id=17889000000000001" in publish


@responses.activate
def test_reply_to_comment_and_delete_comment_but_not_media() -> None:
    add("GET", "17850000000000011", fx("error_media_delete_unsupported_field.json"), status=400)
    add("POST", "17850000000000011/replies", b'{"id":"17850000000000013"}')
    result = connector().publish(
        tokens=TOKENS,
        request=PublishRequest(text="Thanks!", reply_to_remote_id="17850000000000011"),
    )
    assert result.remote_id == "17850000000000013"
    add("DELETE", "17850000000000011", b'{"success":true}')
    connector().delete(tokens=TOKENS, remote_id="17850000000000011")
    add("GET", M1, fx("media_type.json"))
    with pytest.raises(Unsupported):
        connector().delete(tokens=TOKENS, remote_id=M1)
    assert not [c for c in responses.calls if c.request.method == "DELETE" and M1 in c.request.url]


@responses.activate
def test_truncated_media_page_is_kept_for_quarantine() -> None:
    truncated = fx("media_page1.json")[:120]
    add("GET", IG, fx("user.json"))
    add("GET", f"{IG}/media", truncated)
    add("GET", f"{IG}/tags", b"<html><body>Service Unavailable</body></html>")
    add("GET", "me", fx("me_page.json"))
    add("GET", "104857600000001/conversations", fx("empty.json"))
    items, _, _ = drain(fetch(connector()))
    kept = [i for i in items if isinstance(i, bytes)]
    assert truncated in kept and b"<html><body>Service Unavailable</body></html>" in kept


@pytest.mark.django_db
@responses.activate
def test_items_land_in_the_archive_once(world: Any) -> None:
    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.archive.actions import ingest_batch

    account = SocialAccount.objects.create(
        network=Network.INSTAGRAM,
        handle="acmebank",
        kind=AccountKind.CORPORATE,
        owner=world.people[next(iter(world.people))],
    )
    script_sweep()
    from vetline.connectors.media import without_media

    drained, _, _ = drain(fetch(connector()))
    items = [without_media(i) for i in drained]  # media: see test_media.py
    first = ingest_batch(items=items, account=account, source="api:instagram", actor=None)
    assert first.quarantined == 0 and first.ingested == len(items)
    second = ingest_batch(items=items, account=account, source="api:instagram", actor=None)
    assert second.ingested == 0 and second.duplicates == len(items)
