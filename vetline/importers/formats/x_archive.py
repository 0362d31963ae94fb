"""The X (Twitter) archive zip ("Download an archive of your data").

Files read (under ``data/``; each is ``window.YTD.<name>.partN = [ … ]``, a JSON array after a
JavaScript assignment, and large ones are split into ``tweets.js``, ``tweets-part1.js``, …):
``account.js`` (who the archive belongs to), ``profile.js``, ``tweets.js`` (``tweet.js`` in
archives before 2020), ``deleted-tweets.js``, ``direct-messages.js`` and
``direct-messages-group.js``; media files in ``data/tweets_media/<tweet id>-<name>``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Final

from vetline.importers.formats.base import (
    Entry,
    Owner,
    ReadReport,
    Source,
    b64,
    json_entries,
    read_member_safely,
    short_hash,
    unreadable,
)
from vetline.importers.jsonstream import JsonStream, StreamError, Truncated

NAME: Final = "x-archive"
NETWORK: Final = "x"

_MEMBER = r"(?:^|/)data/{}(?:-part\d+)?\.js$"
ACCOUNT: Final = re.compile(_MEMBER.format("account"))
PROFILE: Final = re.compile(_MEMBER.format("profile"))
TWEETS: Final = re.compile(_MEMBER.format("tweets?"))
DELETED: Final = re.compile(_MEMBER.format("deleted-tweets?"))
DMS: Final = re.compile(_MEMBER.format("direct-messages(?:-group)?"))
MEDIA: Final = re.compile(r"(?:^|/)data/(?:tweets?|direct_messages?)_media/(\d+)-[^/]+$")

StoreMedia = Callable[[str], str | None]


def members(source: Source) -> list[str]:
    names: list[str] = []
    for pattern in (ACCOUNT, PROFILE, TWEETS, DELETED, DMS):
        names += source.find(pattern)
    return names


def _created_at(value: Any) -> Any:
    """``"Wed Oct 10 20:19:24 +0000 2018"`` (tweets) to ISO 8601; anything else as is."""
    if isinstance(value, str):
        try:
            return dt.datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").isoformat()
        except ValueError:
            return value
    return value


def _unwrap(parsed: Any, key: str) -> Any:
    """Entries are ``{"tweet": {…}}`` since 2019, the bare object before."""
    if isinstance(parsed, dict) and isinstance(parsed.get(key), dict) and len(parsed) == 1:
        return parsed[key]
    return parsed


def read(
    source: Source,
    owner: Owner,
    report: ReadReport,
    *,
    store_media: StoreMedia | None = None,
) -> Iterator[Entry]:
    media_by_id: dict[str, list[str]] = {}
    for name in source.names():
        m = MEDIA.search(name)
        if m:
            media_by_id.setdefault(m.group(1), []).append(name)
    state = {"account_id": owner.network_id, "username": owner.handle.lstrip("@")}

    def attachments(tweet_id: Any) -> list[str]:
        if store_media is None or not isinstance(tweet_id, str):
            return []
        found = [store_media(n) for n in media_by_id.get(tweet_id, [])]
        return [d for d in found if d]

    def json_member(member: str, body: Callable[[str, bytes, Any], Iterator[Entry]]) -> Any:
        def run(fh: BinaryIO) -> Iterator[Entry]:
            stream = JsonStream(fh)
            stream.skip_prefix()
            for where, raw, parsed in json_entries(stream, member, report):
                if parsed is None:
                    yield unreadable(where, raw, "not valid JSON")
                else:
                    yield from body(where, raw, parsed)

        return read_member_safely(source, member, report, run)

    def account_entry(where: str, raw: bytes, parsed: Any) -> Iterator[Entry]:
        acct = _unwrap(parsed, "account")
        if isinstance(acct, dict):
            if isinstance(acct.get("accountId"), str):
                state["account_id"] = acct["accountId"]
            if isinstance(acct.get("username"), str):
                state["username"] = acct["username"]
                report.owner_names.add(acct["username"])
        report.skip("account.js (used to tell sent from received)")
        return iter(())

    def author() -> str:
        return "@" + state["username"] if state["username"] else owner.handle

    def profile_entry(where: str, raw: bytes, parsed: Any) -> Iterator[Entry]:
        prof = _unwrap(parsed, "profile")
        desc = prof.get("description") if isinstance(prof, dict) else None
        bio = desc.get("bio") if isinstance(desc, dict) else None
        yield Entry(
            where,
            raw,
            {
                "remote_id": f"x-profile:{state['account_id'] or author()}:{short_hash(raw)}",
                "kind": "profile_snapshot",
                "direction": "outbound",
                "author": author(),
                "text": bio if bio is not None else "",
                "raw_payload_b64": b64(raw),
            },
        )

    def tweet_item(tweet: dict[str, Any], raw: bytes) -> dict[str, Any]:
        tid = tweet.get("id_str", tweet.get("id"))
        text = tweet.get("full_text", tweet.get("text", ""))
        reply_to = tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id")
        entities = tweet.get("entities") if isinstance(tweet.get("entities"), dict) else {}
        mentions = entities.get("user_mentions") if isinstance(entities, dict) else None
        participants = [
            "@" + m["screen_name"]
            for m in (mentions if isinstance(mentions, list) else [])
            if isinstance(m, dict) and isinstance(m.get("screen_name"), str)
        ]
        if isinstance(text, str) and text.startswith("RT @"):
            kind = "share"
        elif reply_to:
            kind = "reply"
        else:
            kind = "post"
        item: dict[str, Any] = {
            "remote_id": tid,
            "kind": kind,
            "direction": "outbound",
            "author": author(),
            "text": text,
            "participants": participants,
            "network_timestamp": _created_at(tweet.get("created_at")),
            "attachments": attachments(tid),
            "raw_payload_b64": b64(raw),
        }
        if reply_to:
            item["parent_remote_id"] = reply_to
        return item

    def tweet_entry(where: str, raw: bytes, parsed: Any) -> Iterator[Entry]:
        tweet = _unwrap(parsed, "tweet")
        if not isinstance(tweet, dict):
            yield unreadable(where, raw, "a tweet entry is not a JSON object")
            return
        yield Entry(where, raw, tweet_item(tweet, raw))

    def deleted_entry(where: str, raw: bytes, parsed: Any) -> Iterator[Entry]:
        tweet = _unwrap(parsed, "tweet")
        if not isinstance(tweet, dict):
            yield unreadable(where, raw, "a deleted-tweet entry is not a JSON object")
            return
        yield Entry(where, raw, tweet_item(tweet, raw))
        yield Entry(
            where + " (deletion)",
            raw,
            {
                "remote_id": tweet.get("id_str", tweet.get("id")),
                "kind": "deletion",
                "direction": "outbound",
                "author": author(),
                "text": "",
                "network_timestamp": tweet.get("deleted_at"),
                "raw_payload_b64": b64(raw),
            },
        )

    for member in source.find(ACCOUNT):
        yield from json_member(member, account_entry)
    for member in source.find(PROFILE):
        yield from json_member(member, profile_entry)
    for member in source.find(TWEETS):
        yield from json_member(member, tweet_entry)
    for member in source.find(DELETED):
        yield from json_member(member, deleted_entry)
    for member in source.find(DMS):
        yield from read_member_safely(
            source,
            member,
            report,
            lambda fh, m=member: _direct_messages(fh, m, report, state, author),  # type: ignore[misc]
        )


def _direct_messages(
    fh: BinaryIO,
    member: str,
    report: ReadReport,
    state: dict[str, str],
    author: Callable[[], str],
) -> Iterator[Entry]:
    """``[{"dmConversation": {"conversationId": …, "messages": [{"messageCreate": {…}}]}}]``,
    streamed message by message (one conversation can hold years of messages)."""
    stream = JsonStream(fh)
    stream.skip_prefix()
    conversation_number = 0
    message_number = 0
    try:
        stream.begin_array()
        while stream.next_element():
            conversation_number += 1
            if stream.peek() != ord("{"):
                raw = stream.read_value()
                yield unreadable(
                    f"{member} conversation #{conversation_number}", raw, "not a JSON object"
                )
                continue
            stream.begin_object()
            while (key := stream.next_key()) is not None:
                if key != "dmConversation" or stream.peek() != ord("{"):
                    stream.skip_value()
                    continue
                stream.begin_object()
                conversation_id: Any = None
                while (inner := stream.next_key()) is not None:
                    if inner == "conversationId":
                        try:
                            conversation_id = json.loads(stream.read_value())
                        except ValueError:
                            conversation_id = None
                    elif inner == "messages" and stream.peek() == ord("["):
                        label = f"{member} conversation #{conversation_number} message"
                        stream.begin_array()
                        while stream.next_element():
                            message_number += 1
                            raw = stream.read_value()
                            where = f"{label} #{message_number}"
                            yield from _dm_entry(where, raw, conversation_id, state, author, report)
                    else:
                        stream.skip_value()
    except Truncated as exc:
        report.stops.append(
            f"{member}: stopped at byte {exc.offset:,} (conversation #{conversation_number}): "
            f"{exc.message}; {message_number:,} messages were read before it"
        )
        if exc.partial:
            yield unreadable(f"{member} (truncated)", exc.partial, "truncated")
    except StreamError as exc:
        report.stops.append(f"{member}: stopped at byte {exc.offset:,}: {exc.message}")


def _dm_entry(
    where: str,
    raw: bytes,
    conversation_id: Any,
    state: dict[str, str],
    author: Callable[[], str],
    report: ReadReport,
) -> Iterator[Entry]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        yield unreadable(where, raw, "not valid JSON")
        return
    if not isinstance(parsed, dict):
        yield unreadable(where, raw, "a message is not a JSON object")
        return
    message = parsed.get("messageCreate")
    if not isinstance(message, dict):
        # joinConversation, participantsLeave, conversationNameUpdate…: not messages
        report.skip("X direct-message conversation events (joins, leaves, renames)")
        return
    sender = message.get("senderId")
    recipient = message.get("recipientId")
    outbound = bool(state["account_id"]) and sender == state["account_id"]
    participants = [p for p in (sender, recipient) if isinstance(p, str)]
    item: dict[str, Any] = {
        "remote_id": message.get("id"),
        "kind": "direct_message",
        "direction": "outbound" if outbound else "inbound",
        "author": author() if outbound else (sender if isinstance(sender, str) else ""),
        "participants": participants,
        "conversation_id": conversation_id,
        "thread_id": conversation_id,
        "text": message.get("text", ""),
        "network_timestamp": message.get("createdAt"),
        "raw_payload_b64": b64(raw),
    }
    yield Entry(where, raw, item)
