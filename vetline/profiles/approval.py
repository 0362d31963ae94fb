"""Profile revisions as subjects of the line of authority's approval engine
(:mod:`vetline.publishing.approvals`): one engine for posts and profiles.

A submitted revision becomes an approval request of kind ``profile`` (subject type
``profile_revision``), pinned to the revision's content hash and resolved to the account's
profile chain (by default one compliance step). The engine enforces four-eyes (the author never
decides; one person decides at most one step) in its actions and its database constraints; this
handler adds that only holders of ``profiles.vet`` who do not own the account may decide. When
the engine closes a request it calls :meth:`ProfileSubjects.on_closed` inside its transaction,
and the proposal records the decision there.
"""

from __future__ import annotations

from typing import Final

from django.urls import reverse

from vetline.core.errors import Conflict
from vetline.identity.models import Person
from vetline.identity.roles import Perm
from vetline.profiles.models import ProfileProposal, ProfileRevision
from vetline.publishing import approvals as engine
from vetline.publishing.models import ApprovalRequest, Decision, RequestStep, SubjectKind
from vetline.publishing.states import RequestState

SUBJECT_TYPE: Final = "profile_revision"


def _group(proposal: ProfileProposal) -> str:
    return f"profile:{proposal.pk}"


class ProfileSubjects:
    """The engine's handler for profile revisions."""

    def current_sha256(self, subject_id: int) -> str | None:
        revision = ProfileRevision.objects.filter(pk=subject_id).select_related("proposal").first()
        if revision is None or revision.proposal.current_revision_id != revision.pk:
            return None  # an edit made a newer revision: this one can no longer be decided
        return revision.content_sha256

    def may_decide(self, person: Person, request: ApprovalRequest, step: RequestStep) -> bool:
        if not person.is_active or not person.can(Perm.PROFILES_VET):
            return False
        return not request.accounts.filter(owner=person).exists()

    def url(self, request: ApprovalRequest) -> str:
        revision = ProfileRevision.objects.filter(pk=request.subject_id).first()
        if revision is None:
            return reverse("profiles:inbox")
        return reverse("profiles:review", args=[revision.proposal_id])

    def on_closed(self, request: ApprovalRequest, *, actor: Person | None, comment: str) -> None:
        revision = ProfileRevision.objects.filter(pk=request.subject_id).first()
        if revision is None:
            return
        from vetline.profiles.actions import record_final_decision, record_withdrawal

        if request.state == RequestState.WITHDRAWN:
            record_withdrawal(
                proposal_id=revision.proposal_id, revision_id=revision.pk, actor=actor
            )
            return
        if request.state not in (RequestState.APPROVED, RequestState.REJECTED):
            return  # superseded by an edit (already recorded) or expired (nothing to publish)
        record_final_decision(
            proposal_id=revision.proposal_id,
            revision_id=revision.pk,
            approved=request.state == RequestState.APPROVED,
            comment=comment,
            actor=actor,
        )


HANDLER: Final = ProfileSubjects()


def register() -> None:
    engine.register_subject(SUBJECT_TYPE, HANDLER)


def open_request(
    *, proposal: ProfileProposal, revision: ProfileRevision, actor: Person
) -> ApprovalRequest:
    """Submit ``revision`` (the proposal's current one) to the engine. Call inside the
    proposal's transaction, with the proposal row locked."""
    subject = engine.Subject(
        type=SUBJECT_TYPE,
        id=revision.pk,
        group=_group(proposal),
        sha256=revision.content_sha256,
        kind=SubjectKind.PROFILE,
        title=f"Profile of {proposal.account}, revision {revision.number}",
        author=revision.created_by,
        accounts=[proposal.account],
    )
    escalate = revision.verdict == "escalate"
    return engine.open_request(actor=actor, subject=subject, escalate=escalate)


def supersede(*, proposal: ProfileProposal, revision: ProfileRevision, actor: Person) -> int:
    """An edit made a new revision: close the open request of the old one."""
    return engine.supersede_requests(
        subject_type=SUBJECT_TYPE,
        group=_group(proposal),
        reason=f"the profile was edited after revision {revision.number}",
        actor=actor,
    )


def pending_request(revision: ProfileRevision) -> ApprovalRequest | None:
    return (
        ApprovalRequest.objects.filter(
            subject_type=SUBJECT_TYPE, subject_id=revision.pk, state=RequestState.PENDING.value
        )
        .order_by("-created_at")
        .first()
    )


def requests_for(proposal: ProfileProposal) -> list[ApprovalRequest]:
    """Every approval request of the proposal's revisions, newest first (its history)."""
    ids = list(proposal.revisions.values_list("pk", flat=True))
    return list(
        ApprovalRequest.objects.filter(subject_type=SUBJECT_TYPE, subject_id__in=ids)
        .prefetch_related("approvals__approver", "steps")
        .order_by("-created_at")
    )


def decide(
    *,
    proposal: ProfileProposal,
    revision: ProfileRevision,
    actor: Person,
    approve: bool,
    comment: str,
) -> ApprovalRequest:
    request = pending_request(revision)
    if request is None:
        raise Conflict("This profile is not waiting for a decision.")
    return engine.decide(
        actor=actor,
        request_id=request.pk,
        decision=Decision.APPROVE if approve else Decision.REJECT,
        comment=comment,
        subject_sha256=revision.content_sha256,
    )


def withdraw(*, proposal: ProfileProposal, revision: ProfileRevision, actor: Person) -> bool:
    """Withdraw the pending request of ``revision``; the engine calls back
    :meth:`ProfileSubjects.on_closed`, which returns the proposal to draft. False when there
    was no pending request."""
    request = pending_request(revision)
    if request is None:
        return False
    engine.withdraw_request(actor=actor, request_id=request.pk, reason="withdrawn by the owner")
    return True
