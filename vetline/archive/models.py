"""The archive: captured communications, their screening verdicts, the quarantine of bad input,
and the integrity log (leaves, subtree hashes, signed tree heads, verification runs).

Records and the log are append-only at three levels: the models refuse updates and deletes, no
UI or API offers them, and database triggers (migration 0002) reject UPDATE and DELETE.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils import timezone

from vetline.accounts.models import Network


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or remove an archived record or a log entry."""


class AppendOnlyQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only.")


class AppendOnlyModel(models.Model):
    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only.")


class RecordKind(models.TextChoices):
    POST = "post", "Post"
    REPLY = "reply", "Reply"
    COMMENT = "comment", "Comment"
    SHARE = "share", "Share / repost"
    DIRECT_MESSAGE = "direct_message", "Direct message"
    PROFILE_SNAPSHOT = "profile_snapshot", "Profile snapshot"
    EDIT = "edit", "Edit"
    DELETION = "deletion", "Deletion"
    REACTION = "reaction", "Reaction"


class Direction(models.TextChoices):
    OUTBOUND = "outbound", "Outbound (from our account)"
    INBOUND = "inbound", "Inbound (from a third party)"


class ArchivedRecord(AppendOnlyModel):
    """One captured communication, one version of it: a post, reply, comment, message, profile
    snapshot, edit or deletion on a registered account, exactly as captured.

    Idempotent on (network, account, remote id, version). An edit or a deletion is a new version
    that links to the previous one; no version is ever modified. ``log_index`` is the record's
    leaf in the integrity log.
    """

    network = models.CharField(max_length=20, choices=Network.choices)
    account = models.ForeignKey(
        "accounts.SocialAccount",
        on_delete=models.PROTECT,
        related_name="archived_records",
        db_index=False,  # the unique key below starts with the account
    )
    remote_id = models.CharField(max_length=300)
    version = models.PositiveIntegerField(default=1)
    previous_version = models.ForeignKey(
        "self",
        to_field="log_index",
        db_column="previous_log_index",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    record_class = models.CharField(max_length=40, default="business_communication")
    kind = models.CharField(max_length=20, choices=RecordKind.choices)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    author_handle = models.CharField(max_length=300, blank=True)
    participants = models.JSONField(default=list, blank=True)
    conversation_id = models.CharField(max_length=300, blank=True)
    thread_id = models.CharField(max_length=300, blank=True)
    parent_remote_id = models.CharField(max_length=300, blank=True)
    text = models.TextField(blank=True)
    attachments = models.JSONField(default=list, blank=True)  # SHA-256 hex of blobs
    network_timestamp = models.DateTimeField(null=True, blank=True)
    captured_at = models.DateTimeField(default=timezone.now)
    raw_payload = models.BinaryField()
    raw_payload_sha256 = models.CharField(max_length=64)
    # SHA-256 of the canonical content (everything but capture metadata): decides whether a
    # re-ingested item is the same item (duplicate) or a different one (conflict).
    content_sha256 = models.CharField(max_length=64)
    adopted = models.BooleanField(default=False)  # third-party content is non-adopted
    # Null: not published through Vetline (a link to the approval model comes with publishing).
    approval_ref = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    source = models.CharField(max_length=100, blank=True)  # api, import:FILE, connector:…
    log_index = models.BigIntegerField(unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "network", "remote_id", "version"],
                name="archive_record_unique_version",
                violation_error_message="This version of the item is already archived.",
            ),
            models.CheckConstraint(
                condition=models.Q(version__gte=1),
                name="archive_record_version_positive",
                violation_error_message="Versions start at 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.network} {self.remote_id} v{self.version} ({self.kind})"


class ScreeningVerdict(models.Model):
    """What the policy engine said about one archived record. Computed data, kept apart from
    the immutable record so a record can be screened again under a newer policy."""

    record = models.ForeignKey(ArchivedRecord, on_delete=models.PROTECT, related_name="verdicts")
    policy_name = models.CharField(max_length=200, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    scope = models.CharField(max_length=30)
    verdict = models.CharField(max_length=20)  # pass, info, warn, escalate, block, error
    hits = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    screened_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-screened_at", "-id"]

    def __str__(self) -> str:
        return f"{self.verdict} on record {self.record_id}"


class QuarantineStatus(models.TextChoices):
    QUARANTINED = "quarantined", "Quarantined"
    RELEASED = "released", "Released (ingested on re-processing)"


class QuarantinedItem(models.Model):
    """An ingest item that could not be archived (malformed, oversized, invalid UTF-8, or a
    conflicting second version of an archived item). Kept byte for byte with the reason, so
    nothing is silently dropped; it can be inspected and re-processed."""

    account = models.ForeignKey(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="quarantined_items"
    )
    source = models.CharField(max_length=100, blank=True)
    position = models.PositiveIntegerField(default=0)  # index of the item in its batch
    reason_code = models.CharField(max_length=40)
    reason = models.TextField()
    raw = models.BinaryField()
    remote_id = models.CharField(max_length=300, blank=True)
    conflicting_record = models.ForeignKey(
        ArchivedRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=20, choices=QuarantineStatus.choices, default=QuarantineStatus.QUARANTINED
    )
    attempts = models.PositiveIntegerField(default=1)
    received_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_record = models.ForeignKey(
        ArchivedRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "account"], name="archive_quarantine_idx")]

    def __str__(self) -> str:
        return f"quarantined item {self.pk}: {self.reason_code}"


class LeafKind(models.IntegerChoices):
    RECORD = 1, "record"
    AUDIT_EVENT = 2, "audit_event"
    DISPOSAL = 3, "disposal"


class LogLeaf(AppendOnlyModel):
    """One entry of the integrity log: its RFC 6962 leaf hash and the row whose canonical bytes
    it hashes (an archived record, an audit event, or a disposal)."""

    index = models.BigIntegerField(primary_key=True)
    leaf_hash = models.BinaryField(max_length=32)
    kind = models.PositiveSmallIntegerField(choices=LeafKind.choices)
    object_id = models.BigIntegerField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(
                fields=["object_id"],
                condition=models.Q(kind=2),
                name="archive_leaf_audit_event_once",
                violation_error_message="This audit event is already in the log.",
            )
        ]

    def __str__(self) -> str:
        return f"leaf {self.index}"


class LogNode(AppendOnlyModel):
    """The hash of one complete subtree of the log (level >= 1), cached forever: complete
    subtrees never change. Only every ``NODE_LEVEL_STRIDE``-th level is stored; the levels in
    between are recomputed from at most 2**(stride-1) stored hashes when a proof needs them."""

    key = models.BigIntegerField(primary_key=True)  # level << 48 | index
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"node ({self.level}, {self.index})"


class LogState(models.Model):
    """The log's head, one row: its size and right-edge frontier (the complete subtrees whose
    fold is the root). Appenders lock this row, which serialises appends."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    frontier = models.BinaryField(default=b"")
    audit_high_water = models.BigIntegerField(default=0)  # highest audit event id logged
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"log of {self.size} entries"


class TreeHead(AppendOnlyModel):
    """A signed tree head: the log's size and root at one moment, signed with Ed25519."""

    tree_size = models.BigIntegerField()
    root_hash = models.BinaryField(max_length=32)
    timestamp_ms = models.BigIntegerField()
    key_id = models.BinaryField(max_length=32)
    signature = models.BinaryField(max_length=64)
    version = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-tree_size", "-id"]

    def __str__(self) -> str:
        return f"tree head of size {self.tree_size}"


class VerificationRun(models.Model):
    """One full verification of the integrity log, and what it found."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=20)  # cli, job, api
    ok = models.BooleanField(default=False)
    log_size = models.BigIntegerField(default=0)
    entries_checked = models.BigIntegerField(default=0)
    heads_checked = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    findings = models.JSONField(default=list, blank=True)  # the first ones, with detail
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"verification {self.started_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'FAILED'}"


from vetline.archive.models_retention import *  # noqa: E402,F403
from vetline.archive.models_search import *  # noqa: E402,F403
