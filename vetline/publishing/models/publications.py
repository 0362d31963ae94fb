"""Publications (one per target account of an approved revision: the unit of exactly-once
publishing and of the FINRA 2210 record), emergency freezes, and in-app notifications."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from vetline.publishing.states import PublicationState


class Publication(models.Model):
    """Sending one approved revision to one account, and the record of its use: who approved
    it and when (through ``request``), first use (``published_at``) and last use
    (``last_used_at``: deleted or edited away on the network)."""

    draft = models.ForeignKey("publishing.Draft", on_delete=models.PROTECT, related_name="+")
    revision = models.ForeignKey(
        "publishing.DraftRevision", on_delete=models.PROTECT, related_name="publications"
    )
    account = models.ForeignKey(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="publications"
    )
    request = models.ForeignKey(
        "publishing.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="publications",
    )
    state = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in PublicationState],
        default=PublicationState.QUEUED.value,
    )
    text = models.TextField()
    content_sha256 = models.CharField(max_length=64)
    scheduled_for = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    intent_at = models.DateTimeField(null=True, blank=True)
    intent_token = models.CharField(max_length=64, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)  # first use
    last_used_at = models.DateTimeField(null=True, blank=True)  # last use
    last_use_reason = models.CharField(max_length=40, blank=True)
    remote_id = models.CharField(max_length=300, blank=True)
    url = models.CharField(max_length=1000, blank=True)
    last_error = models.CharField(max_length=1000, blank=True)
    archived_record_id = models.BigIntegerField(null=True, blank=True)
    approval_record_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["scheduled_for", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["revision", "account"],
                name="publishing_publication_once_per_target",
                violation_error_message="This revision is already queued for that account.",
            ),
            models.CheckConstraint(
                condition=~Q(state=PublicationState.PUBLISHED) | ~Q(remote_id=""),
                name="publishing_publication_published_has_remote_id",
                violation_error_message="A published item has its network id.",
            ),
        ]
        indexes = [models.Index(fields=["state", "scheduled_for"])]

    def __str__(self) -> str:
        return f"Publication {self.pk} of {self.revision} to {self.account}"

    @property
    def approval_ref(self) -> str:
        return f"publishing.publication:{self.pk}"

    @property
    def publication_state(self) -> PublicationState:
        return PublicationState(self.state)


class Freeze(models.Model):
    """An emergency freeze: nothing scheduled or approved publishes on the frozen accounts
    (all of them when ``all_accounts``) until it is lifted, and lifting asks for every held
    item to be re-confirmed or withdrawn."""

    reason = models.TextField()
    all_accounts = models.BooleanField(default=True)
    accounts = models.ManyToManyField("accounts.SocialAccount", related_name="+", blank=True)
    started_by = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    lifted_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(reason=""),
                name="publishing_freeze_has_reason",
                violation_error_message="A freeze needs a reason.",
            )
        ]

    def __str__(self) -> str:
        return f"Freeze {self.pk}: {self.reason[:60]}"

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class HeldResolution(models.TextChoices):
    PENDING = "pending", "Waiting for a decision"
    RECONFIRMED = "reconfirmed", "Re-confirmed"
    WITHDRAWN = "withdrawn", "Withdrawn"


class HeldItem(models.Model):
    """A publication that a freeze stopped, and what was decided about it."""

    freeze = models.ForeignKey(Freeze, on_delete=models.PROTECT, related_name="held")
    publication = models.ForeignKey(Publication, on_delete=models.PROTECT, related_name="+")
    resolution = models.CharField(
        max_length=20, choices=HeldResolution.choices, default=HeldResolution.PENDING
    )
    resolved_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["freeze", "publication_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["freeze", "publication"],
                name="publishing_helditem_unique",
                violation_error_message="This item is already held by the freeze.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.publication} held by {self.freeze}"


class Notification(models.Model):
    """An in-app notification (also e-mailed through Django's e-mail backend)."""

    person = models.ForeignKey("identity.Person", on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["person", "read_at"])]

    def __str__(self) -> str:
        return self.title


class RogueStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"


class RoguePost(models.Model):
    """A post captured on a corporate account that did not come through Vetline publishing."""

    record_id = models.BigIntegerField(unique=True)
    account = models.ForeignKey(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="rogue_posts"
    )
    remote_id = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    verdict = models.CharField(max_length=10, blank=True)
    hits = models.JSONField(default=list, blank=True)
    alert_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=RogueStatus.choices, default=RogueStatus.OPEN)
    detected_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-detected_at"]

    def __str__(self) -> str:
        return f"Rogue post {self.remote_id} on {self.account}"


class RogueCursor(models.Model):
    """How far the rogue-post alarm has looked through archived records (one row)."""

    last_record_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"rogue cursor at {self.last_record_id}"
