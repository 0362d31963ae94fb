"""Profile vetting: the profile an employee proposes for each registered account, every
revision of it, the version compliance approved, and the drift review items raised when a
captured live profile no longer matches the approved version.

Approval itself runs on the line of authority's engine (``vetline.publishing``): a submitted
revision is an approval subject of kind ``profile``, pinned to the revision's content hash.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from vetline.profiles.states import DRIFT_ACTIVE, DriftState, ProposalState

MAX_LINKS = 10


class ProfileProposal(models.Model):
    """The profile an account's owner wants to show on that account, and where its vetting
    stands. One per account; every edit is a new :class:`ProfileRevision`."""

    account = models.OneToOneField(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="profile_proposal"
    )
    status = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in ProposalState],
        default=ProposalState.DRAFT.value,
    )
    current_revision = models.ForeignKey(
        "ProfileRevision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The version compliance last approved: what the live profile is compared with. It stays
    # until a newer revision is approved, even while an edit waits for approval.
    approved_revision = models.ForeignKey(
        "ProfileRevision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The last rejection's comment, shown to the author until they edit or resubmit.
    returned_comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"Profile of {self.account}"

    @property
    def state(self) -> ProposalState:
        return ProposalState(self.status)


class ProfileRevision(models.Model):
    """One saved version of a proposed profile, exactly as it was screened and (perhaps)
    approved. Never changed after it is written: an edit is a new revision."""

    proposal = models.ForeignKey(
        ProfileProposal, on_delete=models.PROTECT, related_name="revisions"
    )
    number = models.PositiveIntegerField()
    display_name = models.CharField(max_length=100)
    bio = models.TextField(max_length=2000, blank=True)
    title = models.CharField(max_length=150, blank=True)
    links = models.JSONField(default=list, blank=True)
    # The photo: content-addressed bytes in the blob store (vetline.archive.blobs).
    photo_sha256 = models.CharField(max_length=64, blank=True)
    photo_mime_type = models.CharField(max_length=40, blank=True)
    photo_size_bytes = models.PositiveIntegerField(null=True, blank=True)
    photo_width_px = models.PositiveIntegerField(null=True, blank=True)
    photo_height_px = models.PositiveIntegerField(null=True, blank=True)
    # SHA-256 of the canonical content: what an approval is pinned to.
    content_sha256 = models.CharField(max_length=64)
    # The screening of every field with the active policy in the "profile" scope.
    screening = models.JSONField(default=dict, blank=True)
    verdict = models.CharField(max_length=20, default="pass")
    created_by = models.ForeignKey("identity.Person", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["proposal", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["proposal", "number"],
                name="profiles_revision_unique_number",
                violation_error_message="This revision number is already used.",
            ),
            models.CheckConstraint(
                condition=Q(number__gte=1),
                name="profiles_revision_number_positive",
                violation_error_message="Revisions are numbered from 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.proposal.account} profile, revision {self.number}"

    def content(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name,
            "bio": self.bio,
            "title": self.title,
            "links": list(self.links or []),
            "photo_sha256": self.photo_sha256,
        }


class ProfileDrift(models.Model):
    """A review item: the captured live profile of an account no longer matches the version
    compliance approved. Holds the field-by-field differences and who dealt with it."""

    account = models.ForeignKey(
        "accounts.SocialAccount", on_delete=models.PROTECT, related_name="profile_drifts"
    )
    approved_revision = models.ForeignKey(
        ProfileRevision, on_delete=models.PROTECT, related_name="drifts"
    )
    # The captured snapshot that first showed the drift, and the latest one that still does.
    first_record = models.OneToOneField(
        "archive.ArchivedRecord", on_delete=models.PROTECT, related_name="+"
    )
    latest_record = models.ForeignKey(
        "archive.ArchivedRecord", on_delete=models.PROTECT, related_name="+"
    )
    differences = models.JSONField(default=list)
    status = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in DriftState],
        default=DriftState.OPEN.value,
    )
    alert = models.ForeignKey(
        "connectors.Alert", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detected_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        "identity.Person", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=sorted(s.value for s in DRIFT_ACTIVE)),
                name="profiles_drift_one_active_per_account",
                violation_error_message="A drift is already open for this account.",
            ),
        ]

    def __str__(self) -> str:
        return f"Profile drift on {self.account}"

    @property
    def state(self) -> DriftState:
        return DriftState(self.status)


class DriftCursor(models.Model):
    """How far drift detection has read the archive: the id of the last archived record it
    has examined. Advanced in the same transaction as the drift items it leads to."""

    name = models.CharField(max_length=40, unique=True)
    last_record_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} at record {self.last_record_id}"
