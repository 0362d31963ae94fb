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
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

from django.db import IntegrityError, models, transaction
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from vetline.archive.blob_holds import Plan, Recorded, blob_names, plan, wanted_change
from vetline.archive.blobs import (
    BlobDeletion,
    BlobError,
    BlobStore,
    DeletionOutcome,
    LegalHoldChange,
    LegalHoldOutcome,
    default_store,
)
from vetline.archive.integrity.canonical import tombstone_bytes
from vetline.archive.leaves import record_leaf_from_row
from vetline.archive.log import LogAppender, locked_state
from vetline.archive.models import ArchivedRecord, LeafKind, LogLeaf
from vetline.archive.models_retention import (
    BlobHoldState,
    BlobHoldSyncRun,
    BlobHoldSyncStatus,
    DisposalRecord,
    DisposalRun,
    DisposalRunStatus,
    HeldBlob,
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

#: Blobs asked about per chunk of the legal hold reconciliation (one heartbeat, two commits).
SYNC_CHUNK: Final = 100
SYNC_LOOKUP_BATCH: Final = 500
#: A running reconciliation without a heartbeat for this long is taken to have died.
SYNC_LEASE: Final = dt.timedelta(minutes=15)
#: Consecutive failed runs for one blob before compliance is alerted.
SYNC_ALERT_AFTER_FAILURES: Final = 3
SYNC_ALERT_CODE: Final = "archive.blob_legal_hold"
SYNC_FAILURES_KEPT: Final = 50

T = TypeVar("T")


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
    query = _checked_scope(accounts, people, date_from, date_to, query)
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
        request_blob_hold_sync(trigger="hold")
    logger.info("archive.hold.placed", extra={"hold": hold.pk})
    return hold


def _hold_scope(hold: LegalHold) -> dict[str, object]:
    return {
        "account_ids": sorted(hold.accounts.values_list("pk", flat=True)),
        "person_ids": sorted(hold.people.values_list("pk", flat=True)),
        "date_from": hold.date_from.isoformat() if hold.date_from else None,
        "date_to": hold.date_to.isoformat() if hold.date_to else None,
        "query": hold.query,
    }


def _checked_scope(
    accounts: Sequence[SocialAccount],
    people: Sequence[Person],
    date_from: dt.date | None,
    date_to: dt.date | None,
    query: str,
) -> str:
    """What a hold covers, checked (ValidationFailed naming the field); returns the query."""
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
    return query


def update_legal_hold_scope(
    *,
    actor: Person,
    hold: LegalHold,
    accounts: Sequence[SocialAccount],
    people: Sequence[Person],
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    query: str = "",
) -> LegalHold:
    """Change what an active hold covers: its custodians, date range and query (compliance
    officers). Audited ``archive.hold.update`` with the scope before and after; the blob store's
    legal holds follow after commit (:func:`sync_blob_legal_holds`). Takes the log lock, as
    placing a hold does, so disposal sees the new scope at its next chunk. Records that leave
    the scope become disposable once expired, exactly as after a release."""
    require(actor, Perm.LEGAL_HOLD)
    query = _checked_scope(accounts, people, date_from, date_to, query)
    with transaction.atomic():
        locked_state()
        row = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if row.released_at is not None:
            raise Conflict("This hold was released; place a new one.")
        before = _hold_scope(row)
        row.date_from, row.date_to, row.query = date_from, date_to, query
        row.save(update_fields=["date_from", "date_to", "query"])
        row.accounts.set(accounts)
        row.people.set(people)
        after = _hold_scope(row)
        if before == after:
            return row
        audit(action="archive.hold.update", actor=actor, obj=row, before=before, after=after)
        request_blob_hold_sync(trigger="hold")
    logger.info("archive.hold.updated", extra={"hold": row.pk})
    return row


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
        request_blob_hold_sync(trigger="hold")
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


# --------------------------------------------------------------------------- blob legal holds


def request_blob_hold_sync(*, trigger: str) -> None:
    """Queue a reconciliation of the blob store's legal holds once the current transaction
    commits (call inside the transaction of the change that asks for it). A kick only: the
    periodic job catches up with any kick lost in a crash."""
    transaction.on_commit(lambda: _kick_blob_hold_sync(trigger))


def _kick_blob_hold_sync(trigger: str) -> None:
    from vetline.archive.retention_tasks import sync_blob_legal_holds_task

    try:
        sync_blob_legal_holds_task(trigger)
    except Exception:  # the hourly job catches up; a hold must not fail for want of a queue
        logger.exception("archive.blob_holds.kick_failed", extra={"trigger": trigger})


def _claim_sync_run(*, trigger: str, actor: Person | None) -> BlobHoldSyncRun | None:
    """Start a run, or, when one is already running, ask it to go round again and return None.
    A run whose heartbeat is older than :data:`SYNC_LEASE` is abandoned (its worker died)."""
    for _ in range(3):
        try:
            with transaction.atomic():
                return BlobHoldSyncRun.objects.create(trigger=trigger[:20], actor=actor)
        except IntegrityError:
            pass
        with transaction.atomic():
            running = (
                BlobHoldSyncRun.objects.select_for_update()
                .filter(status=BlobHoldSyncStatus.RUNNING)
                .first()
            )
            if running is None:
                continue  # it finished meanwhile
            if running.heartbeat_at < timezone.now() - SYNC_LEASE:
                running.status = BlobHoldSyncStatus.ABANDONED
                running.finished_at = timezone.now()
                running.error = (
                    f"no heartbeat since {running.heartbeat_at.isoformat()}: its worker stopped; "
                    f"run taken over by a {trigger} run"
                )
                running.save(update_fields=["status", "finished_at", "error"])
                audit(
                    action="archive.hold.blobs_sync",
                    actor=None,
                    obj=running,
                    after={"status": running.status, "error": running.error},
                )
                continue
            running.rerun_requested = True
            running.save(update_fields=["rerun_requested"])
            return None
    return None


def _wanted_blobs() -> dict[str, set[int]]:
    """Every blob a record under an active hold refers to, with the holds covering it."""
    from vetline.archive.retention_selectors import active_holds, records_under_hold

    wanted: dict[str, set[int]] = {}
    for hold_id in active_holds().order_by("pk").values_list("pk", flat=True):
        records = records_under_hold(
            ArchivedRecord.objects.all(), holds=LegalHold.objects.filter(pk=hold_id)
        )
        for attachments in (
            records.exclude(attachments=[])
            .values_list("attachments", flat=True)
            .iterator(chunk_size=2000)
        ):
            for name in blob_names(attachments):
                wanted.setdefault(name, set()).add(hold_id)
    return wanted


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _record_wanted(wanted: dict[str, set[int]], *, now: dt.datetime) -> Plan:
    """Make the table's wanted set and hold links equal ``wanted`` (one transaction)."""
    links = HeldBlob.holds.through.objects
    with transaction.atomic():
        linked: dict[str, set[int]] = {}
        for name, hold_id in links.values_list("heldblob__sha256", "legalhold_id"):
            linked.setdefault(name, set()).add(hold_id)
        recorded: dict[str, Recorded] = {}
        for name, is_wanted in HeldBlob.objects.filter(
            models.Q(wanted=True) | models.Q(pk__in=links.values("heldblob_id"))
        ).values_list("sha256", "wanted"):
            recorded[name] = Recorded(is_wanted, frozenset(linked.get(name, ())))
        unknown = sorted(set(wanted) - set(recorded))
        for part in _chunks(unknown, SYNC_LOOKUP_BATCH):
            for name, is_wanted in HeldBlob.objects.filter(sha256__in=part).values_list(
                "sha256", "wanted"
            ):
                recorded[name] = Recorded(is_wanted, frozenset())
        changes = plan(wanted, recorded)
        if changes.empty:
            return changes
        HeldBlob.objects.bulk_create(
            [HeldBlob(sha256=name, wanted=True, wanted_since=now) for name in changes.create],
            batch_size=SYNC_LOOKUP_BATCH,
        )
        for part in _chunks(changes.rewant, SYNC_LOOKUP_BATCH):
            HeldBlob.objects.filter(sha256__in=part).update(wanted=True, wanted_since=now)
        for part in _chunks(changes.unwant, SYNC_LOOKUP_BATCH):
            HeldBlob.objects.filter(sha256__in=part).update(wanted=False)
        touched = sorted({name for name, _ in changes.links_add | changes.links_remove})
        ids: dict[str, int] = {}
        for part in _chunks(touched, SYNC_LOOKUP_BATCH):
            ids.update(HeldBlob.objects.filter(sha256__in=part).values_list("sha256", "pk"))
        by_hold: dict[int, list[int]] = {}
        for name, hold_id in changes.links_remove:
            by_hold.setdefault(hold_id, []).append(ids[name])
        for hold_id, blob_ids in by_hold.items():
            for ids_part in _chunks(sorted(blob_ids), SYNC_LOOKUP_BATCH):
                links.filter(legalhold_id=hold_id, heldblob_id__in=ids_part).delete()
        links.bulk_create(
            [
                links.model(heldblob_id=ids[name], legalhold_id=hold_id)
                for name, hold_id in sorted(changes.links_add)
            ],
            batch_size=SYNC_LOOKUP_BATCH,
        )
    return changes


def _store_todo(where: str) -> models.QuerySet[HeldBlob]:
    """Rows whose store state may differ from what is wanted: the database side of
    :func:`blob_holds.wanted_change`, which decides each row."""
    return HeldBlob.objects.filter(
        models.Q(store_state=BlobHoldState.PENDING)
        | models.Q(wanted=True, store_state=BlobHoldState.OFF)
        | models.Q(wanted=True, store_state=BlobHoldState.ON) & ~models.Q(store=where)
        | models.Q(wanted=False, store_state=BlobHoldState.ON)
    )


def _apply_to_store(
    run: BlobHoldSyncRun,
    store: BlobStore | None,
    unavailable: str,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Ask the store for every change the table wants, in chunks: mark the chunk ``pending``
    (committed), ask the store, record its answers. Refusals and failures stay ``pending`` and
    count a failure; the next run asks again."""
    where = store.where if store is not None else ""
    todo = _store_todo(where)
    if store is None:
        # Nothing is asked, so nothing becomes pending, and blobs confirmed on hold in the
        # store last used are not put in doubt by a configuration or network problem.
        todo = todo.exclude(wanted=True, store_state=BlobHoldState.ON)
    run.to_change += todo.count()
    run.save(update_fields=["to_change"])
    last = 0
    while True:
        with transaction.atomic():
            found = list(
                todo.filter(pk__gt=last)
                .order_by("pk")
                .values_list("pk", "sha256", "wanted", "store_state", "store")[:SYNC_CHUNK]
            )
            if not found:
                return
            last = found[-1][0]
            rows: list[tuple[int, str, bool]] = []
            for pk, name, wanted, state, row_store in found:
                on = wanted_change(wanted=wanted, state=state, row_store=row_store, store=where)
                if on is not None:
                    rows.append((pk, name, on))
            if store is not None:
                HeldBlob.objects.filter(pk__in=[r[0] for r in rows]).update(
                    store_state=BlobHoldState.PENDING
                )
            BlobHoldSyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
        results: list[tuple[int, LegalHoldChange]] = []
        for pk, name, on in rows:
            if store is None:
                result = LegalHoldChange(name, on, LegalHoldOutcome.FAILED, detail=unavailable)
            else:
                result = store.set_legal_hold(name, on)
                if result.outcome == LegalHoldOutcome.MISSING and not on:
                    result = LegalHoldChange(name, on, LegalHoldOutcome.APPLIED)  # nothing held
            results.append((pk, result))
        _record_answers(run, results, where=where)
        if progress is not None:
            progress(run.changed, run.to_change)


def _record_answers(
    run: BlobHoldSyncRun, results: list[tuple[int, LegalHoldChange]], *, where: str
) -> None:
    now = timezone.now()
    turned_on = [pk for pk, r in results if r.ok and r.on]
    turned_off = [pk for pk, r in results if r.ok and not r.on]
    failed: dict[str, list[int]] = {}
    for pk, r in results:
        if not r.ok:
            failed.setdefault(f"{r.outcome.value}: {r.detail}"[:2000], []).append(pk)
    with transaction.atomic():
        if turned_on:
            HeldBlob.objects.filter(pk__in=turned_on).update(
                store_state=BlobHoldState.ON,
                store=where[:300],
                applied_at=now,
                failures=0,
                failing_since=None,
                last_error="",
            )
        if turned_off:
            HeldBlob.objects.filter(pk__in=turned_off).update(
                store_state=BlobHoldState.OFF,
                store=where[:300],
                released_at=now,
                failures=0,
                failing_since=None,
                last_error="",
            )
        for detail, pks in failed.items():
            HeldBlob.objects.filter(pk__in=pks).update(
                failures=models.F("failures") + 1,
                failing_since=Coalesce(models.F("failing_since"), models.Value(now)),
                last_error=detail,
            )
        run.changed += len(results)
        run.turned_on += len(turned_on)
        run.turned_off += len(turned_off)
        run.failed += sum(len(p) for p in failed.values())
        room = SYNC_FAILURES_KEPT - len(run.failures)
        if room > 0:
            run.failures = run.failures + [r.as_dict() for _, r in results if not r.ok][:room]
        run.heartbeat_at = now
        run.save(
            update_fields=[
                "changed",
                "turned_on",
                "turned_off",
                "failed",
                "failures",
                "heartbeat_at",
            ]
        )
    for _, r in results:
        if not r.ok:
            logger.warning("archive.blob_holds.change_failed", extra=r.as_dict())


def blob_hold_summary_by_hold(where: str | None) -> dict[str, dict[str, int]]:
    """Per hold (by id, as a string for JSON): its blobs, and how many are on hold in the store
    ``where`` (None: in whichever store they were confirmed, when the store is unavailable)."""
    links = HeldBlob.holds.through.objects
    on = models.Q(heldblob__store_state=BlobHoldState.ON)
    if where is not None:
        on &= models.Q(heldblob__store=where)
    out: dict[str, dict[str, int]] = {}
    for row in links.values("legalhold_id").annotate(
        blobs=models.Count("id"), on=models.Count("id", filter=on)
    ):
        out[str(row["legalhold_id"])] = {"blobs": row["blobs"], "on": row["on"]}
    return out


def _alert_on_persistent_failures(run: BlobHoldSyncRun) -> None:
    """Open (once) a critical alert for compliance when blobs keep failing; close it when none
    fails any more. Call inside a transaction."""
    from vetline.connectors.actions import raise_alert
    from vetline.connectors.models import Alert, AlertSeverity

    stuck = HeldBlob.objects.filter(failures__gte=SYNC_ALERT_AFTER_FAILURES)
    count = stuck.count()
    if count:
        first = stuck.order_by("failing_since", "pk").first()
        assert first is not None
        raise_alert(
            code=SYNC_ALERT_CODE,
            severity=AlertSeverity.CRITICAL,
            account=None,
            title=f"{count} held attachment blob(s) cannot be put on or off the blob store's "
            f"legal hold",
            body=(
                f"The blob store has refused or failed to change the legal hold of {count} "
                f"attachment blob(s) {SYNC_ALERT_AFTER_FAILURES} or more times in a row "
                f"(reconciliation run #{run.pk}). Records under a legal hold may have "
                f"attachments that the store does not protect from deletion. The first, since "
                f"{first.failing_since:%Y-%m-%d %H:%M} UTC: blob {first.sha256}: "
                f"{first.last_error}\n\nCheck the credentials (s3:PutObjectLegalHold, "
                f"s3:GetObjectLegalHold) and that the bucket has Object Lock, then run "
                f"`vetline archive legal-hold-sync`."
            ),
            link=reverse("archive:retention:index"),
        )
        return
    if HeldBlob.objects.filter(failures__gt=0).exists():
        return
    opened = list(
        Alert.objects.filter(
            account=None, code=SYNC_ALERT_CODE, resolved_at__isnull=True
        ).values_list("pk", flat=True)
    )
    if opened:
        Alert.objects.filter(pk__in=opened).update(resolved_at=timezone.now())
        audit(
            action="connectors.alert.resolve",
            actor=None,
            actor_name="archive",
            obj=run,
            after={"alert_ids": opened, "reason": "every held blob's legal hold is in place"},
        )


def _finish_sync_round(run: BlobHoldSyncRun, store_where: str | None, changes: list[Plan]) -> bool:
    """Close the run (status, per-hold summary, audit events) unless a kick asked it to go
    round again meanwhile: then return True."""
    with transaction.atomic():
        row = BlobHoldSyncRun.objects.select_for_update().get(pk=run.pk)
        if row.rerun_requested:
            row.rerun_requested = False
            row.heartbeat_at = timezone.now()
            row.save(update_fields=["rerun_requested", "heartbeat_at"])
            return True
        previous = (
            BlobHoldSyncRun.objects.filter(status=BlobHoldSyncStatus.DONE)
            .exclude(pk=run.pk)
            .order_by("-finished_at", "-pk")
            .values_list("per_hold", flat=True)
            .first()
        ) or {}
        per_hold = blob_hold_summary_by_hold(store_where)
        _alert_on_persistent_failures(run)
        run.status = BlobHoldSyncStatus.DONE
        run.finished_at = timezone.now()
        run.per_hold = per_hold
        run.store = (store_where or "")[:300]
        run.wanted_count = HeldBlob.objects.filter(wanted=True).count()
        run.save()
        table = {k: sum(p.counts()[k] for p in changes) for k in Plan().counts()}
        changed = any(table.values()) or run.changed or per_hold != previous
        if changed:
            audit(
                action="archive.hold.blobs_sync",
                actor=run.actor,
                obj=run,
                after={
                    "status": run.status,
                    "trigger": run.trigger,
                    "store": run.store,
                    "rounds": run.rounds,
                    "wanted": run.wanted_count,
                    "table": table,
                    "asked": run.changed,
                    "turned_on": run.turned_on,
                    "turned_off": run.turned_off,
                    "failed": run.failed,
                    "failures": run.failures[:20],
                    "per_hold": per_hold,
                },
            )
        holds = LegalHold.objects.in_bulk([int(k) for k in set(per_hold) | set(previous)])
        for key in sorted(set(per_hold) | set(previous), key=int):
            before, after = previous.get(key), per_hold.get(key, {"blobs": 0, "on": 0})
            hold = holds.get(int(key))
            if hold is None or before == after:
                continue
            audit(
                action="archive.hold.blobs",
                actor=run.actor,
                obj=hold,
                before=before,
                after={**after, "run_id": run.pk, "store": run.store},
            )
    return False


def sync_blob_legal_holds(
    *,
    actor: Person | None = None,
    trigger: str = "job",
    progress: Callable[[int, int], None] | None = None,
) -> BlobHoldSyncRun | None:
    """Reconcile the blob store's legal holds with the active legal holds: every blob a record
    under an active hold refers to gets the store's legal hold on, and every blob Vetline put on
    hold that no active hold covers any more gets it off.

    Two steps, each re-runnable: the wanted set is computed and recorded in :class:`HeldBlob`
    (one transaction), then the store is asked for the differences in chunks (each chunk
    marked ``pending`` first, so a crash between the store's answer and the table leaves rows
    the next run asks about again). Idempotent. Refusals and failures are recorded on the rows,
    reported in the run, retried by the next run, and a blob failing
    :data:`SYNC_ALERT_AFTER_FAILURES` runs in a row opens a critical alert for compliance.

    With the local filesystem store nothing can be enforced: the table is still kept (a later
    switch to S3 applies it) and disposal refuses held records anyway.

    Returns the run, or None when another run is in progress (it is asked to go round again,
    so the change that called this is seen). Audited once per run that changed something
    (``archive.hold.blobs_sync``, with counts and a per-hold summary) and once per hold whose
    summary changed (``archive.hold.blobs``); not per blob.
    ``actor`` None is the system (the jobs, the CLI)."""
    if actor is not None:
        require(actor, Perm.LEGAL_HOLD)
    run = _claim_sync_run(trigger=trigger, actor=actor)
    if run is None:
        logger.info("archive.blob_holds.already_running", extra={"trigger": trigger})
        return None
    store: BlobStore | None = None
    unavailable = ""
    try:
        store = default_store()
    except BlobError as exc:
        unavailable = f"the blob store cannot be used: {exc}"
    where = store.where if store is not None else ""
    applies = store is None or store.legal_hold_supported
    changes: list[Plan] = []
    try:
        while True:
            run.rounds += 1
            run.save(update_fields=["rounds"])
            changes.append(_record_wanted(_wanted_blobs(), now=timezone.now()))
            if applies:
                _apply_to_store(run, store, unavailable, progress)
            if not _finish_sync_round(run, where if store is not None else None, changes):
                break
    except Exception as exc:
        with transaction.atomic():
            run.status = BlobHoldSyncStatus.FAILED
            run.finished_at = timezone.now()
            run.error = repr(exc)[:2000]
            run.save()
            audit(
                action="archive.hold.blobs_sync",
                actor=run.actor,
                obj=run,
                after={"status": run.status, "error": run.error, "asked": run.changed},
            )
        raise
    logger.info(
        "archive.blob_holds.done",
        extra={
            "run": run.pk,
            "on": run.turned_on,
            "off": run.turned_off,
            "failed": run.failed,
            "enforced": applies,
        },
    )
    return run
