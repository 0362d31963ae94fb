"""The archive's REST API: ingest, records, inclusion proofs, quarantine, tree heads."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from vetline.archive import actions, log, selectors
from vetline.archive.actions import MAX_BATCH
from vetline.archive.models import ArchivedRecord, TreeHead
from vetline.core.errors import NotFound
from vetline.core.http import DbCount, DbId, api_actor
from vetline.core.pagination import BoundedPagination
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

router = Router(tags=["archive"])


class IngestIn(Schema):
    account_id: DbId
    source: str = Field("api", max_length=100)
    # Items are validated one by one by the ingest path (bad ones are quarantined with a
    # reason), so the schema takes any JSON objects.
    items: list[dict[str, Any]] = Field(..., max_length=MAX_BATCH)


class ItemResultOut(Schema):
    position: int
    status: str
    remote_id: str
    version: int | None
    record_id: int | None
    log_index: int | None
    quarantine_id: int | None
    reason_code: str
    reason: str


class IngestOut(Schema):
    received: int
    ingested: int
    duplicates: int
    quarantined: int
    conflicts: int
    log_size: int
    items: list[ItemResultOut]


class RecordOut(Schema):
    id: int
    network: str
    account_id: int
    remote_id: str
    version: int
    previous_log_index: int | None = Field(None, alias="previous_version_id")
    record_class: str
    kind: str
    direction: str
    author_handle: str
    participants: list[str]
    conversation_id: str
    thread_id: str
    parent_remote_id: str
    text: str
    attachments: list[str]
    network_timestamp: datetime | None
    captured_at: datetime
    raw_payload_sha256: str
    adopted: bool
    approval_ref: str | None
    source: str
    log_index: int


class ProofOut(Schema):
    index: int
    tree_size: int
    leaf_hash: str
    leaf_bytes_b64: str
    inclusion_proof: list[str]
    root_hash: str
    tree_head: dict[str, Any] | None
    verified: bool


class QuarantineOut(Schema):
    id: int
    account_id: int
    source: str
    position: int
    reason_code: str
    reason: str
    remote_id: str
    conflicting_record_id: int | None
    status: str
    attempts: int
    received_at: datetime


class ReprocessIn(Schema):
    item_ids: list[DbId] = Field(..., min_length=1, max_length=MAX_BATCH)


class TreeHeadOut(Schema):
    version: int
    tree_size: int
    root_hash: str
    timestamp_ms: int
    key_id: str
    signature: str


class RecordQuery(Schema):
    account_id: DbId | None = None


@router.post("/ingest", response=IngestOut, summary="Archive a batch of captured items")
def ingest(request: HttpRequest, body: IngestIn) -> dict[str, Any]:
    from vetline.accounts.models import SocialAccount

    actor = require(api_actor(request), Perm.ACCOUNTS_MANAGE)
    account = SocialAccount.objects.filter(pk=body.account_id).first()
    if account is None:
        raise NotFound("No such account.", field="account_id")
    report = actions.ingest_batch(
        items=body.items, account=account, source=body.source, actor=actor
    )
    return report.as_dict()


class BlobOut(Schema):
    sha256: str
    size_bytes: int
    already_stored: bool
    retain_until: datetime | None


class BlobQuery(Schema):
    record_class: str = Field("", max_length=40)
    source: str = Field("api", max_length=100)


_BINARY_BODY = {
    "requestBody": {
        "required": True,
        "description": "The attachment's bytes, as they are (no multipart, no base64).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/blobs",
    response=BlobOut,
    summary="Store an attachment's bytes; items then name it by its SHA-256",
    openapi_extra=_BINARY_BODY,
)
def store_blob(request: HttpRequest, params: Query[BlobQuery]) -> dict[str, Any]:
    from django.conf import settings
    from django.http.request import RawPostDataException

    from vetline.core.errors import ValidationFailed

    actor = require(api_actor(request), Perm.ACCOUNTS_MANAGE)
    limit = int(settings.VETLINE_MAX_ATTACHMENT_BYTES)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise ValidationFailed(
            f"The attachment is larger than {limit:,} bytes (VETLINE_MAX_ATTACHMENT_BYTES).",
            field="body",
        )
    try:
        data = request.read(limit + 1)  # the raw body (request.body would cap it at 2.5 MB)
    except RawPostDataException as exc:  # already read as a form
        raise ValidationFailed(
            "Send the attachment's bytes as the request body (application/octet-stream).",
            field="body",
        ) from exc
    stored = actions.store_attachment(
        data=data, actor=actor, record_class=params.record_class, source=params.source
    )
    return {
        "sha256": stored.sha256,
        "size_bytes": stored.size_bytes,
        "already_stored": stored.already_stored,
        "retain_until": stored.retain_until,
    }


@router.get("/records", response=list[RecordOut])
@paginate(BoundedPagination)
def list_records(request: HttpRequest, filters: Query[RecordQuery]) -> Any:
    return selectors.records(api_actor(request), account_id=filters.account_id)


@router.get("/records/{record_id}", response=RecordOut)
def get_record(request: HttpRequest, record_id: DbId) -> ArchivedRecord:
    from vetline.archive.search_actions import audit_record_view

    actor = api_actor(request)
    record = selectors.get_record(actor, record_id)
    audit_record_view(actor=actor, record=record)
    return record


@router.get("/records/{record_id}/proof", response=ProofOut, summary="RFC 6962 inclusion proof")
def record_proof(request: HttpRequest, record_id: DbId) -> dict[str, Any]:
    record = selectors.get_record(api_actor(request), record_id)
    return selectors.inclusion_proof(record).as_dict()


@router.get("/quarantine", response=list[QuarantineOut])
@paginate(BoundedPagination)
def list_quarantine(request: HttpRequest, status: str | None = None) -> Any:
    return selectors.quarantined(api_actor(request), status=status)


@router.post("/quarantine/reprocess", response=IngestOut)
def reprocess(request: HttpRequest, body: ReprocessIn) -> dict[str, Any]:
    report = actions.reprocess_quarantined(item_ids=body.item_ids, actor=api_actor(request))
    return report.as_dict()


@router.get("/tree-heads", response=list[TreeHeadOut])
@paginate(BoundedPagination)
def list_tree_heads(request: HttpRequest) -> Any:
    require(api_actor(request), Perm.ARCHIVE_VIEW)
    return [
        log.head_from_row(row).to_dict()
        for row in TreeHead.objects.order_by("-tree_size", "-id")[:1000]
    ]


class ConsistencyOut(Schema):
    old_size: int
    new_size: int
    proof: list[str]


@router.get("/consistency", response=ConsistencyOut, summary="RFC 6962 consistency proof")
def consistency(request: HttpRequest, old_size: DbCount, new_size: DbCount) -> dict[str, Any]:
    from vetline.archive.integrity.merkle import MerkleError
    from vetline.core.errors import ValidationFailed

    require(api_actor(request), Perm.ARCHIVE_VIEW)
    if not 0 <= old_size <= new_size <= log.current_size():
        raise ValidationFailed("Need 0 <= old_size <= new_size <= the log's size.")
    try:
        proof = log.consistency_proof(old_size, new_size)
    except MerkleError as exc:
        raise ValidationFailed(str(exc)) from exc
    return {"old_size": old_size, "new_size": new_size, "proof": [p.hex() for p in proof]}
