"""Bluesky (AT Protocol) repository export: the CAR file ``com.atproto.sync.getRepo`` returns
(or "Export my data" in the app's settings), CARv1 with DAG-CBOR blocks.

Read in two streaming passes: the first decodes the signed commit and the MST nodes to learn
each record's key (``app.bsky.feed.post/3k…``), the second decodes the records and maps
``app.bsky.feed.post`` (post or reply), ``app.bsky.feed.repost`` (share), ``app.bsky.feed.like``
(reaction) and ``app.bsky.actor.profile`` (profile snapshot). Other collections (follows,
blocks, lists…) are counted, not archived. A block whose bytes do not match its CID, or that
is not DAG-CBOR, is quarantined with its bytes. Memory: one block at a time plus the key map
(about 150 bytes per record).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from vetline.importers.car import (
    CarError,
    CborError,
    Cid,
    decode_dag_cbor,
    is_mst_node,
    iter_blocks,
    mst_entries,
    read_header,
    to_json,
)
from vetline.importers.formats.base import Entry, Owner, ReadReport, Source, b64, unreadable

MAPPED: Final = frozenset(
    {"app.bsky.feed.post", "app.bsky.feed.repost", "app.bsky.feed.like", "app.bsky.actor.profile"}
)


def members(source: Source) -> list[str]:
    return [n for n in source.names() if n.endswith(".car")] or source.names()[:1]


def _uri(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("uri"), str):
        return str(value["uri"])
    return None


def read(source: Source, owner: Owner, report: ReadReport) -> Iterator[Entry]:
    for member in members(source):
        yield from _read_car(source, member, owner, report)


def _read_car(source: Source, member: str, owner: Owner, report: ReadReport) -> Iterator[Entry]:
    did = owner.network_id
    keys: dict[bytes, str] = {}
    # Pass 1: commit and MST nodes.
    try:
        with source.open(member) as fh:
            roots, offset = read_header(fh)
            for block in iter_blocks(fh, offset):
                try:
                    value = decode_dag_cbor(block.data)
                except CborError:
                    continue  # reported in pass 2
                if is_mst_node(value):
                    for key, cid in mst_entries(value):
                        keys[cid.raw] = key
                elif (
                    isinstance(value, dict)
                    and isinstance(value.get("did"), str)
                    and ((roots and block.cid == roots[0]) or not did)
                ):
                    did = value["did"]
    except CarError:
        pass  # the second pass reads the same bytes and reports where it stops
    author = owner.handle
    # Pass 2: records.
    number = 0
    try:
        with source.open(member) as fh:
            _, offset = read_header(fh)
            for block in iter_blocks(fh, offset):
                number += 1
                where = f"{member} block #{number} ({block.cid})"
                if block.cid.digest_matches(block.data) is False:
                    yield unreadable(where, block.data, "the block's bytes do not match its CID")
                    continue
                try:
                    value = decode_dag_cbor(block.data)
                except CborError as exc:
                    yield unreadable(where, block.data, f"not valid DAG-CBOR: {exc}")
                    continue
                if not isinstance(value, dict) or "$type" not in value:
                    continue  # commit and MST nodes: repository structure, not content
                entry = _record(where, block.data, block.cid, value, keys, did, author, report)
                if entry is not None:
                    yield entry
    except CarError as exc:
        report.stops.append(
            f"{member}: stopped at byte {exc.offset:,} after {number:,} blocks: {exc.message}"
        )


def _record(
    where: str,
    data: bytes,
    cid: Cid,
    record: dict[str, Any],
    keys: dict[bytes, str],
    did: str,
    author: str,
    report: ReadReport,
) -> Entry | None:
    rtype = record.get("$type")
    if rtype not in MAPPED:
        report.skip(f"Bluesky {rtype} records" if isinstance(rtype, str) else "untyped records")
        return None
    key = keys.get(cid.raw) or f"{rtype}/cid-{cid}"
    uri = f"at://{did or 'unknown'}/{key}"
    common: dict[str, Any] = {
        "direction": "outbound",
        "author": author,
        "network_timestamp": record.get("createdAt"),
        "raw_payload_b64": b64(data),
    }
    if rtype == "app.bsky.feed.post":
        reply = record.get("reply") if isinstance(record.get("reply"), dict) else None
        item: dict[str, Any] = {
            "remote_id": uri,
            "kind": "reply" if reply else "post",
            "text": record.get("text", ""),
            **common,
        }
        if reply:
            root, parent = _uri(reply.get("root")), _uri(reply.get("parent"))
            item["thread_id"] = root
            item["conversation_id"] = root
            item["parent_remote_id"] = parent
        else:
            item["thread_id"] = uri
            item["conversation_id"] = uri
        facets = record.get("facets")
        mentions = []
        for facet in facets if isinstance(facets, list) else []:
            for feature in facet.get("features", []) if isinstance(facet, dict) else []:
                if isinstance(feature, dict) and isinstance(feature.get("did"), str):
                    mentions.append(feature["did"])
        item["participants"] = mentions
        return Entry(where, data, item)
    subject = _uri(record.get("subject"))
    if rtype in ("app.bsky.feed.repost", "app.bsky.feed.like"):
        return Entry(
            where,
            data,
            {
                "remote_id": uri,
                "kind": "share" if rtype == "app.bsky.feed.repost" else "reaction",
                "text": subject or "",
                "parent_remote_id": subject,
                **common,
            },
        )
    profile = to_json(record)
    return Entry(
        where,
        data,
        {
            "remote_id": f"{uri}#{cid}",
            "kind": "profile_snapshot",
            "text": "\n".join(
                str(profile[k])
                for k in ("displayName", "description")
                if isinstance(profile.get(k), str)
            ),
            **common,
        },
    )
