"""Drafts of posts and replies, and their revisions. Every save of a draft is a new revision;
revisions are never changed afterwards, so an approval pinned to one stays meaningful."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from vetline.publishing.states import DraftState


class DraftKind(models.TextChoices):
    POST = "post", "Post"
    REPLY = "reply", "Reply to a captured message"


class Draft(models.Model):
    """A post or a reply that a publisher is preparing for one or more corporate accounts."""

    kind = models.CharField(max_length=10, choices=DraftKind.choices, default=DraftKind.POST)
    author = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    state = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in DraftState],
        default=DraftState.EDITING.value,
    )
    # The captured message this answers (archive record id; the archive is append-only, so a
    # plain id is stable).
    reply_to_record_id = models.BigIntegerField(null=True, blank=True)
    reply_to_remote_id = models.CharField(max_length=300, blank=True)
    # None: publish as soon as approved.
    scheduled_for = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind=DraftKind.POST) | ~Q(reply_to_remote_id=""),
                name="publishing_draft_reply_has_parent",
                violation_error_message="A reply needs the message it answers.",
            )
        ]

    def __str__(self) -> str:
        latest = self.revisions.order_by("-number").first() if self.pk else None
        text = latest.text if latest else ""
        return f"Draft {self.pk}: {text[:60]}"

    @property
    def draft_state(self) -> DraftState:
        return DraftState(self.state)

    @property
    def latest_revision(self) -> DraftRevision | None:
        return self.revisions.order_by("-number").first()


class Verdict(models.TextChoices):
    PASS = "pass", "Pass"
    INFO = "info", "Information"
    WARN = "warn", "Warning"
    ESCALATE = "escalate", "Escalate to compliance"
    BLOCK = "block", "Blocked"
    ERROR = "error", "Screening failed"


class DraftRevision(models.Model):
    """One saved version of a draft, with its screening result. Never changed after it is
    written, except for the compliance override of a block, which is recorded beside it."""

    draft = models.ForeignKey(Draft, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    author = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    text = models.TextField(blank=True)
    links = models.JSONField(default=list, blank=True)
    content_sha256 = models.CharField(max_length=64)
    verdict = models.CharField(max_length=10, choices=Verdict.choices, default=Verdict.PASS)
    # Per target: {"account_id": .., "text": .., "verdict": .., "hits": [...], "policy": {...}}
    screening = models.JSONField(default=list, blank=True)
    override_reason = models.TextField(blank=True)
    override_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    override_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["draft", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["draft", "number"],
                name="publishing_revision_unique_number",
                violation_error_message="This revision number is taken.",
            ),
            models.CheckConstraint(
                condition=Q(override_by__isnull=True) | ~Q(override_reason=""),
                name="publishing_revision_override_has_reason",
                violation_error_message="An override needs a written reason.",
            ),
        ]

    def __str__(self) -> str:
        return f"Draft {self.draft_id} revision {self.number}"

    @property
    def blocked(self) -> bool:
        return self.verdict == Verdict.BLOCK and self.override_by_id is None

    @property
    def escalated(self) -> bool:
        return self.verdict == Verdict.ESCALATE or (
            self.verdict == Verdict.BLOCK and self.override_by_id is not None
        )


class RevisionTarget(models.Model):
    """One account a revision is for, with its per-network variant of the text (empty: the
    revision's main text)."""

    revision = models.ForeignKey(DraftRevision, on_delete=models.PROTECT, related_name="targets")
    account = models.ForeignKey(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="draft_targets"
    )
    variant_text = models.TextField(blank=True)

    class Meta:
        ordering = ["revision", "account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["revision", "account"],
                name="publishing_target_unique",
                violation_error_message="This account is already a target.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.revision} to {self.account}"

    @property
    def effective_text(self) -> str:
        return self.variant_text or self.revision.text


class DraftMedia(models.Model):
    """An attachment of a revision: its bytes (size- and type-checked), hash and alt text."""

    revision = models.ForeignKey(DraftRevision, on_delete=models.PROTECT, related_name="media")
    position = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    mime_type = models.CharField(max_length=100)
    size_bytes = models.PositiveIntegerField()
    alt_text = models.CharField(max_length=1000, blank=True)
    content = models.BinaryField()

    class Meta:
        ordering = ["revision", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["revision", "position"],
                name="publishing_media_unique_position",
                violation_error_message="Two attachments cannot share a position.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.mime_type} ({self.size_bytes} bytes)"
