"""Reads of the archive, always behind the archive permission."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from vetline.archive import log
from vetline.archive.integrity.merkle import leaf_hash as rfc6962_leaf_hash
from vetline.archive.integrity.merkle import verify_inclusion
from vetline.archive.leaves import record_leaf_from_row
from vetline.archive.models import ArchivedRecord, LogLeaf, QuarantinedItem, TreeHead
from vetline.core.errors import NotFound
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm


def records(person: Person, *, account_id: int | None = None) -> QuerySet[ArchivedRecord]:
    require(person, Perm.ARCHIVE_VIEW)
    qs = ArchivedRecord.objects.select_related("account").defer("raw_payload")
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    return qs.order_by("-id")


def get_record(person: Person, record_id: int) -> ArchivedRecord:
    require(person, Perm.ARCHIVE_VIEW)
    record: ArchivedRecord | None = (
        ArchivedRecord.objects.select_related("account").filter(pk=record_id).first()
    )
    if record is None:
        raise NotFound("No such record.")
    return record


def versions_of(record: ArchivedRecord) -> QuerySet[ArchivedRecord]:
    return (
        ArchivedRecord.objects.filter(
            account_id=record.account_id, network=record.network, remote_id=record.remote_id
        )
        .defer("raw_payload")
        .order_by("version")
    )


def quarantined(person: Person, *, status: str | None = None) -> QuerySet[QuarantinedItem]:
    require(person, Perm.ARCHIVE_VIEW)
    qs = QuarantinedItem.objects.select_related("account").defer("raw")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-id")


@dataclass
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    leaf_bytes: bytes
    path: list[bytes]
    root: bytes
    head: TreeHead | None  # the signed head the proof is against, if any
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "leaf_bytes_b64": base64.b64encode(self.leaf_bytes).decode(),
            "inclusion_proof": [p.hex() for p in self.path],
            "root_hash": self.root.hex(),
            "tree_head": log.head_from_row(self.head).to_dict() if self.head else None,
            "verified": self.verified,
        }


def inclusion_proof(record: ArchivedRecord) -> InclusionProof:
    """RFC 6962 inclusion proof of a record: against the latest signed tree head that covers it,
    or (not yet signed) against the log's current size."""
    index = record.log_index
    head = TreeHead.objects.filter(tree_size__gt=index).order_by("-tree_size", "-id").first()
    if head is not None:
        size, root = head.tree_size, bytes(head.root_hash)
    else:
        size, root = log.current_root()
    stored = LogLeaf.objects.filter(index=index).values_list("leaf_hash", flat=True).first()
    data = record_leaf_from_row(record)
    leaf = bytes(stored) if stored is not None else rfc6962_leaf_hash(data)
    path = log.inclusion_proof(index, size)
    ok = rfc6962_leaf_hash(data) == leaf and verify_inclusion(leaf, index, size, path, root)
    return InclusionProof(index, size, leaf, data, path, root, head, ok)
