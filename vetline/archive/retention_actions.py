"""Writes of retention: record-class periods, legal holds, and the disposal job.

Disposal removes the *content* of an expired, unheld record (text, participants, attachment
list, raw payload) and keeps everything the integrity log needs: the record's leaf hash stays in
the log, the row keeps its metadata and a tombstone naming its index and original leaf hash, a
:class:`DisposalRecord` documents the disposal, and a ``disposal`` leaf appended to the log makes
that documentation tamper-evident. ``vetline manage archive verify`` still passes afterwards.
Once a chunk has committed, the attachment blobs its records referred to, and that no remaining
record refers to, are deleted from the blob store; a blob the store keeps (S3 Object Lock: still
locked) is reported in the run, never an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from django.db import models, transaction
from django.utils import timezone

from vetline.archive.blobs import (
    BlobDeletion,
    BlobError,
    BlobStore,
    DeletionOutcome,
    default_store,
)
from vetline.archive.integrity.canonical import tombstone_bytes
from vetline.archive.leaves import record_leaf_from_row
from vetline.archive.log import LogAppender, locked_state
from vetline.archive.models import ArchivedRecord, LeafKind, LogLeaf
from vetline.archive.models_retention import (
    DisposalRecord,
    DisposalRun,
    DisposalRunStatus,
    LegalHold,
    RecordClass,
)
from vetline.archive.retention import (
    DISPOSAL_REASON_EXPIRED,
    DisposalReport,
    PeriodError,
    check_date_range,
    cutoff,
    disposal_leaf_from_row,
    validate_period,
)
from vetline.archive.retention_selectors import expired_records, held_filter, held_items
from vetline.audit.actions import record as audit
from vetline.core.errors import Conflict, ValidationFailed
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

if TYPE_CHECKING:
    from vetline.accounts.models import SocialAccount
    from vetline.identity.models import Person

logger = logging.getLogger(__name__)

DISPOSAL_CHUNK: Final = 500
PREVIEW_IDS: Final = 1000
BLOB_REFERENCE_BATCH: Final = 100
_LEAF: Final = b"\x00"


def _period_error(exc: PeriodError) -> ValidationFailed:
    return ValidationFailed(exc.message, field=exc.field)


# --------------------------------------------------------------------------- record classes


def update_record_class(
    *,
    actor: Person,
    record_class: RecordClass,
    retention_days: int,
    easily_accessible_days: int,
    label: str | None = None,
) -> RecordClass:
    """Change a class's retention period (compliance officers). Audited
    ``archive.record_class.update`` with the periods before and after."""
    require(actor, Perm.LEGAL_HOLD)
    try:
        validate_period(
            code=record_class.code,
            retention_days=retention_days,
            easily_accessible_days=easily_accessible_days,
        )
    except PeriodError as exc:
        raise _period_error(exc) from exc
    label = (label or "").strip() or record_class.label
    with transaction.atomic():
        row = RecordClass.objects.select_for_update().get(pk=record_class.pk)
        before = {
            "label": row.label,
            "retention_days": row.retention_days,
            "easily_accessible_days": row.easily_accessible_days,
        }
        after = {
            "label": label[:120],
            "retention_days": retention_days,
            "easily_accessible_days": easily_accessible_days,
        }
        if before == after:
            return row
        row.label = label[:120]
        row.retention_days = retention_days
        row.easily_accessible_days = easily_accessible_days
        row.updated_at = timezone.now()
        row.updated_by = actor
        row.save()
        audit(
            action="archive.record_class.update",
            actor=actor,
            obj=row,
            before=before,
            after=after,
        )
    return row


# --------------------------------------------------------------------------- legal holds


def place_legal_hold(
    *,
    actor: Person,
    matter_name: str,
    accounts: Sequence[SocialAccount] = (),
    people: Sequence[Person] = (),
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    query: str = "",
    description: str = "",
) -> LegalHold:
    """Place a legal hold (compliance officers). Audited ``archive.hold.place``.

    Takes the log lock, so a disposal chunk in flight finishes before the hold exists and every
    later chunk sees it."""
    require(actor, Perm.LEGAL_HOLD)
    matter_name = (matter_name or "").strip()
    if not matter_name:
        raise ValidationFailed("Give the matter a name.", field="matter_name")
    if len(matter_name) > 200:
        raise ValidationFailed("The matter name is at most 200 characters.", field="matter_name")
    query = (query or "").strip()
    if len(query) > 500:
        raise ValidationFailed("The query is at most 500 characters.", field="query")
    try:
        check_date_range(date_from, date_to)
    except PeriodError as exc:
        raise _period_error(exc) from exc
    if not accounts and not people:
        raise ValidationFailed(
            "Name at least one custodian: an account or a person.", field="accounts"
        )
    with transaction.atomic():
        locked_state()
        hold = LegalHold.objects.create(
            matter_name=matter_name,
            description=(description or "").strip(),
            date_from=date_from,
            date_to=date_to,
            query=query,
            placed_by=actor,
        )
        hold.accounts.set(accounts)
        hold.people.set(people)
        audit(
            action="archive.hold.place",
            actor=actor,
            obj=hold,
            after={
                "matter_name": matter_name,
                "account_ids": sorted(a.pk for a in accounts),
                "person_ids": sorted(p.pk for p in people),
                "date_from": date_from.isoformat() if date_from else None,
                "date_to": date_to.isoformat() if date_to else None,
                "query": query,
            },
        )
    logger.info("archive.hold.placed", extra={"hold": hold.pk})
    return hold


def release_legal_hold(*, actor: Person, hold: LegalHold, reason: str) -> LegalHold:
    """Release an active hold (compliance officers), with the reason. Audited
    ``archive.hold.release``. Records it covered become disposable once expired."""
    require(actor, Perm.LEGAL_HOLD)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the hold is released.", field="reason")
    with transaction.atomic():
        row = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if row.released_at is not None:
            raise Conflict("This hold was already released.")
        row.released_at = timezone.now()
        row.released_by = actor
        row.release_reason = reason
        row.save(update_fields=["released_at", "released_by", "release_reason"])
        audit(
            action="archive.hold.release",
            actor=actor,
            obj=row,
            before={"active": True},
            after={"active": False, "reason": reason},
        )
    logger.info("archive.hold.released", extra={"hold": row.pk})
    return row


# --------------------------------------------------------------------------- disposal


def _candidates(
    now: dt.datetime,
) -> tuple[list[tuple[RecordClass, models.QuerySet[ArchivedRecord]]], int, list[str]]:
    """(class, expired unheld records) per class, the number of expired held records, and
    record classes found in the archive that have no configured period (never disposed of)."""
    held = held_filter()
    classes = list(RecordClass.objects.order_by("code"))
    out = []
    held_count = 0
    for rc in classes:
        expired = expired_records(rc, cutoff(now, rc.retention_days))
        if held is not None:
            held_count += expired.filter(held_items(held)).count()
            expired = expired.exclude(held_items(held))
        out.append((rc, expired))
    unconfigured = sorted(
        set(
            ArchivedRecord.objects.exclude(record_class__in=[rc.code for rc in classes])
            .values_list("record_class", flat=True)
            .distinct()[:50]
        )
    )
    return out, held_count, unconfigured


def _record_matches_leaf(record: ArchivedRecord, stored: bytes) -> bool:
    payload = bytes(record.raw_payload)
    digest = hashlib.sha256(payload).hexdigest()
    if digest != record.raw_payload_sha256:
        return False
    data = record_leaf_from_row(record, payload_sha256=digest)
    return hashlib.sha256(_LEAF + data).digest() == stored


def _dispose_chunk(
    *, run: DisposalRun, record_class: RecordClass, ids: list[int], now: dt.datetime
) -> tuple[list[int], int, set[str]]:
    """Dispose of the content of the records ``ids`` (one transaction, the log locked).
    Returns the ids disposed of, how many were skipped because they no longer match their
    leaf (tampered: disposing would hide it; verification reports them), and the attachment
    blobs the disposed records referred to."""
    disposed: list[int] = []
    skipped = 0
    blobs: set[str] = set()
    with transaction.atomic():
        appender = LogAppender(locked_state())
        # Re-read under the lock: a hold placed meanwhile, or another run, is seen now.
        qs = expired_records(record_class, cutoff(now, record_class.retention_days))
        held = held_filter()
        if held is not None:
            qs = qs.exclude(held_items(held))
        records = list(qs.filter(pk__in=ids).order_by("log_index"))
        leaves = {
            i: bytes(h)
            for i, h in LogLeaf.objects.filter(
                index__in=[r.log_index for r in records], kind=LeafKind.RECORD
            ).values_list("index", "leaf_hash")
        }
        disposed_at = timezone.now()
        rows: list[DisposalRecord] = []
        for record in records:
            stored = leaves.get(record.log_index)
            if stored is None or not _record_matches_leaf(record, stored):
                skipped += 1
                logger.warning("archive.disposal.integrity_skip", extra={"record": record.pk})
                continue
            row = DisposalRecord(
                record_id=record.pk,
                log_index=record.log_index,
                original_leaf_hash=stored,
                record_class=record.record_class,
                disposed_at=disposed_at,
                reason=DISPOSAL_REASON_EXPIRED,
                run_id=run.pk,
                tombstone=tombstone_bytes(index=record.log_index, original_leaf_hash=stored),
            )
            leaf_hash = hashlib.sha256(_LEAF + disposal_leaf_from_row(row)).digest()
            row.disposal_log_index = appender.reserve(leaf_hash)
            row._leaf_hash = leaf_hash  # type: ignore[attr-defined]
            rows.append(row)
            blobs.update(a for a in record.attachments or [] if isinstance(a, str))
        if rows:
            DisposalRecord.objects.bulk_create(rows)
            LogLeaf.objects.bulk_create(
                [
                    LogLeaf(
                        index=row.disposal_log_index,
                        leaf_hash=row._leaf_hash,  # type: ignore[attr-defined]
                        kind=LeafKind.DISPOSAL,
                        object_id=row.pk,
                    )
                    for row in rows
                ]
            )
            # The one change the database lets through (migration 0006): the content becomes
            # exactly the tombstone recorded in the disposal record, nothing else changes.
            records_table: models.QuerySet[ArchivedRecord] = models.QuerySet(ArchivedRecord)
            for row in rows:
                records_table.filter(pk=row.record_id).update(
                    text="", participants=[], attachments=[], raw_payload=row.tombstone
                )
                disposed.append(row.record_id)
        appender.finish()
    return disposed, skipped, blobs


def _delete_unreferenced_blobs(
    digests: set[str], *, now: dt.datetime, report: DisposalReport
) -> None:
    """Delete the blobs ``digests`` that no archived record still refers to. Blobs are
    content-addressed, so records can share one: it goes only with the last record referring
    to it, and never while a held or unexpired record does. Call after the chunk that disposed
    of the records has committed. The store decides whether a blob may go yet (S3 Object Lock:
    not before its retain-until date); what it keeps is reported, not raised."""
    if not digests:
        return
    pending = sorted(digests)
    referenced: set[str] = set()
    for start in range(0, len(pending), BLOB_REFERENCE_BATCH):
        part = pending[start : start + BLOB_REFERENCE_BATCH]
        refers = models.Q()
        for digest in part:
            refers |= models.Q(attachments__icontains=digest)
        for attachments in ArchivedRecord.objects.filter(refers).values_list(
            "attachments", flat=True
        ):
            referenced.update(a for a in attachments if a in digests)
    store: BlobStore | None = None
    unavailable = ""
    try:
        store = default_store()
    except BlobError as exc:
        unavailable = str(exc)
    for digest in pending:
        if digest in referenced:
            continue
        try:
            if store is None:
                raise BlobError(unavailable)
            result = store.delete(digest, now=now)
        except BlobError as exc:
            result = BlobDeletion(digest, DeletionOutcome.FAILED, detail=str(exc))
        if result.outcome == DeletionOutcome.DELETED:
            report.blobs_deleted += 1
        elif not result.removed:
            report.blobs_kept.append(result.as_dict())
            logger.warning("archive.disposal.blob_kept", extra=result.as_dict())


def dispose_expired(
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    actor: Person | None = None,
    trigger: str = "job",
) -> DisposalReport:
    """Dispose of the content of every expired record that no active legal hold covers.

    ``now`` is the moment expiry is computed against (default: the current time). A dry run
    writes nothing and returns what a run would do (at most 1,000 ids). A real run stores a
    :class:`DisposalRun` with its report and writes ``archive.disposal.run``. Idempotent and
    safe to re-run after a crash: each chunk commits on its own, and disposed records are never
    candidates again. ``actor`` None is the system (the daily job, the CLI).
    """
    if actor is not None:
        require(actor, Perm.LEGAL_HOLD)
    now = now or timezone.now()
    report = DisposalReport(now=now, dry_run=dry_run)
    candidates, report.held_skipped, report.unconfigured_classes = _candidates(now)
    if dry_run:
        for rc, qs in candidates:
            count = qs.count()
            if count:
                report.disposed_by_class[rc.code] = count
                room = PREVIEW_IDS - len(report.disposed_ids)
                if room > 0:
                    report.disposed_ids += list(
                        qs.order_by("id").values_list("id", flat=True)[:room]
                    )
        return report

    run = DisposalRun.objects.create(as_of=now, trigger=trigger[:20], actor=actor)
    report.run_id = run.pk
    try:
        for rc, qs in candidates:
            last = 0
            while True:
                ids = list(
                    qs.filter(pk__gt=last)
                    .order_by("id")
                    .values_list("id", flat=True)[:DISPOSAL_CHUNK]
                )
                if not ids:
                    break
                last = ids[-1]
                disposed, skipped, blobs = _dispose_chunk(
                    run=run, record_class=rc, ids=ids, now=now
                )
                _delete_unreferenced_blobs(blobs, now=now, report=report)
                report.integrity_skipped += skipped
                if disposed:
                    report.disposed_by_class[rc.code] = report.disposed_by_class.get(
                        rc.code, 0
                    ) + len(disposed)
                    report.disposed_ids += disposed
    except Exception as exc:
        _finish_run(run, report, status=DisposalRunStatus.FAILED, error=repr(exc)[:2000])
        raise
    _finish_run(run, report, status=DisposalRunStatus.DONE)
    logger.info(
        "archive.disposal.done",
        extra={"run": run.pk, "disposed": report.disposed, "held": report.held_skipped},
    )
    return report


def _finish_run(
    run: DisposalRun, report: DisposalReport, *, status: DisposalRunStatus, error: str = ""
) -> None:
    with transaction.atomic():
        run.finished_at = timezone.now()
        run.status = status
        run.disposed_count = report.disposed
        run.disposed_by_class = dict(report.disposed_by_class)
        run.held_skipped = report.held_skipped
        run.integrity_skipped = report.integrity_skipped
        run.unconfigured_classes = list(report.unconfigured_classes)
        run.disposed_ids = list(report.disposed_ids)
        run.error = error
        run.save()
        summary = report.as_dict()
        ids = summary.pop("disposed_ids")
        kept = summary.pop("blobs_kept")
        audit(
            action="archive.disposal.run",
            actor=run.actor,
            obj=run,
            after={
                **summary,
                "status": status.value,
                "error": error,
                "disposed_ids": ids[:PREVIEW_IDS],
                "disposed_ids_truncated": len(ids) > PREVIEW_IDS,
                "blobs_kept": kept[:PREVIEW_IDS],
                "blobs_kept_truncated": len(kept) > PREVIEW_IDS,
            },
        )
