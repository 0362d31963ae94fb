"""The approval engine's records: chains (configured per account or account group), the
requests that run a subject revision through a chain, each step's approvals, and delegations
covering an approver's absence.

The engine is generic: a request points at its subject (a draft revision, a profile proposal
revision…) by kind, id and the SHA-256 of the exact content it approves. See
``vetline/publishing/approvals.py``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from vetline.identity.roles import Role
from vetline.publishing.states import RequestState

ROLE_CHOICES = [(r.value, r.label) for r in Role]


class SubjectKind(models.TextChoices):
    """What a chain applies to and what a request approves."""

    POST = "post", "Posts"
    REPLY = "reply", "Replies to customers"
    PROFILE = "profile", "Employee profiles"


class AccountGroup(models.Model):
    """A named set of accounts sharing an approval chain (e.g. "Retail brand accounts")."""

    name = models.CharField(max_length=120, unique=True)
    accounts = models.ManyToManyField(
        "accounts.SocialAccount", related_name="publishing_groups", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApprovalChain(models.Model):
    """The ordered approval steps a subject must pass for one account or one account group.

    The most specific chain wins: the account's own, then a group's, then the organisation's
    default (neither account nor group). ``approval_valid_hours`` bounds how long a final
    approval can be used to publish. ``requires_approval`` False (allowed for replies only)
    lets replies to customers go out without approval on that account."""

    name = models.CharField(max_length=120)
    subject_kind = models.CharField(max_length=20, choices=SubjectKind.choices)
    account = models.ForeignKey(
        "accounts.SocialAccount",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="approval_chains",
    )
    group = models.ForeignKey(
        AccountGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="chains"
    )
    requires_approval = models.BooleanField(default=True)
    approval_valid_hours = models.PositiveIntegerField(default=72)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        "identity.Person", null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["subject_kind", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(account__isnull=True) | Q(group__isnull=True),
                name="publishing_chain_account_or_group",
                violation_error_message="A chain applies to an account or to a group, not both.",
            ),
            models.UniqueConstraint(
                fields=["subject_kind", "account"],
                condition=Q(is_active=True, account__isnull=False),
                name="publishing_chain_one_per_account",
                violation_error_message="This account already has an active chain for that.",
            ),
            models.UniqueConstraint(
                fields=["subject_kind", "group"],
                condition=Q(is_active=True, group__isnull=False),
                name="publishing_chain_one_per_group",
                violation_error_message="This group already has an active chain for that.",
            ),
            models.UniqueConstraint(
                fields=["subject_kind"],
                condition=Q(is_active=True, group__isnull=True, account__isnull=True),
                name="publishing_chain_one_default",
                violation_error_message="There is already an active default chain for that.",
            ),
            models.CheckConstraint(
                condition=Q(approval_valid_hours__gte=1),
                name="publishing_chain_validity_positive",
                violation_error_message="Approvals must stay valid for at least one hour.",
            ),
            models.CheckConstraint(
                condition=Q(requires_approval=True) | Q(subject_kind="reply"),
                name="publishing_chain_only_replies_skip",
                violation_error_message="Only replies to customers may skip approval.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ApprovalStep(models.Model):
    """One step of a chain: ``required_approvals`` approvals from holders of ``role`` or from
    the named ``approvers`` (exactly one of the two)."""

    chain = models.ForeignKey(ApprovalChain, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    role = models.CharField(max_length=40, choices=ROLE_CHOICES, blank=True)
    approvers = models.ManyToManyField("identity.Person", related_name="+", blank=True)
    required_approvals = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["chain", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "position"],
                name="publishing_step_unique_position",
                violation_error_message="Two steps of a chain cannot share a position.",
            ),
            models.CheckConstraint(
                condition=Q(required_approvals__gte=1),
                name="publishing_step_needs_approvals",
                violation_error_message="A step needs at least one approval.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.chain}: {self.position}. {self.name}"


class ApprovalRequest(models.Model):
    """One revision of a subject going through its chain. Pinned to ``subject_sha256``: an
    edit of the subject supersedes the request (the chain starts again on the new revision).
    """

    subject_kind = models.CharField(max_length=20, choices=SubjectKind.choices)
    subject_type = models.CharField(max_length=60)  # the registered handler, e.g. draft_revision
    subject_id = models.BigIntegerField()
    # The subject's family across revisions (e.g. "draft:12"): opening a request for a new
    # revision supersedes the open request of the previous one.
    subject_group = models.CharField(max_length=100)
    subject_sha256 = models.CharField(max_length=64)
    title = models.CharField(max_length=300)
    author = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    accounts = models.ManyToManyField("accounts.SocialAccount", related_name="+")
    state = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in RequestState],
        default=RequestState.PENDING.value,
    )
    current_position = models.PositiveIntegerField(default=1)
    approval_valid_hours = models.PositiveIntegerField(default=72)
    # Shown to every approver: a compliance override of a block hit, with its reason.
    notes_for_approvers = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject_type", "subject_id"],
                condition=Q(state__in=[RequestState.PENDING.value, RequestState.APPROVED.value]),
                name="publishing_request_one_open_per_subject",
                violation_error_message="This revision is already waiting for approval.",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "current_position"]),
            models.Index(fields=["subject_type", "subject_group"]),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def request_state(self) -> RequestState:
        return RequestState(self.state)


class RequestStep(models.Model):
    """A step as it applies to one request: copied from the chain when the request opens (so
    editing a chain never changes requests already under way), plus any step added by
    screening (an ``escalate`` hit adds a compliance step)."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=120)
    role = models.CharField(max_length=40, choices=ROLE_CHOICES, blank=True)
    approver_ids = models.JSONField(default=list, blank=True)
    required_approvals = models.PositiveIntegerField(default=1)
    added_by_screening = models.BooleanField(default=False)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "position"],
                name="publishing_requeststep_unique_position",
                violation_error_message="Two steps of a request cannot share a position.",
            ),
            models.CheckConstraint(
                condition=Q(required_approvals__gte=1),
                name="publishing_requeststep_needs_approvals",
                violation_error_message="A step needs at least one approval.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"

    @property
    def approver_names(self) -> list[str]:
        from vetline.identity.models import Person

        return [str(p) for p in Person.objects.filter(pk__in=self.approver_ids or [])]


class Decision(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"


class Approval(models.Model):
    """One approver's decision on one step of one request, pinned to the exact content.

    Four-eyes is enforced here by the database as well as by the actions: the author never
    decides (``author`` is copied from the request), and one person decides at most once per
    request (so never on two steps of the same revision), whether in person or as a delegate.
    """

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="approvals")
    step = models.ForeignKey(RequestStep, on_delete=models.PROTECT, related_name="approvals")
    approver = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    # The absent approver a delegate acted for (null when acting in their own right).
    on_behalf_of = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    author = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    subject_sha256 = models.CharField(max_length=64)
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"],
                name="publishing_approval_one_per_person",
                violation_error_message="One person approves at most one step of a revision.",
            ),
            models.UniqueConstraint(
                fields=["request", "on_behalf_of"],
                condition=Q(on_behalf_of__isnull=False),
                name="publishing_approval_one_per_delegator",
                violation_error_message="This approver has already been represented here.",
            ),
            models.CheckConstraint(
                condition=~Q(approver=F("author")),
                name="publishing_approval_not_author",
                violation_error_message="Authors never approve their own work.",
            ),
            models.CheckConstraint(
                condition=Q(on_behalf_of__isnull=True) | ~Q(on_behalf_of=F("author")),
                name="publishing_approval_not_for_author",
                violation_error_message="Nobody approves on the author's behalf.",
            ),
            models.CheckConstraint(
                condition=Q(on_behalf_of__isnull=True) | ~Q(on_behalf_of=F("approver")),
                name="publishing_approval_not_self_delegate",
                violation_error_message="A delegate acts for someone else.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision} {self.request}"


class ApprovalDecider(models.Model):
    """A person whose judgement an approval carries: its approver and, for a delegated decision,
    the approver stood in for. One row per person per request, so the database refuses a
    person deciding twice on the same revision whichever way round it happens (in person, then
    through a delegate, or the reverse), which the two unique constraints on :class:`Approval`
    alone cannot see. Written with the approval, never changed."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="+")
    approval = models.ForeignKey(Approval, on_delete=models.PROTECT, related_name="deciders")
    person = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request", "person"],
                name="publishing_one_decision_per_person",
                violation_error_message=(
                    "This person has already decided on this revision, in person or through a "
                    "delegate."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.person_id} decided on request {self.request_id}"


class Delegation(models.Model):
    """While ``delegator`` is away (``starts_at``..``ends_at``), ``delegate`` may decide in
    their place on the steps they could decide. Created and revoked through audited actions."""

    delegator = models.ForeignKey(
        "identity.Person", on_delete=models.PROTECT, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        "identity.Person", on_delete=models.PROTECT, related_name="delegations_received"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")),
                name="publishing_delegation_ends_after_start",
                violation_error_message="A delegation ends after it starts.",
            ),
            models.CheckConstraint(
                condition=~Q(delegate=F("delegator")),
                name="publishing_delegation_not_self",
                violation_error_message="Nobody delegates to themselves.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delegate} for {self.delegator}"
