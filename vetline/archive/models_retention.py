"""Retention of the archive: record classes and their periods, legal holds, disposal runs and
the disposal records that document, in the integrity log, each record whose content was removed.

Loaded by the last line of :mod:`vetline.archive.models`.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils import timezone

from vetline.archive.retention import FINRA_SEC_CITATION

__all__ = [
    "BlobHoldState",
    "BlobHoldSyncRun",
    "BlobHoldSyncStatus",
    "DisposalRecord",
    "DisposalRun",
    "DisposalRunStatus",
    "HeldBlob",
    "LegalHold",
    "RecordClass",
]


class RecordClass(models.Model):
    """A class of archived records and how long the firm keeps it. Each archived record names
    its class by ``code``; a record whose class is not configured here is never disposed of."""

    code = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=120)
    retention_days = models.PositiveIntegerField(
        help_text=f"Days a record of this class is kept before its content may be disposed of. "
        f"{FINRA_SEC_CITATION}"
    )
    easily_accessible_days = models.PositiveIntegerField(
        help_text="Days from capture during which the record must be easily accessible "
        "(SEC 17a-4(b): the first 2 years)."
    )
    regulatory_basis = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(retention_days__gte=1),
                name="archive_recordclass_retention_positive",
                violation_error_message="The retention period must be at least one day.",
            ),
            models.CheckConstraint(
                condition=models.Q(easily_accessible_days__lte=models.F("retention_days")),
                name="archive_recordclass_accessible_within_retention",
                violation_error_message=(
                    "The easily accessible period cannot be longer than the retention period."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.retention_days} days)"


class LegalHold(models.Model):
    """A legal hold for one matter: the custodians (accounts, and people through the accounts
    they own), a date range and an optional text query. While a hold is active, no record it
    covers is disposed of. Released holds are kept with who released them and why."""

    matter_name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    accounts = models.ManyToManyField(
        "accounts.SocialAccount", blank=True, related_name="legal_holds"
    )
    people = models.ManyToManyField("identity.Person", blank=True, related_name="legal_holds")
    date_from = models.DateField(null=True, blank=True)
    date_to = models.DateField(null=True, blank=True)
    query = models.CharField(max_length=500, blank=True)
    placed_by = models.ForeignKey(
        "identity.Person", on_delete=models.PROTECT, related_name="legal_holds_placed"
    )
    placed_at = models.DateTimeField(default=timezone.now)
    released_by = models.ForeignKey(
        "identity.Person",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="legal_holds_released",
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(matter_name=""),
                name="archive_legalhold_matter_named",
                violation_error_message="A legal hold needs a matter name.",
            ),
            models.CheckConstraint(
                condition=models.Q(date_from__isnull=True)
                | models.Q(date_to__isnull=True)
                | models.Q(date_to__gte=models.F("date_from")),
                name="archive_legalhold_range_ordered",
                violation_error_message="The end of the date range is before its start.",
            ),
        ]
        indexes = [models.Index(fields=["released_at"], name="archive_legalhold_active_idx")]

    def __str__(self) -> str:
        return f"legal hold “{self.matter_name}”"

    @property
    def is_active(self) -> bool:
        return self.released_at is None

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("Legal holds are released, never deleted.")

    def blob_legal_holds(self) -> dict[str, Any]:
        """How many attachment blobs of the records this hold covers carry the blob store's
        legal hold (for the hold's page; see :func:`retention_selectors.hold_blob_summary`)."""
        from vetline.archive.retention_selectors import hold_blob_summary

        return hold_blob_summary(self)


class DisposalRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DisposalRun(models.Model):
    """One run of the disposal job and its report: how many records of each class had their
    content disposed of, how many expired records were kept because a legal hold covers them,
    and the ids of the disposed records."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    as_of = models.DateTimeField()  # the "now" expiry was computed against
    trigger = models.CharField(max_length=20)  # job, cli, api, web
    actor = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=DisposalRunStatus.choices, default=DisposalRunStatus.RUNNING
    )
    disposed_count = models.PositiveIntegerField(default=0)
    disposed_by_class = models.JSONField(default=dict, blank=True)
    held_skipped = models.PositiveIntegerField(default=0)
    integrity_skipped = models.PositiveIntegerField(default=0)
    unconfigured_classes = models.JSONField(default=list, blank=True)
    disposed_ids = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"disposal run {self.pk} ({self.status}, {self.disposed_count} disposed)"


class DisposalRecord(models.Model):
    """The documented disposal of one archived record's content. The record's row keeps its
    metadata and a tombstone naming its log index and original leaf hash; this row, and the
    ``disposal`` leaf it is logged as (``disposal_log_index``), let the log still verify.

    Append-only: the models refuse changes and database triggers (migration 0005) refuse
    UPDATE and DELETE. Its existence is what allows the one permitted change to a record."""

    record = models.OneToOneField(
        "archive.ArchivedRecord", on_delete=models.PROTECT, related_name="disposal"
    )
    log_index = models.BigIntegerField(unique=True)  # the disposed record's leaf
    original_leaf_hash = models.BinaryField(max_length=32)
    record_class = models.CharField(max_length=40)
    disposed_at = models.DateTimeField()
    reason = models.CharField(max_length=100)
    run = models.ForeignKey(DisposalRun, on_delete=models.PROTECT, related_name="disposals")
    disposal_log_index = models.BigIntegerField(unique=True)  # the disposal leaf
    tombstone = models.BinaryField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"disposal of record {self.record_id} (leaf {self.log_index})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise RuntimeError("Disposal records are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError("Disposal records are append-only.")


class BlobHoldState(models.TextChoices):
    OFF = "off", "Off"  # the store has no legal hold on it (confirmed, or never asked)
    ON = "on", "On"  # the store confirmed the legal hold on every version
    PENDING = "pending", "Being changed"  # a change was asked for; the answer is not recorded


class HeldBlob(models.Model):
    """An attachment blob that Vetline puts, or has put, under the blob store's legal hold
    because an active legal hold covers a record referring to it.

    ``wanted`` says what the active holds want (``holds`` are those holds); ``store_state``
    what the store was last confirmed to have, in the store named by ``store``. Before the
    store is asked, the state becomes ``pending`` (committed), so a crash between the store's
    answer and this row leaves ``pending`` and the next reconciliation asks again, whatever is
    wanted by then. Rows are kept after release as the history of the blob's holds."""

    sha256 = models.CharField(max_length=64, unique=True)
    holds = models.ManyToManyField(LegalHold, blank=True, related_name="held_blobs")
    wanted = models.BooleanField(default=True)
    wanted_since = models.DateTimeField(default=timezone.now)
    store_state = models.CharField(
        max_length=10, choices=BlobHoldState.choices, default=BlobHoldState.OFF
    )
    store = models.CharField(max_length=300, blank=True)  # where the state was confirmed
    applied_at = models.DateTimeField(null=True, blank=True)  # last turned on in the store
    released_at = models.DateTimeField(null=True, blank=True)  # last turned off in the store
    failures = models.PositiveIntegerField(default=0)  # consecutive failed attempts
    failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(store_state="on") | ~models.Q(store=""),
                name="archive_heldblob_on_in_a_store",
                violation_error_message="A blob on hold names the store holding it.",
            ),
        ]
        indexes = [
            models.Index(fields=["wanted", "store_state"], name="archive_heldblob_todo_idx"),
        ]

    def __str__(self) -> str:
        return f"held blob {self.sha256[:12]}… ({self.store_state})"


class BlobHoldSyncStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    ABANDONED = "abandoned", "Abandoned"  # its worker stopped (crash); a later run took over


class BlobHoldSyncRun(models.Model):
    """One reconciliation of the blob store's legal holds with the active legal holds: what it
    found wanted, what it turned on and off, what the store refused, and its progress. Only one
    runs at a time (a database constraint); a kick while one runs asks it to go round again."""

    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=20)  # job, hold, ingest, cli
    actor = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=BlobHoldSyncStatus.choices, default=BlobHoldSyncStatus.RUNNING
    )
    store = models.CharField(max_length=300, blank=True)
    rerun_requested = models.BooleanField(default=False)
    rounds = models.PositiveIntegerField(default=0)
    wanted_count = models.PositiveIntegerField(default=0)
    to_change = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)  # progress: store calls answered
    turned_on = models.PositiveIntegerField(default=0)
    turned_off = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True)  # the first few, with the store's words
    per_hold = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="running"),
                name="archive_blobholdsyncrun_one_running",
                violation_error_message="A legal hold reconciliation is already running.",
            ),
        ]

    def __str__(self) -> str:
        return f"blob legal hold reconciliation {self.pk} ({self.status})"
