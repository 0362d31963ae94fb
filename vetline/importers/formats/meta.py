"""Facebook and Instagram "Download Your Information" exports, JSON format (a zip or its
unpacked folder). Meta's JSON writes every non-ASCII character as its UTF-8 *bytes*, each
escaped as a code point (``"é"`` is ``"\\u00c3\\u00a9"``); :func:`fix_mojibake` repairs the
strings that are mapped. The raw payload keeps the bytes exactly as exported.

Facebook: ``…/posts/your_posts*.json``, ``…/comments_and_reactions/comments.json`` (or
``comments/comments.json``), ``…/messages/<folder>/<thread>/message_N.json``,
``…/profile_information/profile_information.json``.
Instagram: ``…/content/posts_N.json`` (or ``media/posts_N.json``), ``…/comments/*comments*.json``,
``…/messages/inbox/<thread>/message_N.json``, ``…/personal_information/personal_information.json``.
Paths are matched by their tail, so the 2024 ``your_facebook_activity/`` and
``your_instagram_activity/`` prefixes and the older layouts both work.
"""

from __future__ import annotations

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
    fix_mojibake,
    iso_from_epoch,
    json_entries,
    parent_dir,
    read_member_safely,
    short_hash,
    unreadable,
)
from vetline.importers.jsonstream import JsonStream, StreamError, Truncated

FB_POSTS: Final = re.compile(r"(?:^|/)posts/your_posts[^/]*\.json$")
FB_COMMENTS: Final = re.compile(r"(?:^|/)comments(?:_and_reactions)?/comments\.json$")
FB_PROFILE: Final = re.compile(r"(?:^|/)profile_information/profile_information\.json$")
IG_POSTS: Final = re.compile(r"(?:^|/)(?:content|media)/posts_\d+\.json$")
IG_COMMENTS: Final = re.compile(r"(?:^|/)comments/[^/]*comments[^/]*\.json$")
IG_PROFILE: Final = re.compile(r"(?:^|/)personal_information/personal_information\.json$")
MESSAGES: Final = re.compile(r"(?:^|/)messages/[a-z_0-9]+/([^/]+)/message_\d+\.json$")


def _text_of_data(data: Any, key: str) -> str:
    """Facebook keeps a post's text in ``data: [{"post": "…"}, {"update_timestamp": …}]``."""
    if isinstance(data, list):
        for part in data:
            if isinstance(part, dict) and isinstance(part.get(key), str):
                return str(part[key])
    return ""


def _owner_from_profile(parsed: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(parsed, dict):
        prof = parsed.get("profile_v2") or parsed.get("profile")
        if isinstance(prof, dict):
            name = prof.get("name")
            if isinstance(name, dict) and isinstance(name.get("full_name"), str):
                names.add(name["full_name"])
        users = parsed.get("profile_user")
        if isinstance(users, list):
            for user in users:
                smd = user.get("string_map_data") if isinstance(user, dict) else None
                if isinstance(smd, dict):
                    for field in ("Name", "Username"):
                        value = smd.get(field)
                        if isinstance(value, dict) and isinstance(value.get("value"), str):
                            names.add(value["value"])
    return {n for n in names if n}


def read_facebook(source: Source, owner: Owner, report: ReadReport) -> Iterator[Entry]:
    yield from _read(source, owner, report, network="facebook")


def read_instagram(source: Source, owner: Owner, report: ReadReport) -> Iterator[Entry]:
    yield from _read(source, owner, report, network="instagram")


def members(source: Source, network: str) -> list[str]:
    patterns = (
        (FB_PROFILE, FB_POSTS, FB_COMMENTS, MESSAGES)
        if network == "facebook"
        else (IG_PROFILE, IG_POSTS, IG_COMMENTS, MESSAGES)
    )
    names: list[str] = []
    for p in patterns:
        names += source.find(p)
    return names


def _read(source: Source, owner: Owner, report: ReadReport, *, network: str) -> Iterator[Entry]:
    prefix = "fb" if network == "facebook" else "ig"
    names = {owner.handle.lstrip("@"), owner.display_name} - {""}
    profile_re = FB_PROFILE if network == "facebook" else IG_PROFILE

    def whole_object(member: str) -> Iterator[Entry]:
        """Profile files: one small object; a snapshot of it, and the owner's name."""

        def run(fh: BinaryIO) -> Iterator[Entry]:
            stream = JsonStream(fh)
            raw = stream.read_value()
            try:
                parsed = fix_mojibake(json.loads(raw))
            except ValueError:
                yield unreadable(member, raw, "not valid JSON")
                return
            found = _owner_from_profile(parsed)
            names.update(found)
            report.owner_names.update(found)
            yield Entry(
                member,
                raw,
                {
                    "remote_id": f"{prefix}-profile:{short_hash(raw)}",
                    "kind": "profile_snapshot",
                    "direction": "outbound",
                    "author": owner.handle,
                    "text": "\n".join(sorted(found)),
                    "raw_payload_b64": b64(raw),
                },
            )

        return read_member_safely(source, member, report, run)

    def array_member(
        member: str, wrapper_keys: tuple[str, ...], body: Callable[[str, bytes, Any], Entry]
    ) -> Iterator[Entry]:
        """Top-level array, or an object whose array sits under one of ``wrapper_keys``."""

        def run(fh: BinaryIO) -> Iterator[Entry]:
            stream = JsonStream(fh)
            if stream.peek() == ord("{"):
                stream.begin_object()
                while (key := stream.next_key()) is not None:
                    if key in wrapper_keys and stream.peek() == ord("["):
                        yield from entries(stream)
                    else:
                        stream.skip_value()
            else:
                yield from entries(stream)

        def entries(stream: JsonStream) -> Iterator[Entry]:
            for where, raw, parsed in json_entries(stream, member, report):
                if parsed is None:
                    yield unreadable(where, raw, "not valid JSON")
                elif not isinstance(parsed, dict):
                    yield unreadable(where, raw, "an entry is not a JSON object")
                else:
                    yield body(where, raw, fix_mojibake(parsed))

        return read_member_safely(source, member, report, run)

    def fb_post(where: str, raw: bytes, post: dict[str, Any]) -> Entry:
        text = _text_of_data(post.get("data"), "post")
        ts = post.get("timestamp")
        return Entry(
            where,
            raw,
            {
                "remote_id": f"fb-post:{short_hash(ts, text, post.get('attachments'))}",
                "kind": "post",
                "direction": "outbound",
                "author": owner.handle,
                "text": text or (post.get("title") if isinstance(post.get("title"), str) else ""),
                "network_timestamp": iso_from_epoch(ts),
                "raw_payload_b64": b64(raw),
            },
        )

    def fb_comment(where: str, raw: bytes, entry: dict[str, Any]) -> Entry:
        comment: Any = {}
        data = entry.get("data")
        if isinstance(data, list):
            for part in data:
                if isinstance(part, dict) and isinstance(part.get("comment"), dict):
                    comment = part["comment"]
        text = comment.get("comment", "") if isinstance(comment, dict) else ""
        ts = comment.get("timestamp", entry.get("timestamp")) if comment else entry.get("timestamp")
        return Entry(
            where,
            raw,
            {
                "remote_id": f"fb-comment:{short_hash(ts, text, entry.get('title'))}",
                "kind": "comment",
                "direction": "outbound",
                "author": owner.handle,
                "text": text,
                "network_timestamp": iso_from_epoch(ts),
                "raw_payload_b64": b64(raw),
            },
        )

    def ig_post(where: str, raw: bytes, post: dict[str, Any]) -> Entry:
        media_value = post.get("media")
        media: list[Any] = media_value if isinstance(media_value, list) else []
        first = media[0] if media and isinstance(media[0], dict) else {}
        text = post.get("title") or first.get("title") or ""
        ts = post.get("creation_timestamp", first.get("creation_timestamp"))
        uris = [m.get("uri") for m in media if isinstance(m, dict)]
        return Entry(
            where,
            raw,
            {
                "remote_id": f"ig-post:{short_hash(ts, uris, text)}",
                "kind": "post",
                "direction": "outbound",
                "author": owner.handle,
                "text": text,
                "network_timestamp": iso_from_epoch(ts),
                "raw_payload_b64": b64(raw),
            },
        )

    def ig_comment(where: str, raw: bytes, entry: dict[str, Any]) -> Entry:
        smd = entry.get("string_map_data") if isinstance(entry.get("string_map_data"), dict) else {}

        def value(key: str, field: str = "value") -> Any:
            cell = smd.get(key) if isinstance(smd, dict) else None
            return cell.get(field) if isinstance(cell, dict) else None

        text = value("Comment") or ""
        ts = value("Time", "timestamp")
        media_owner = value("Media Owner")
        return Entry(
            where,
            raw,
            {
                "remote_id": f"ig-comment:{short_hash(ts, text, media_owner)}",
                "kind": "comment",
                "direction": "outbound",
                "author": owner.handle,
                "text": text,
                "participants": [media_owner] if isinstance(media_owner, str) else [],
                "network_timestamp": iso_from_epoch(ts),
                "raw_payload_b64": b64(raw),
            },
        )

    for member in source.find(profile_re):
        yield from whole_object(member)
    if network == "facebook":
        for member in source.find(FB_POSTS):
            yield from array_member(member, (), fb_post)
        for member in source.find(FB_COMMENTS):
            yield from array_member(member, ("comments_v2", "comments"), fb_comment)
    else:
        for member in source.find(IG_POSTS):
            yield from array_member(member, ("ig_posts",), ig_post)
        for member in source.find(IG_COMMENTS):
            yield from array_member(
                member,
                ("comments_media_comments", "comments_reels_comments", "comments"),
                ig_comment,
            )
    for member in source.find(MESSAGES):
        yield from read_member_safely(
            source,
            member,
            report,
            lambda fh, m=member: _thread(fh, m, prefix, names, owner),  # type: ignore[misc]
        )


def _thread(
    fh: BinaryIO, member: str, prefix: str, names: set[str], owner: Owner
) -> Iterator[Entry]:
    """``message_N.json``: ``{"participants": […], "messages": […], "title": …}``, messages
    streamed one at a time. The thread's folder name is the conversation id."""
    thread = parent_dir(member)
    stream = JsonStream(fh)
    participants: list[str] = []
    number = 0
    try:
        stream.begin_object()
        while (key := stream.next_key()) is not None:
            if key == "participants":
                try:
                    value = fix_mojibake(json.loads(stream.read_value()))
                except ValueError:
                    value = []
                if isinstance(value, list):
                    participants = [
                        p["name"]
                        for p in value
                        if isinstance(p, dict) and isinstance(p.get("name"), str)
                    ]
            elif key == "messages" and stream.peek() == ord("["):
                stream.begin_array()
                while stream.next_element():
                    number += 1
                    raw = stream.read_value()
                    yield _message(f"{member} #{number}", raw, thread, participants, prefix, names)
            else:
                stream.skip_value()
    except Truncated as exc:
        if exc.partial:
            yield unreadable(f"{member} #{number + 1} (truncated)", exc.partial, "truncated")
        raise
    except StreamError:
        raise


def _message(
    where: str, raw: bytes, thread: str, participants: list[str], prefix: str, names: set[str]
) -> Entry:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return unreadable(where, raw, "not valid JSON")
    if not isinstance(parsed, dict):
        return unreadable(where, raw, "a message is not a JSON object")
    message = fix_mojibake(parsed)
    sender = message.get("sender_name")
    ts = message.get("timestamp_ms")
    text = message.get("content", "")
    if text == "" and isinstance(message.get("share"), dict):
        text = message["share"].get("link", "")
    outbound = isinstance(sender, str) and sender in names
    return Entry(
        where,
        raw,
        {
            "remote_id": f"{prefix}-dm:{thread}:{ts}:{short_hash(sender, text)}",
            "kind": "direct_message",
            "direction": "outbound" if outbound else "inbound",
            "author": sender if isinstance(sender, str) else "",
            "participants": participants,
            "conversation_id": thread,
            "thread_id": thread,
            "text": text,
            "network_timestamp": iso_from_epoch(ts, millis=True),
            "raw_payload_b64": b64(raw),
        },
    )
