"""Mastodon API entities to archive items (plain Python, no ORM).

Followed: the Mastodon API documentation at docs.joinmastodon.org (Status, Account,
Notification, StatusEdit entities), as of Mastodon 4.3 / 4.4; Pleroma/Akkoma, GoToSocial and
Takahē return the same entities with extra members, which are kept in the raw payload.

The mapping is lenient on purpose: a value of the wrong shape is passed on as received, so the
archive's validation quarantines the item with a precise reason (a missing id, a time without a
zone...). Nothing is dropped here; the raw payload is always the exact bytes the server sent.
"""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from typing import Any

from vetline.connectors.base import MediaRef, raw_item
from vetline.connectors.media import avatar_media, with_media
from vetline.connectors.requests_session import RawElement

#: Account members that change with every post or follow: left out of profile snapshots, or
#: every capture would archive a "new" profile.
VOLATILE_ACCOUNT_MEMBERS = frozenset(
    {"followers_count", "following_count", "statuses_count", "last_status_at", "source", "role"}
)


class _Text(HTMLParser):
    """Status content is HTML; the archive's text is what a reader sees."""

    _BREAKS = frozenset({"br", "p", "li", "blockquote", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BREAKS and tag != "br":
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: Any) -> Any:
    """Text of a status's HTML content. A non-string is returned as is (the archive rejects
    it with its type)."""
    if not isinstance(html, str):
        return html
    parser = _Text()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts).strip()


def instance_of(acct: str, default_host: str) -> str:
    """``alice`` (local) or ``alice@example.social`` (remote) to a full handle."""
    return acct if "@" in acct else f"{acct}@{default_host}"


def _acct(account: Any, host: str) -> Any:
    if not isinstance(account, dict):
        return None
    acct = account.get("acct")
    return instance_of(acct, host) if isinstance(acct, str) and acct else acct


def status_item(
    element: RawElement,
    status: Any,
    *,
    owner: str,
    host: str,
    origin: str = "status",
) -> dict[str, Any] | bytes:
    """A Status (or a Notification of type mention, whose ``status`` is given) as an item.

    ``element`` holds the exact bytes of the entity the server sent (the Status itself, or the
    Notification around it): that is the raw payload."""
    if not element.valid_utf8 or not isinstance(status, dict):
        return element.raw
    author = _acct(status.get("account"), host)
    outbound = isinstance(author, str) and author.lower() == owner.lower()
    visibility = status.get("visibility")
    in_reply_to = status.get("in_reply_to_id")
    if visibility == "direct":
        kind = "direct_message"
    elif status.get("reblog"):
        kind = "share"
    elif in_reply_to:
        kind = "reply"
    else:
        kind = "post"
    mentions = status.get("mentions")
    participants: list[Any] = []
    if isinstance(mentions, list):
        participants = [_acct(m, host) for m in mentions if isinstance(m, dict)]
    item: dict[str, Any] = {
        "remote_id": status.get("id"),
        "kind": kind,
        "direction": "outbound" if outbound else "inbound",
        "author": author,
        "text": _status_text(status),
        "network_timestamp": status.get("created_at"),
    }
    if participants or kind == "direct_message":
        everyone = sorted({p for p in participants if isinstance(p, str)} | {owner})
        if isinstance(author, str):
            everyone = sorted(set(everyone) | {author})
        item["participants"] = everyone
        if kind == "direct_message":
            # Mastodon's Status has no conversation id (Pleroma's does, under "pleroma"):
            # a direct conversation is the set of its participants.
            item["conversation_id"] = _conversation_id(status, everyone)
    if in_reply_to:
        item["parent_remote_id"] = in_reply_to
        item["thread_id"] = in_reply_to
    return with_media(raw_item(element.raw, **item), attachment_media(status))


def attachment_media(entity: Any) -> list[MediaRef]:
    """The media of a Status or StatusEdit (its ``media_attachments``, and those of the status
    it boosts): the server's copy (``url``), or the original (``remote_url``) when the server
    has not cached a remote one; ``description`` is the alt text. MediaAttachment gives a
    ``type`` (image, gifv, video, audio), not a MIME type; both stay in the raw payload."""
    found: list[MediaRef] = []
    seen: set[str] = set()
    entities = [entity]
    if isinstance(entity, dict) and isinstance(entity.get("reblog"), dict):
        entities.append(entity["reblog"])
    for source in entities:
        attachments = source.get("media_attachments") if isinstance(source, dict) else None
        for media in attachments if isinstance(attachments, list) else []:
            if not isinstance(media, dict):
                continue
            url = media.get("url") or media.get("remote_url")
            if not isinstance(url, str) or not url or url in seen:
                continue
            seen.add(url)
            alt = media.get("description")
            found.append(MediaRef(ref=url, alt_text=alt if isinstance(alt, str) else ""))
    return found


def _status_text(status: dict[str, Any]) -> Any:
    text = html_to_text(status.get("content") or "")
    spoiler = status.get("spoiler_text")
    if isinstance(spoiler, str) and spoiler and isinstance(text, str):
        return f"[{spoiler}]\n{text}"
    return text


def _conversation_id(status: dict[str, Any], participants: list[str]) -> str:
    pleroma = status.get("pleroma")
    if isinstance(pleroma, dict) and pleroma.get("conversation_id") is not None:
        return f"pleroma:{pleroma['conversation_id']}"
    return "dm:" + "|".join(participants)


def edit_item(
    element: RawElement,
    edit: Any,
    *,
    status_id: str,
    version: int | None,
    owner: str,
    host: str,
) -> dict[str, Any] | bytes:
    """A StatusEdit (one entry of a status's edit history) as an ``edit`` item of the status.

    ``version`` is the entry's position in the history plus one (the original is the post,
    version 1). None lets the archive assign the next version (used when the server has no
    history and the edited Status itself is all we have)."""
    if not element.valid_utf8 or not isinstance(edit, dict):
        return element.raw
    author = _acct(edit.get("account"), host)
    item: dict[str, Any] = {
        "remote_id": status_id,
        "kind": "edit",
        "direction": "outbound"
        if isinstance(author, str) and author.lower() == owner.lower()
        else "inbound",
        "author": author,
        "text": _status_text(edit),
        "network_timestamp": edit.get("edited_at") or edit.get("created_at"),
        "parent_remote_id": status_id,
    }
    if version is not None:
        item["version"] = version
    return with_media(raw_item(element.raw, **item), attachment_media(edit))


def profile_snapshot(account: dict[str, Any], *, handle: str, captured_at: str) -> dict[str, Any]:
    """The account's profile as a snapshot item. Its remote id is a digest of the stable
    members, so an unchanged profile is a duplicate and any change (name, note, fields, avatar)
    is a new snapshot. Its medium is the avatar: ``avatar`` (the server's copy, possibly
    animated), ``avatar_static`` only when that is all the server gives; none for the server's
    ``missing.png`` placeholder. The header is not captured."""
    stable = {k: v for k, v in account.items() if k not in VOLATILE_ACCOUNT_MEMBERS}
    note = account.get("note") or ""
    body = json.dumps(stable, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(body.encode("utf-8", errors="surrogateescape")).hexdigest()[:16]
    item: dict[str, Any] = {
        "remote_id": f"profile:{account.get('id')}:{digest}",
        "kind": "profile_snapshot",
        "direction": "outbound",
        "author": handle,
        "text": f"{account.get('display_name') or ''}\n{html_to_text(note)}".strip(),
        "network_timestamp": captured_at,
        "raw": body,
    }
    return with_media(item, avatar_media(account.get("avatar") or account.get("avatar_static")))
