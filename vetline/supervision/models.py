"""The supervision desk: populations, review queues and routing, review items with their
evidence of review, sampling plans and their runs, retroactive screening runs and the
periodic supervision report.

Evidence of review (:class:`ReviewAction`) is append-only: the model refuses updates and
deletes, and no page, API or admin offers them.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.utils import timezone

from vetline.supervision.routing import PopulationSpec
from vetline.supervision.states import Disposition, ReviewState


class Severity(models.IntegerChoices):
    """The policy engine's severities (vetline.policy.engine.Severity), as stored here."""

    INFO = 1, "info"
    WARN = 2, "warn"
    ESCALATE = 3, "escalate"
    BLOCK = 4, "block"


class SupervisionSettings(models.Model):
    """How supervision screens captured records, one row: which policy (none: the archive's
    default policy), from which severity a record becomes a review item, and the cursor of
    the flag follower (the highest archived record id already looked at)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    policy = models.ForeignKey(
        "policy.Policy", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    flag_min_severity = models.PositiveSmallIntegerField(
        choices=Severity.choices, default=Severity.WARN
    )
    overdue_after_days = models.PositiveIntegerField(default=5)
    flag_cursor_record_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "supervision settings"
        verbose_name_plural = "supervision settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(overdue_after_days__gte=1),
                name="supervision_settings_overdue_positive",
                violation_error_message="An item is overdue after at least one day.",
            )
        ]

    def __str__(self) -> str:
        return "supervision settings"

    @classmethod
    def load(cls) -> SupervisionSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class Population(models.Model):
    """A group of accounts and communications under supervision: accounts, the accounts of
    given people, business units (the who, a union; empty means everyone), narrowed by record
    classes, directions and networks. Queues, routing rules, sampling plans and reports use it."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    accounts = models.ManyToManyField("accounts.SocialAccount", blank=True, related_name="+")
    people = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    business_units = models.JSONField(default=list, blank=True)
    record_classes = models.JSONField(default=list, blank=True)
    directions = models.JSONField(default=list, blank=True)
    networks = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def spec(self) -> PopulationSpec:
        return PopulationSpec(
            account_ids=frozenset(a.pk for a in self.accounts.all()),
            owner_ids=frozenset(p.pk for p in self.people.all()),
            business_units=frozenset(self.business_units),
            record_classes=frozenset(self.record_classes),
            directions=frozenset(self.directions),
            networks=frozenset(self.networks),
        )


class ReviewQueue(models.Model):
    """A review queue: its reviewers, the population it covers (reviewers see only their
    queues' items), and the next level of the escalation chain."""

    name = models.CharField(max_length=120, unique=True)
    population = models.ForeignKey(
        Population, null=True, blank=True, on_delete=models.PROTECT, related_name="queues"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="review_queues"
    )
    escalate_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    is_default = models.BooleanField(default=False)
    sla_days = models.PositiveIntegerField(default=5)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="supervision_queue_one_default",
                violation_error_message="Only one queue can be the default queue.",
            ),
            models.CheckConstraint(
                condition=~models.Q(escalate_to=models.F("id")),
                name="supervision_queue_no_self_escalation",
                violation_error_message="A queue cannot escalate to itself.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RoutingRule(models.Model):
    """Sends flagged records to a queue when every condition it sets holds: business unit,
    population (account group), policy rule, minimum severity. Lowest priority first."""

    priority = models.PositiveIntegerField(default=100)
    queue = models.ForeignKey(ReviewQueue, on_delete=models.PROTECT, related_name="routes")
    business_unit = models.CharField(max_length=120, blank=True)
    population = models.ForeignKey(
        Population, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    policy_rule_id = models.CharField(max_length=100, blank=True)
    min_severity = models.PositiveSmallIntegerField(choices=Severity.choices, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return f"route {self.pk} → {self.queue}"


class ItemSource(models.TextChoices):
    FLAG = "flag", "Flagged by screening"
    SAMPLE = "sample", "Random sample (spot-check)"


class ReviewItem(models.Model):
    """One archived record waiting for (or having had) a human review: flagged by the
    supervision policy or drawn by a sampling plan. ``origin_key`` makes queuing idempotent:
    one item per record per policy version (``flag:<policy>:v<n>``) and at most one sampled
    item per record (``sample``)."""

    record = models.ForeignKey(
        "archive.ArchivedRecord", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    origin_key = models.CharField(max_length=140)
    source = models.CharField(max_length=10, choices=ItemSource.choices)
    queue = models.ForeignKey(ReviewQueue, on_delete=models.PROTECT, related_name="items")
    routed_by = models.ForeignKey(
        RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in ReviewState],
        default=ReviewState.OPEN,
    )
    # Derived from ``state`` on every save: the queue page walks (is_open, created_at, id) in
    # index order instead of sorting the open items of several states.
    is_open = models.BooleanField(default=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="assigned_review_items",
    )
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, null=True, blank=True)
    rule_ids = models.JSONField(default=list, blank=True)
    hits = models.JSONField(default=list, blank=True)
    policy_name = models.CharField(max_length=200, blank=True)
    policy_version = models.PositiveIntegerField(null=True, blank=True)
    sample_run = models.ForeignKey(
        "SampleRun", null=True, blank=True, on_delete=models.PROTECT, related_name="items"
    )
    retro_run = models.ForeignKey(
        "RetroRun", null=True, blank=True, on_delete=models.PROTECT, related_name="items"
    )
    escalation_level = models.PositiveSmallIntegerField(default=0)
    disposition = models.CharField(
        max_length=30, choices=[(d.value, d.label) for d in Disposition], blank=True
    )
    # Denormalised from the record for the queue page and the metrics (records never change).
    account_id_copy = models.BigIntegerField(default=0)
    record_captured_at = models.DateTimeField(null=True, blank=True)
    excerpt = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    review_seconds_total = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["record", "origin_key"],
                name="supervision_item_once_per_origin",
                violation_error_message="This record is already queued for this reason.",
            ),
            models.CheckConstraint(
                condition=~models.Q(state="closed") | ~models.Q(disposition=""),
                name="supervision_item_closed_has_disposition",
                violation_error_message="A closed item has a disposition.",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    is_open=True, state__in=["open", "claimed", "needs_info", "escalated"]
                )
                | models.Q(is_open=False, state="closed"),
                name="supervision_item_open_matches_state",
                violation_error_message="An item is open exactly when it is not closed.",
            ),
        ]
        indexes = [
            # Partial indexes of the open items, in queue-page order (oldest first): the page
            # reads 50 rows in index order instead of sorting every open item.
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(is_open=True),
                name="supervision_item_open",
            ),
            models.Index(
                fields=["queue", "created_at", "id"],
                condition=models.Q(is_open=True),
                name="supervision_item_q_open",
            ),
            models.Index(
                fields=["assignee", "queue", "created_at", "id"],
                condition=models.Q(is_open=True),
                name="supervision_item_mine_open",
            ),
            # Overdue open items per queue (the queue page's capped overdue counts).
            models.Index(
                fields=["queue", "due_at"],
                condition=models.Q(is_open=True),
                name="supervision_item_open_due",
            ),
            models.Index(fields=["queue", "state", "created_at", "id"], name="supervision_item_q"),
            models.Index(fields=["state", "created_at", "id"], name="supervision_item_state"),
            models.Index(fields=["record"], name="supervision_item_record"),
        ]

    def __str__(self) -> str:
        return f"review item {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.is_open = self.state != ReviewState.CLOSED
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "state" in update_fields:
            kwargs["update_fields"] = {*update_fields, "is_open"}
        super().save(*args, **kwargs)

    @property
    def review_state(self) -> ReviewState:
        return ReviewState(self.state)

    @property
    def is_overdue(self) -> bool:
        return (
            self.state != ReviewState.CLOSED
            and self.due_at is not None
            and self.due_at < timezone.now()
        )


class ReviewActionKind(models.TextChoices):
    OPEN = "open", "Opened (not a review)"
    CLAIM = "claim", "Claimed"
    ASSIGN = "assign", "Assigned"
    RELEASE = "release", "Released"
    DISPOSITION = "disposition", "Disposition"
    BULK_DISPOSITION = "bulk_disposition", "Bulk disposition"


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or remove evidence of review."""


class EvidenceQuerySet(models.QuerySet["ReviewAction"]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Evidence of review is append-only.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Evidence of review is append-only.")


class ReviewAction(models.Model):
    """Evidence of review: who did what to which item, when, and how long they spent on it.
    ``is_review`` is false for merely opening an item, which is logged but is not a review."""

    item = models.ForeignKey(ReviewItem, on_delete=models.PROTECT, related_name="evidence")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewer_name = models.CharField(max_length=300)
    action = models.CharField(max_length=20, choices=ReviewActionKind.choices)
    is_review = models.BooleanField(default=False)
    disposition = models.CharField(
        max_length=30, choices=[(d.value, d.label) for d in Disposition], blank=True
    )
    comment = models.TextField(blank=True)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    time_spent_seconds = models.PositiveIntegerField(default=0)
    audit_event_id = models.BigIntegerField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            models.Index(fields=["item", "at"], name="supervision_evidence_item"),
            models.Index(fields=["reviewer", "at"], name="supervision_evidence_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.action} on item {self.item_id} by {self.reviewer_name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("Evidence of review is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Evidence of review is append-only.")


class Period(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class SamplingMethod(models.TextChoices):
    FIXED_RATE = "fixed_rate", "Fixed rate"
    STATISTICAL = "statistical", "Statistical (binomial attribute sampling)"


class SamplingPlan(models.Model):
    """A spot-check: every period, draw a random sample of a population's captured records
    into a queue. Statistical plans size the sample from the confidence, the tolerable and the
    expected deviation rates (vetline.supervision.sampling)."""

    name = models.CharField(max_length=120, unique=True)
    population = models.ForeignKey(Population, on_delete=models.PROTECT, related_name="plans")
    queue = models.ForeignKey(ReviewQueue, on_delete=models.PROTECT, related_name="plans")
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.WEEKLY)
    method = models.CharField(
        max_length=20, choices=SamplingMethod.choices, default=SamplingMethod.STATISTICAL
    )
    fixed_rate_percent = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    confidence = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True)
    tolerable_rate = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True)
    expected_rate = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SampleStatus(models.TextChoices):
    DRAWN = "drawn", "Sample drawn"
    NOTHING_TO_SAMPLE = "nothing_to_sample", "Nothing to sample (empty population)"
    FAILED = "failed", "Could not sample"


class SampleRun(models.Model):
    """One period's sample of a plan: the population's size and hash, the seed, the records
    drawn and what became of them. Anyone can re-derive the sample from the seed and the
    population (docs/supervision-sampling.md). One run per plan and period."""

    plan = models.ForeignKey(SamplingPlan, on_delete=models.PROTECT, related_name="runs")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    status = models.CharField(max_length=20, choices=SampleStatus.choices)
    population_size = models.PositiveBigIntegerField(default=0)
    population_sha256 = models.CharField(max_length=64, blank=True)
    seed = models.CharField(max_length=128, blank=True)
    sample_size = models.PositiveIntegerField(default=0)
    drawn_record_ids = models.JSONField(default=list, blank=True)
    new_items = models.PositiveIntegerField(default=0)
    already_queued = models.PositiveIntegerField(default=0)
    method = models.CharField(max_length=20, choices=SamplingMethod.choices)
    parameters = models.JSONField(default=dict, blank=True)
    note = models.TextField(blank=True)
    trigger = models.CharField(max_length=20, default="job")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "period_start"],
                name="supervision_sample_once_per_period",
                violation_error_message="This plan was already sampled for that period.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.plan} {self.period_start:%Y-%m-%d}"


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RetroRun(models.Model):
    """Screening of already archived records with one pinned policy version over a date
    range (of capture time). Tracked with progress; re-running it never queues a record twice."""

    policy = models.ForeignKey("policy.Policy", on_delete=models.PROTECT, related_name="+")
    policy_version = models.ForeignKey(
        "policy.PolicyVersion", on_delete=models.PROTECT, related_name="+"
    )
    captured_from = models.DateTimeField()
    captured_to = models.DateTimeField()
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.QUEUED)
    total = models.PositiveBigIntegerField(default=0)
    processed = models.PositiveBigIntegerField(default=0)
    flagged = models.PositiveBigIntegerField(default=0)
    already_queued = models.PositiveBigIntegerField(default=0)
    cursor_record_id = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(captured_from__lt=models.F("captured_to")),
                name="supervision_retro_range_ordered",
                violation_error_message="The start of the range must be before its end.",
            )
        ]

    def __str__(self) -> str:
        return f"retro run {self.pk}"

    @property
    def percent(self) -> int:
        if self.state == RunState.DONE:
            return 100
        return 0 if not self.total else min(100, int(100 * self.processed / self.total))

    @property
    def finished(self) -> bool:
        return self.state in (RunState.DONE, RunState.FAILED)


class SupervisionReport(models.Model):
    """A periodic supervision report for a period and population: the numbers as data, the
    HTML and CSV renderings, and the archived record that keeps it like any communication."""

    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    population = models.ForeignKey(
        Population, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    data = models.JSONField(default=dict)
    html = models.TextField()
    csv = models.TextField()
    archived_record_id = models.BigIntegerField(null=True, blank=True)
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"supervision report {self.period_start:%Y-%m-%d} to {self.period_end:%Y-%m-%d}"


# --- Notifications: the digest of new items, overdue notices and escalations -------------------


class DigestPreference(models.Model):
    """One person's supervision digest: whether they want it (the digest of new items can be
    switched off; overdue notices and escalations cannot), the last review item it already
    reported, and when the last digest went out (at most one every
    ``VETLINE_SUPERVISION_DIGEST_MINUTES``)."""

    person = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="supervision_digest"
    )
    digest_enabled = models.BooleanField(default=True)
    cursor_item_id = models.BigIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "supervision digest preference"

    def __str__(self) -> str:
        return f"supervision digest of person {self.person_id}"


class OverdueNotice(models.Model):
    """That an overdue review item was notified at one escalation level. Written in the same
    transaction as the e-mails it causes, unique per item and level: a restart neither sends
    it again nor misses it."""

    item = models.ForeignKey(ReviewItem, on_delete=models.PROTECT, related_name="overdue_notices")
    escalation_level = models.PositiveSmallIntegerField()
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "escalation_level"],
                name="supervision_overdue_once_per_level",
                violation_error_message="This item was already notified as overdue at this level.",
            )
        ]

    def __str__(self) -> str:
        return f"overdue notice of item {self.item_id} at level {self.escalation_level}"


class NotificationKind(models.TextChoices):
    DIGEST = "digest", "New items digest"
    OVERDUE = "overdue", "Overdue items"
    ESCALATION = "escalation", "Overdue items escalated to supervision managers"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENT = "sent", "Sent"
    FAILED = "failed", "Gave up after repeated failures"


class NotificationEmail(models.Model):
    """One supervision e-mail to one person: a digest of new items, an overdue notice or an
    escalation. Written in the transaction that decides it (an outbox), sent after the commit
    by the notification job, retried with a growing delay when sending fails, and audited
    (``supervision.notification.send``) when it goes out."""

    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    to_email = models.EmailField()
    subject = models.CharField(max_length=300)
    body = models.TextField()
    counts = models.JSONField(default=dict, blank=True)
    item_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="supervision_mail_due"),
            models.Index(fields=["recipient", "created_at"], name="supervision_mail_person"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="sent") | models.Q(sent_at__isnull=False),
                name="supervision_mail_sent_has_time",
                violation_error_message="A sent e-mail has the time it was sent.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to_email}"
