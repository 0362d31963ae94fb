"""AT Protocol records as archive items (plain Python, no ORM, no network).

Every record reaches the archive in one form whatever path brought it (repository listing,
firehose, polling): its AT URI, its CID and its value in the AT Protocol JSON data model
(``{"$link": …}`` for links, ``{"$bytes": …}`` for bytes), serialised canonically (sorted
keys, no whitespace). So the same record version captured twice is byte-identical and the
archive recognises the duplicate; the CID lets anyone check the value against the repository.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import libipld

from vetline.connectors.base import MediaRef
from vetline.connectors.media import with_media

POST: Final = "app.bsky.feed.post"
REPOST: Final = "app.bsky.feed.repost"
PROFILE: Final = "app.bsky.actor.profile"
#: what capture reads from a repository (likes, follows and blocks are not communications)
CAPTURED_COLLECTIONS: Final = (POST, REPOST, PROFILE)

_CID_PREFIXES: Final = (b"\x01\x55\x12\x20", b"\x01\x71\x12\x20")  # raw / dag-cbor, sha2-256


@dataclass(frozen=True, slots=True)
class AtUri:
    repo: str
    collection: str
    rkey: str

    @classmethod
    def parse(cls, uri: str) -> AtUri:
        if not uri.startswith("at://"):
            raise ValueError(f"not an AT URI: {uri[:80]!r}")
        parts = uri[len("at://") :].split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"not a record AT URI: {uri[:80]!r}")
        return cls(parts[0], parts[1], parts[2])

    def __str__(self) -> str:
        return f"at://{self.repo}/{self.collection}/{self.rkey}"


def raw_cid(data: bytes) -> str:
    """The CID a PDS names a blob by: CIDv1, raw codec, SHA-256 of its bytes."""
    return str(libipld.encode_cid(_CID_PREFIXES[0] + hashlib.sha256(data).digest()))


def cbor_to_json(value: Any) -> Any:
    """A record decoded from DAG-CBOR (a firehose block) in the JSON data model.

    The decoder returns links as the CID's bytes: 36 bytes of a CIDv1 with a SHA-256 multihash,
    which is the only form of link AT Protocol allows. Any other bytes are ``$bytes``."""
    if isinstance(value, Mapping):
        return {str(k): cbor_to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cbor_to_json(v) for v in value]
    if isinstance(value, bytes):
        if len(value) == 36 and value[:4] in _CID_PREFIXES:
            return {"$link": libipld.encode_cid(value)}
        return {"$bytes": base64.b64encode(value).decode("ascii").rstrip("=")}
    return value


def canonical_payload(uri: str, cid: str, value: Any) -> bytes:
    return json.dumps(
        {"uri": uri, "cid": cid, "value": value},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8", errors="surrogatepass")


def deletion_payload(uri: str) -> bytes:
    return json.dumps({"uri": uri, "deleted": True}, separators=(",", ":")).encode()


def timestamp(value: Any) -> str | None:
    """``createdAt`` is written by the client: keep it when it is a zoned ISO 8601 time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(dt.UTC).isoformat()


def _uri_at(value: Any, *path: str) -> str:
    for key in path:
        if not isinstance(value, Mapping):
            return ""
        value = value.get(key)
    return value if isinstance(value, str) else ""


#: how deep a record is searched for blobs (embeds nest: recordWithMedia > media > images)
_BLOB_DEPTH: Final = 8


def blob_refs(value: Any, repo: str) -> list[MediaRef]:
    """The blobs a record refers to (images, video, a profile's avatar), in the
    order they appear, each once. A blob is ``{"$type": "blob", "ref": {"$link": CID},
    "mimeType": …, "size": …}`` (lexicon ``blob`` type); its alt text is the ``alt`` of the
    object holding it (``app.bsky.embed.images#image``, ``app.bsky.embed.video``). Blobs live
    in the repository of the record's author, ``repo``."""
    found: list[MediaRef] = []
    seen: set[str] = set()

    def walk(node: Any, depth: int) -> None:
        if depth > _BLOB_DEPTH:
            return
        if isinstance(node, list):
            for entry in node:
                walk(entry, depth + 1)
            return
        if not isinstance(node, Mapping):
            return
        alt = node.get("alt")
        for key, child in node.items():
            if isinstance(child, Mapping) and child.get("$type") == "blob":
                cid = _uri_at(child, "ref", "$link")
                if not cid or cid in seen:
                    continue
                seen.add(cid)
                size = child.get("size")
                mime = child.get("mimeType")
                found.append(
                    MediaRef(
                        ref=cid,
                        owner=repo,
                        mime_type=mime if isinstance(mime, str) else "",
                        alt_text=alt if isinstance(alt, str) and key != "thumb" else "",
                        size_bytes=size if isinstance(size, int) and size >= 0 else None,
                    )
                )
            else:
                walk(child, depth + 1)

    walk(value, 0)
    return found


def mentioned_dids(value: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    facets = value.get("facets")
    if not isinstance(facets, list):
        return found
    for facet in facets:
        features = facet.get("features") if isinstance(facet, Mapping) else None
        for feature in features if isinstance(features, list) else ():
            if (
                isinstance(feature, Mapping)
                and feature.get("$type") == "app.bsky.richtext.facet#mention"
                and isinstance(feature.get("did"), str)
            ):
                found.add(feature["did"])
    return found


def concerns(value: Mapping[str, Any], did: str) -> bool:
    """Whether someone else's post answers, quotes or mentions the account ``did``."""
    prefix = f"at://{did}/"
    refs = (
        _uri_at(value, "reply", "parent", "uri"),
        _uri_at(value, "reply", "root", "uri"),
        _uri_at(value, "embed", "record", "uri"),
        _uri_at(value, "embed", "record", "record", "uri"),
    )
    return any(r.startswith(prefix) for r in refs) or did in mentioned_dids(value)


def record_item(
    *,
    uri: str,
    cid: str,
    value: Any,
    owner_did: str,
    owner_handle: str,
    edit: bool = False,
    at: str | None = None,
) -> dict[str, Any]:
    """One record version as an archive item. ``edit``: a new version of a record already
    archived (the network replaced it with ``putRecord``). ``at``: when the network says the
    change happened (the firehose commit time), for edits."""
    parsed = AtUri.parse(uri)
    payload = canonical_payload(uri, cid, value)
    raw = base64.b64encode(payload).decode("ascii")
    body: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
    outbound = parsed.repo == owner_did
    author = owner_handle if outbound and owner_handle else parsed.repo
    if parsed.collection == PROFILE:
        # Only the avatar (not the banner): a profile snapshot's attachments are [avatar] or [].
        media = blob_refs({"avatar": body.get("avatar")}, parsed.repo)
        name = body.get("displayName")
        bio = body.get("description")
        profile = {
            # One record per profile version: an unchanged profile is a duplicate.
            "remote_id": f"{uri}#{cid}",
            "kind": "profile_snapshot",
            "direction": "outbound" if outbound else "inbound",
            "author": author,
            "text": "\n".join(s for s in (name, bio) if isinstance(s, str) and s).strip(),
            "network_timestamp": at or timestamp(body.get("createdAt")),
            "raw_payload_b64": raw,
        }
        return with_media(profile, media)
    media = blob_refs(body, parsed.repo)
    item: dict[str, Any] = {
        "remote_id": uri,
        "direction": "outbound" if outbound else "inbound",
        "author": author,
        "raw_payload_b64": raw,
    }
    if parsed.collection == REPOST:
        subject = _uri_at(body, "subject", "uri")
        item.update(kind="share", text=subject, parent_remote_id=subject, thread_id=subject)
        item["network_timestamp"] = timestamp(body.get("createdAt"))
    else:
        text = body.get("text")
        item["text"] = text if isinstance(text, str) else ""
        parent = _uri_at(body, "reply", "parent", "uri")
        root = _uri_at(body, "reply", "root", "uri")
        item["kind"] = "reply" if parent else "post"
        item["thread_id"] = root or uri
        item["conversation_id"] = root or uri
        if parent:
            item["parent_remote_id"] = parent
        item["network_timestamp"] = timestamp(body.get("createdAt"))
    if edit:
        item["kind"] = "edit"
        item["parent_remote_id"] = uri
        item["network_timestamp"] = at or item.get("network_timestamp")
    return with_media(item, media)


def deletion_item(
    *, uri: str, owner_did: str, owner_handle: str, at: str | None = None
) -> dict[str, Any]:
    parsed = AtUri.parse(uri)
    outbound = parsed.repo == owner_did
    return {
        "remote_id": uri,
        "kind": "deletion",
        "direction": "outbound" if outbound else "inbound",
        "author": owner_handle if outbound and owner_handle else parsed.repo,
        "parent_remote_id": uri,
        "network_timestamp": at,
        "raw_payload_b64": base64.b64encode(deletion_payload(uri)).decode("ascii"),
    }


def cid_of_payload(payload: bytes) -> str:
    """The CID recorded in an archived record's payload ("" for deletions or foreign data)."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return ""
    cid = body.get("cid") if isinstance(body, dict) else None
    return cid if isinstance(cid, str) else ""
