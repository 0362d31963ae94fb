"""Mastodon account archive ("Request your archive": a .tar.gz, or a zip or folder of it).

``outbox.json``: an ActivityStreams 2.0 ``OrderedCollection`` whose ``orderedItems`` are
``Create`` (a ``Note``: own post, reply or direct message) and ``Announce`` (a boost) activities;
``actor.json``: the ``Person`` (profile snapshot); ``media_attachments/``: the files referenced
by ``attachment[].url``. GoToSocial, Akkoma and Pleroma exports follow the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Final

from vetline.importers.formats.base import (
    Entry,
    Owner,
    ReadReport,
    Source,
    b64,
    html_to_text,
    json_entries,
    read_member_safely,
    short_hash,
    unreadable,
)
from vetline.importers.jsonstream import JsonStream

OUTBOX: Final = re.compile(r"(?:^|/)outbox\.json$")
ACTOR: Final = re.compile(r"(?:^|/)actor\.json$")
PUBLIC: Final = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_ALIASES: Final = frozenset({PUBLIC, "as:Public", "Public"})

StoreMedia = Callable[[str], str | None]


def members(source: Source) -> list[str]:
    return [*source.find(ACTOR), *source.find(OUTBOX)]


def _addresses(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def read(
    source: Source, owner: Owner, report: ReadReport, *, store_media: StoreMedia | None = None
) -> Iterator[Entry]:
    media_names = {
        n.split("media_attachments/", 1)[1]: n for n in source.names() if "media_attachments/" in n
    }
    actor_id = {"id": owner.network_id}

    def attachments(note: dict[str, Any]) -> list[str]:
        found: list[str] = []
        if store_media is None or not isinstance(note.get("attachment"), list):
            return found
        for att in note["attachment"]:
            url = att.get("url") if isinstance(att, dict) else None
            if isinstance(url, str) and "media_attachments/" in url:
                name = media_names.get(url.split("media_attachments/", 1)[1])
                digest = store_media(name) if name else None
                if digest:
                    found.append(digest)
        return found

    def actor_member(member: str) -> Iterator[Entry]:
        def run(fh: BinaryIO) -> Iterator[Entry]:
            import json

            raw = JsonStream(fh).read_value()
            try:
                actor = json.loads(raw)
            except ValueError:
                yield unreadable(member, raw, "not valid JSON")
                return
            if not isinstance(actor, dict):
                yield unreadable(member, raw, "actor.json is not a JSON object")
                return
            if isinstance(actor.get("id"), str):
                actor_id["id"] = actor["id"]
            for key in ("preferredUsername", "name"):
                if isinstance(actor.get(key), str) and actor[key]:
                    report.owner_names.add(actor[key])
            yield Entry(
                member,
                raw,
                {
                    "remote_id": f"{actor_id['id'] or owner.handle}#profile-{short_hash(raw)}",
                    "kind": "profile_snapshot",
                    "direction": "outbound",
                    "author": owner.handle,
                    "text": "\n".join(
                        str(v)
                        for v in (actor.get("name"), html_to_text(actor.get("summary")))
                        if isinstance(v, str) and v
                    ),
                    "raw_payload_b64": b64(raw),
                },
            )

        return read_member_safely(source, member, report, run)

    def outbox_member(member: str) -> Iterator[Entry]:
        def run(fh: BinaryIO) -> Iterator[Entry]:
            stream = JsonStream(fh)
            stream.begin_object()
            while (key := stream.next_key()) is not None:
                if key != "orderedItems" or stream.peek() != ord("["):
                    stream.skip_value()
                    continue
                for where, raw, parsed in json_entries(stream, member, report):
                    if parsed is None:
                        yield unreadable(where, raw, "not valid JSON")
                    elif not isinstance(parsed, dict):
                        yield unreadable(where, raw, "an activity is not a JSON object")
                    else:
                        yield from activity(where, raw, parsed)

        return read_member_safely(source, member, report, run)

    def activity(where: str, raw: bytes, act: dict[str, Any]) -> Iterator[Entry]:
        kind = act.get("type")
        if kind == "Announce":
            target = act.get("object")
            yield Entry(
                where,
                raw,
                {
                    "remote_id": act.get("id"),
                    "kind": "share",
                    "direction": "outbound",
                    "author": owner.handle,
                    "text": target if isinstance(target, str) else "",
                    "parent_remote_id": target if isinstance(target, str) else None,
                    "network_timestamp": act.get("published"),
                    "raw_payload_b64": b64(raw),
                },
            )
            return
        if kind != "Create":
            report.skip(f"Mastodon {kind if isinstance(kind, str) else 'untyped'} activities")
            return
        note = act.get("object")
        if not isinstance(note, dict):
            yield unreadable(where, raw, "a Create activity without an object")
            return
        audience = _addresses(note.get("to", act.get("to"))) + _addresses(
            note.get("cc", act.get("cc"))
        )
        followers = f"{actor_id['id']}/followers" if actor_id["id"] else ""
        public = any(a in PUBLIC_ALIASES or (followers and a == followers) for a in audience)
        reply_to = note.get("inReplyTo")
        tags_value = note.get("tag")
        tags: list[Any] = tags_value if isinstance(tags_value, list) else []
        mentions = [
            t.get("name")
            for t in tags
            if isinstance(t, dict) and t.get("type") == "Mention" and isinstance(t.get("name"), str)
        ]
        item: dict[str, Any] = {
            "remote_id": note.get("id"),
            "kind": "direct_message" if not public else ("reply" if reply_to else "post"),
            "direction": "outbound",
            "author": owner.handle,
            "participants": mentions,
            "text": html_to_text(note.get("content", "")),
            "network_timestamp": note.get("published", act.get("published")),
            "attachments": attachments(note),
            "raw_payload_b64": b64(raw),
        }
        conversation = note.get("conversation") or note.get("context")
        if isinstance(conversation, str):
            item["conversation_id"] = conversation
            item["thread_id"] = conversation
        if reply_to is not None:
            item["parent_remote_id"] = reply_to
        if isinstance(note.get("summary"), str) and note["summary"]:
            item["text"] = f"{note['summary']}\n\n{item['text']}"  # content warning
        yield Entry(where, raw, item)

    for member in source.find(ACTOR):
        yield from actor_member(member)
    for member in source.find(OUTBOX):
        yield from outbox_member(member)
