"""Writes to the archive: ingest (the one path for connectors, importers and the API),
re-processing quarantined items, appending audit events to the log, signing tree heads and
recording verification runs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from vetline.archive.integrity.sth import SignedTreeHead
from vetline.archive.items import VERSIONED_KINDS, CleanItem, ItemError, clean_item, parse_raw
from vetline.archive.items import raw_bytes_of as _raw_bytes_of
from vetline.archive.leaves import (
    audit_leaf_from_row,
    content_json,
    encode_content_values,
    json_string_list,
    record_leaf_encoded,
    timestamp_text,
)
from vetline.archive.log import (
    BulkInsert,
    LogAppender,
    db_datetime,
    db_json,
    head_from_row,
    insert_rows,
    locked_state,
    signer,
)
from vetline.archive.models import (
    ArchivedRecord,
    LeafKind,
    LogLeaf,
    QuarantinedItem,
    QuarantineStatus,
    ScreeningVerdict,
    TreeHead,
    VerificationRun,
)
from vetline.archive.signals import records_archived
from vetline.audit.actions import record as audit
from vetline.core.errors import NotFound, ValidationFailed
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

if TYPE_CHECKING:
    from vetline.accounts.models import SocialAccount
    from vetline.archive.verification import DatabaseVerification
    from vetline.identity.models import Person

logger = logging.getLogger(__name__)

MAX_BATCH: Final = 10_000
AUDIT_LOOKBACK: Final = 500  # ids below the high-water mark re-checked for late commits
_LEAF = b"\x00"
# The columns of the record rows ingest writes, in the order of its tuples (checked against
# the model here: a new column must be written by ingest too).
_RECORD_COLUMNS: Final = (
    "network",
    "account_id",
    "remote_id",
    "version",
    "previous_log_index",
    "record_class",
    "kind",
    "direction",
    "author_handle",
    "participants",
    "conversation_id",
    "thread_id",
    "parent_remote_id",
    "text",
    "attachments",
    "network_timestamp",
    "captured_at",
    "raw_payload",
    "raw_payload_sha256",
    "content_sha256",
    "adopted",
    "approval_ref",
    "source",
    "log_index",
)
if set(_RECORD_COLUMNS) != {
    f.column for f in ArchivedRecord._meta.concrete_fields if not f.primary_key
}:  # pragma: no cover
    raise ImportError("archive ingest: _RECORD_COLUMNS no longer matches ArchivedRecord")


@dataclass(slots=True)
class ItemResult:
    position: int
    status: str  # ingested, duplicate, quarantined
    remote_id: str = ""
    version: int | None = None
    record_id: int | None = None
    log_index: int | None = None
    quarantine_id: int | None = None
    reason_code: str = ""
    reason: str = ""


@dataclass
class IngestReport:
    """What happened to every item of a batch. Returned only after the batch is committed."""

    received: int = 0
    ingested: int = 0
    duplicates: int = 0
    quarantined: int = 0
    conflicts: int = 0
    items: list[ItemResult] = field(default_factory=list)
    log_size: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "received": self.received,
            "ingested": self.ingested,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "conflicts": self.conflicts,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.counts(),
            "log_size": self.log_size,
            "items": [asdict(i) for i in self.items],
        }


@dataclass(slots=True)
class _Version:
    content_sha256: str
    log_index: int
    record_id: int | None  # None: a record of this batch, its id known once inserted


_VERSIONS_SQL: Final = (
    "SELECT remote_id, version, content_sha256, log_index, id FROM archive_archivedrecord"
    " WHERE account_id = %s AND network = %s AND remote_id "
)


def _archived_versions(
    account_id: int, network: str, remote_ids: set[str]
) -> dict[str, dict[int, _Version]]:
    """The archived versions of ``remote_ids`` for one account: remote id -> version -> what
    ingest needs to decide duplicate, conflict or next version. One indexed read per 5,000 ids,
    on the unique key (account, network, remote id, version)."""
    versions: dict[str, dict[int, _Version]] = {}
    wanted = list(remote_ids)
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        for start in range(0, len(wanted), 5000):
            part = wanted[start : start + 5000]
            params: list[Any] = [account_id, network]
            if postgres:
                match = "= ANY(%s)"
                params.append(part)
            else:
                match = "IN (" + ", ".join(["%s"] * len(part)) + ")"
                params.extend(part)
            cursor.execute(_VERSIONS_SQL + match, params)  # the ids are parameters
            for rid, ver, csha, idx, pk in cursor.fetchall():
                versions.setdefault(rid, {})[ver] = _Version(csha, idx, pk)
    return versions


def _record_ids(first_index: int, last_index: int) -> dict[int, int]:
    """Log index -> record id of the records logged at ``first_index..last_index``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT log_index, id FROM archive_archivedrecord"
            " WHERE log_index >= %s AND log_index <= %s",
            [first_index, last_index],
        )
        return dict(cursor.fetchall())


def _scope_for(kind: str, direction: str) -> str:
    if kind == "direct_message":
        return "direct_message"
    if kind == "profile_snapshot":
        return "profile"
    if direction == "inbound":
        return "inbound_comment"
    if kind in ("reply", "comment"):
        return "reply"
    return "outbound_post"


def _screening_policy() -> Any:
    from vetline.policy.models import Policy

    return Policy.objects.filter(is_default=True).first() or Policy.objects.first()


def _screen(policy: Any, clean: CleanItem) -> dict[str, Any]:
    from vetline.core.errors import DomainError
    from vetline.policy.selectors import screen_text

    scope = _scope_for(clean.kind, clean.direction)
    try:
        result = screen_text(text=clean.text, scope=scope, policy=policy)
    except DomainError as exc:
        return {"scope": scope, "verdict": "error", "error": exc.message}
    except Exception as exc:  # screening must never lose a record; the error is kept instead
        logger.exception("archive.screening.failed")
        return {"scope": scope, "verdict": "error", "error": f"{type(exc).__name__}: {exc}"}
    data = result.as_dict()
    return {
        "scope": scope,
        "verdict": data["verdict"],
        "hits": data["hits"],
        "policy_name": result.policy_name,
        "policy_version": result.policy_version,
    }


def ingest_batch(
    *,
    items: Sequence[Mapping[str, Any] | bytes],
    account: SocialAccount,
    source: str,
    actor: Person | None,
    screen: bool | None = None,
) -> IngestReport:
    """Archive a batch of items for one account: the single ingest path.

    Each item is a mapping or the raw bytes of a JSON object (see :mod:`vetline.archive.items`).
    Idempotent on (network, account, remote id, version): identical content is a duplicate;
    different content under an archived key is quarantined as a conflict, never overwritten. Bad
    items are quarantined with their bytes and a reason; good items of the batch still go in.
    Every new record gets a leaf in the integrity log in the same transaction, and the batch
    writes one ``archive.ingest.batch`` audit event. Returns after the commit: everything the
    report calls ingested is durable. ``actor`` None is the system (connectors, jobs).

    ``screen``: None screens when a policy is installed; False never screens.
    """
    if actor is not None:
        require(actor, Perm.ACCOUNTS_MANAGE)
    if len(items) > MAX_BATCH:
        raise ValidationFailed(f"At most {MAX_BATCH:,} items per batch.", field="items")
    source = (source or "")[:100]
    report = IngestReport(received=len(items))
    results: list[ItemResult | None] = [None] * len(items)
    cleaned: list[tuple[int, CleanItem]] = []
    bad: list[tuple[int, ItemError, bytes]] = []
    for position, item in enumerate(items):
        try:
            if isinstance(item, (bytes, bytearray, memoryview)):
                received = bytes(item)
                cleaned.append((position, clean_item(parse_raw(received), received=received)))
            else:
                cleaned.append((position, clean_item(item)))
        except ItemError as exc:
            bad.append((position, exc, _raw_bytes_of(item)))
    if any(c.attachments for _, c in cleaned):
        cleaned = _with_stored_attachments(cleaned, bad, items)

    policy = _screening_policy() if screen is not False and cleaned else None
    verdicts = {pos: _screen(policy, c) for pos, c in cleaned} if policy is not None else {}
    captured_at = timezone.now()
    network = account.network
    account_id = account.pk

    with transaction.atomic():
        appender = LogAppender(locked_state())
        versions = _archived_versions(account_id, network, {c.remote_id for _, c in cleaned})

        # One pass per item: canonical bytes, content hash, version, leaf hash, log index and
        # the row as the database takes it, streamed to the database as it is produced (no
        # model instances: at ingest rates building them costs more than inserting the rows).
        # Nothing else may query the connection until the stream is closed.
        new_hashes: list[bytes] = []
        new_items: list[tuple[int, str, int, int]] = []  # position, remote id, version, index
        duplicates: list[tuple[int, _Version]] = []
        conflicts: list[tuple[int, CleanItem, _Version, int]] = []
        sha256 = hashlib.sha256
        db_time = db_datetime()
        captured_text = timestamp_text(captured_at)
        captured_db = db_time(captured_at, captured_text)
        with BulkInsert(ArchivedRecord, _RECORD_COLUMNS) as records:
            add_record = records.add
            for position, c in cleaned:
                stamp = c.network_timestamp
                stamp_text = timestamp_text(stamp) if stamp is not None else None
                participants = json_string_list(c.participants)
                attachments = json_string_list(c.attachments)
                encoded = encode_content_values(  # the fields in key order
                    account_id,
                    c.adopted,
                    c.approval_ref,
                    attachments,
                    c.author,
                    c.conversation_id,
                    c.direction,
                    c.kind,
                    network,
                    stamp_text,
                    c.parent_remote_id,
                    participants,
                    c.raw_payload_sha256,
                    c.record_class,
                    c.remote_id,
                    c.text,
                    c.thread_id,
                )
                csha = sha256(content_json(encoded)).hexdigest()
                known = versions.setdefault(c.remote_id, {})
                version = c.version
                if version is None:
                    if c.kind in VERSIONED_KINDS and known:
                        same = next((v for v in known.values() if v.content_sha256 == csha), None)
                        if same is not None:
                            duplicates.append((position, same))
                            continue
                        version = max(known) + 1
                    else:
                        version = 1
                hit = known.get(version)
                if hit is not None:
                    if hit.content_sha256 == csha:
                        duplicates.append((position, hit))
                    else:
                        conflicts.append((position, c, hit, version))
                    continue
                earlier = [v for v in known if v < version]
                previous = known[max(earlier)].log_index if earlier else None
                leaf = record_leaf_encoded(
                    encoded,
                    version=version,
                    previous_log_index=previous,
                    captured_at=captured_text,
                    source=source,
                )
                leaf_hash = sha256(_LEAF + leaf).digest()
                index = appender.reserve(leaf_hash)
                known[version] = _Version(csha, index, None)
                add_record(
                    (
                        network,
                        account_id,
                        c.remote_id,
                        version,
                        previous,
                        c.record_class,
                        c.kind,
                        c.direction,
                        c.author,
                        db_json(c.participants),
                        c.conversation_id,
                        c.thread_id,
                        c.parent_remote_id,
                        c.text,
                        db_json(c.attachments),
                        db_time(stamp, stamp_text) if stamp is not None else None,
                        captured_db,
                        c.raw_payload,
                        c.raw_payload_sha256,
                        csha,
                        c.adopted,
                        c.approval_ref,
                        source,
                        index,
                    )
                )
                new_hashes.append(leaf_hash)
                new_items.append((position, c.remote_id, version, index))

        ids: dict[int, int] = {}
        if new_items:
            record_kind = LeafKind.RECORD.value
            # Appends are serialised by the state lock, so the new records are exactly the ones
            # with log indices in this range; one indexed range read gives their ids.
            ids = _record_ids(new_items[0][3], new_items[-1][3])
            insert_rows(
                LogLeaf,
                ("index", "leaf_hash", "kind", "object_id"),
                [
                    (index, h, record_kind, ids[index])
                    for (_, _, _, index), h in zip(new_items, new_hashes, strict=True)
                ],
            )
        if verdicts and new_items:
            ScreeningVerdict.objects.bulk_create(
                [
                    ScreeningVerdict(
                        record_id=ids[index],
                        policy_name=verdicts[pos].get("policy_name", ""),
                        policy_version=verdicts[pos].get("policy_version"),
                        scope=verdicts[pos]["scope"],
                        verdict=verdicts[pos]["verdict"],
                        hits=verdicts[pos].get("hits", []),
                        error=verdicts[pos].get("error", ""),
                    )
                    for pos, _, _, index in new_items
                ]
            )

        def record_id(hit: _Version) -> int | None:
            return hit.record_id if hit.record_id is not None else ids.get(hit.log_index)

        for pos, remote_id, version, index in new_items:
            results[pos] = ItemResult(pos, "ingested", remote_id, version, ids[index], index)
        clean_at = dict(cleaned)
        for pos, hit in duplicates:
            results[pos] = ItemResult(
                pos,
                "duplicate",
                clean_at[pos].remote_id,
                record_id=record_id(hit),
                log_index=hit.log_index,
            )

        quarantine: list[tuple[int, QuarantinedItem]] = []
        for pos, err, raw in bad:
            quarantine.append(
                (
                    pos,
                    QuarantinedItem(
                        account=account,
                        source=source,
                        position=pos,
                        reason_code=err.code,
                        reason=err.message,
                        raw=raw,
                        remote_id=err.remote_id,
                    ),
                )
            )
        for pos, c, hit, version in conflicts:
            quarantine.append(
                (
                    pos,
                    QuarantinedItem(
                        account=account,
                        source=source,
                        position=pos,
                        reason_code="conflict",
                        reason=(
                            f"version {version} of {c.remote_id!r} is already archived with "
                            "different content; the archived version is kept unchanged"
                        ),
                        raw=_raw_bytes_of(items[pos]),
                        remote_id=c.remote_id,
                        conflicting_record_id=record_id(hit),
                    ),
                )
            )
        if quarantine:
            QuarantinedItem.objects.bulk_create([q for _, q in quarantine])
            for pos, q in quarantine:
                results[pos] = ItemResult(
                    pos,
                    "quarantined",
                    q.remote_id,
                    quarantine_id=q.pk,
                    reason_code=q.reason_code,
                    reason=q.reason,
                )

        report.ingested = len(new_items)
        report.duplicates = len(duplicates)
        report.conflicts = len(conflicts)
        report.quarantined = len(quarantine)
        report.items = [r for r in results if r is not None]
        audit(
            action="archive.ingest.batch",
            actor=actor,
            obj=account,
            after={
                **report.counts(),
                "source": source,
                "first_log_index": new_items[0][3] if new_items else None,
                "last_log_index": new_items[-1][3] if new_items else None,
            },
        )
        _append_audit_events(appender, lookback=0)
        appender.finish()
        report.log_size = appender.size
        if new_items:
            new_ids = [ids[index] for _, _, _, index in new_items]
            transaction.on_commit(
                lambda: records_archived.send_robust(
                    sender=ArchivedRecord, account_id=account_id, record_ids=new_ids
                )
            )
    logger.info(
        "archive.ingest.batch", extra={"account": account.pk, "source": source, **report.counts()}
    )
    return report


def _with_stored_attachments(
    cleaned: list[tuple[int, CleanItem]],
    bad: list[tuple[int, ItemError, bytes]],
    items: Sequence[Mapping[str, Any] | bytes],
) -> list[tuple[int, CleanItem]]:
    """The items whose attachments are all in the blob store; the others go to ``bad`` (to be
    quarantined: reprocessing them once the bytes are stored archives them). A record names
    its attachments by their SHA-256, so a name without bytes behind it would be a record that
    cannot be produced in full."""
    from vetline.archive.blobs import default_store

    store = default_store()
    wanted = {digest for _, c in cleaned for digest in c.attachments}
    missing = {digest for digest in wanted if not store.exists(digest)}
    if not missing:
        return cleaned
    kept: list[tuple[int, CleanItem]] = []
    for position, c in cleaned:
        absent = [digest for digest in c.attachments if digest in missing]
        if not absent:
            kept.append((position, c))
            continue
        error = ItemError(
            "missing_attachment",
            f"attachment {absent[0]} is not in the blob store"
            + (f" (nor {len(absent) - 1} more)" if len(absent) > 1 else "")
            + ": store its bytes first (POST /api/archive/blobs), then reprocess this item",
            remote_id=c.remote_id,
        )
        bad.append((position, error, _raw_bytes_of(items[position])))
    bad.sort(key=lambda entry: entry[0])
    return kept


@dataclass(frozen=True, slots=True)
class StoredAttachment:
    sha256: str
    size_bytes: int
    already_stored: bool
    retain_until: dt.datetime | None


def store_attachment(
    *, data: bytes, actor: Person | None, record_class: str = "", source: str = ""
) -> StoredAttachment:
    """Put an attachment's bytes in the blob store (content-addressed, write-once) before the
    items naming it are ingested: the upload path of the REST API. Retained at least as long
    as ``record_class`` requires (default: the longest configured period). Audited."""
    from vetline.archive.blobs import BlobError, default_store, retain_until_for
    from vetline.archive.models_retention import RecordClass

    if actor is not None:
        require(actor, Perm.ACCOUNTS_MANAGE)
    if not data:
        raise ValidationFailed("The attachment is empty.", field="file")
    limit = int(settings.VETLINE_MAX_ATTACHMENT_BYTES)
    if len(data) > limit:
        raise ValidationFailed(
            f"The attachment is larger than {limit:,} bytes (VETLINE_MAX_ATTACHMENT_BYTES).",
            field="file",
        )
    if record_class and not RecordClass.objects.filter(code=record_class).exists():
        raise ValidationFailed(f"No record class {record_class!r}.", field="record_class")
    store = default_store()
    digest = hashlib.sha256(data).hexdigest()
    existed = store.exists(digest)
    retain = retain_until_for(captured_at=timezone.now(), record_class=record_class or None)
    try:
        name = store.put(data, retain_until=retain)
    except BlobError as exc:
        raise ValidationFailed(f"The blob store refused the attachment: {exc}") from exc
    with transaction.atomic():
        audit(
            action="archive.attachment.stored",
            actor=actor,
            object_type="archive.blob",
            object_id=name,
            object_repr=f"blob {name[:12]}…",
            after={
                "sha256": name,
                "size_bytes": len(data),
                "already_stored": existed,
                "record_class": record_class,
                "retain_until": retain.isoformat(),
                "source": source[:100],
            },
        )
    return StoredAttachment(name, len(data), existed, retain)


def _append_audit_events(appender: LogAppender, *, lookback: int) -> int:
    """Append audit events not yet in the log, in id order. Call with the state row locked.

    Ids up to ``lookback`` below the high-water mark are re-checked, so an event whose
    transaction committed after a later one's is still logged."""
    from vetline.audit.models import AuditEvent

    state = appender.state
    high = state.audit_high_water
    floor = max(0, high - lookback)
    events = list(AuditEvent.objects.filter(id__gt=floor).order_by("id"))
    if not events:
        return 0
    if floor < high:
        logged = set(
            LogLeaf.objects.filter(
                kind=LeafKind.AUDIT_EVENT, object_id__gt=floor, object_id__lte=high
            ).values_list("object_id", flat=True)
        )
        events = [e for e in events if e.id > high or e.id not in logged]
    leaves = []
    for event in events:
        leaf_hash = hashlib.sha256(_LEAF + audit_leaf_from_row(event)).digest()
        index = appender.reserve(leaf_hash)
        leaves.append(
            LogLeaf(index=index, leaf_hash=leaf_hash, kind=LeafKind.AUDIT_EVENT, object_id=event.id)
        )
    LogLeaf.objects.bulk_create(leaves)
    # written with the log's new size by appender.finish(), in the same statement (the high
    # water mark only moves when leaves were appended, so finish() always has a size to write)
    state.audit_high_water = max(high, events[-1].id) if events else high
    return len(leaves)


def append_pending_audit_events() -> int:
    """Append every audit event not yet in the integrity log (periodic job and CLI)."""
    with transaction.atomic():
        appender = LogAppender(locked_state())
        count = _append_audit_events(appender, lookback=AUDIT_LOOKBACK)
        appender.finish()
    return count


def reprocess_quarantined(*, item_ids: Sequence[int], actor: Person | None) -> IngestReport:
    """Run quarantined items through ingest again (after a fix, or once the conflict is
    understood). An item that now ingests, or turns out to be a duplicate, is released; one
    that still fails stays quarantined with the new reason."""
    if actor is not None:
        require(actor, Perm.ACCOUNTS_MANAGE)
    rows = list(
        QuarantinedItem.objects.filter(pk__in=item_ids, status=QuarantineStatus.QUARANTINED)
        .select_related("account")
        .order_by("pk")
    )
    if not rows and item_ids:
        raise NotFound("No such quarantined item.")
    total = IngestReport()
    by_account: dict[int, list[QuarantinedItem]] = {}
    for row in rows:
        by_account.setdefault(row.account_id, []).append(row)
    for group in by_account.values():
        account = group[0].account
        with transaction.atomic():
            report = ingest_batch(
                items=[bytes(q.raw) for q in group],
                account=account,
                source=f"reprocess:{group[0].source}"[:100],
                actor=actor,
            )
            now = timezone.now()
            for q, result in zip(group, report.items, strict=True):
                if result.status in ("ingested", "duplicate"):
                    QuarantinedItem.objects.filter(pk=q.pk).update(
                        status=QuarantineStatus.RELEASED,
                        resolved_at=now,
                        resolved_record_id=result.record_id,
                        attempts=q.attempts + 1,
                    )
                else:
                    # ingest quarantined it again as a new row; keep one row per item
                    if result.quarantine_id is not None:
                        QuarantinedItem.objects.filter(pk=result.quarantine_id).delete()
                    QuarantinedItem.objects.filter(pk=q.pk).update(
                        attempts=q.attempts + 1,
                        reason=result.reason,
                        reason_code=result.reason_code,
                    )
                    result.quarantine_id = q.pk
            audit(
                action="archive.quarantine.reprocess",
                actor=actor,
                obj=account,
                after={"items": [q.pk for q in group], **report.counts()},
            )
        for name in ("received", "ingested", "duplicates", "quarantined", "conflicts"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.items.extend(report.items)
        total.log_size = report.log_size
    return total


# --------------------------------------------------------------------------- tree heads


def sign_tree_head(*, actor: Person | None = None) -> TreeHead:
    """Sign the log's current size and root (after appending pending audit events), store the
    signed head, and copy it to the witness file once committed."""
    if actor is not None:
        require(actor, Perm.ARCHIVE_EXPORT)
    key = signer()
    with transaction.atomic():
        appender = LogAppender(locked_state())
        _append_audit_events(appender, lookback=AUDIT_LOOKBACK)
        appender.finish()
        head = key.sign_tree_head(tree_size=appender.size, root_hash=appender.root())
        row = TreeHead.objects.create(
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            timestamp_ms=head.timestamp_ms,
            key_id=head.key_id,
            signature=head.signature,
            version=head.version,
        )
        if actor is not None:
            audit(
                action="archive.tree_head.sign",
                actor=actor,
                obj=row,
                after={"tree_size": head.tree_size, "root_hash": head.root_hash.hex()},
            )
        transaction.on_commit(lambda: write_witness(head))
    return row


def witness_path() -> Path:
    return Path(settings.VETLINE_WITNESS_DIR) / "tree-heads.jsonl"


def write_witness(head: SignedTreeHead) -> None:
    """Append a signed tree head to the witness file (one JSON object a line, fsynced), a copy
    held outside the database; point ``VETLINE_WITNESS_DIR`` at another disk or host."""
    path = witness_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(head.to_dict(), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError:
        logger.exception("archive.witness.write_failed", extra={"path": str(path)})


def export_witness(*, path: Path) -> int:
    """Write every stored tree head to ``path`` (JSON lines). Returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for row in TreeHead.objects.order_by("id").iterator():
            fh.write(json.dumps(head_from_row(row).to_dict(), sort_keys=True) + "\n")
            count += 1
    return count


# --------------------------------------------------------------------------- verification


def run_verification(
    *, trigger: str, actor: Person | None = None
) -> tuple[VerificationRun, DatabaseVerification]:
    """Verify the whole log, record the run, and on failure write ``archive.verify.failed``
    and e-mail the compliance officers."""
    from vetline.archive.verification import verify_database

    if actor is not None:
        require(actor, Perm.ARCHIVE_VIEW)
    started = timezone.now()
    t0 = time.perf_counter()
    result = verify_database()
    report = result.report
    with transaction.atomic():
        run = VerificationRun.objects.create(
            started_at=started,
            finished_at=timezone.now(),
            trigger=trigger[:20],
            ok=result.ok,
            log_size=report.log_size,
            entries_checked=report.entries_checked,
            heads_checked=report.heads_checked,
            counts=result.counts,
            findings=result.findings[:200],
            duration_ms=int((time.perf_counter() - t0) * 1000),
        )
        if not result.ok:
            audit(
                action="archive.verify.failed",
                actor=actor,
                obj=run,
                after={"counts": result.counts, "first": result.findings[:5]},
            )
            run_id, counts = run.pk, result.counts
            transaction.on_commit(lambda: _alert_compliance(run_id, counts))
    return run, result


def _alert_compliance(run_id: int, counts: Mapping[str, int]) -> None:
    from django.core.mail import send_mail

    from vetline.identity.models import Person
    from vetline.identity.roles import Role

    recipients = list(
        Person.objects.filter(
            is_active=True, role_grants__role=Role.COMPLIANCE_OFFICER.value
        ).values_list("email", flat=True)
    )
    if not recipients:
        return
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    try:
        send_mail(
            subject="[Vetline] Archive verification FAILED",
            message=(
                f"Verification run #{run_id} found problems in the archive's integrity log "
                f"({summary}). Run `vetline manage archive verify` for the full report."
            ),
            from_email=None,
            recipient_list=recipients,
        )
    except OSError:
        logger.exception("archive.verify.alert_failed")
