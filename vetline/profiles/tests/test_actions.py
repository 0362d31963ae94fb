"""Profile vetting through its actions: submit → screen → approve on the approval engine,
reject with comments, edit after approval resets, four-eyes, and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from vetline.audit.models import AuditEvent
from vetline.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from vetline.identity.roles import Role
from vetline.profiles import actions, approval
from vetline.profiles.models import ProfileProposal
from vetline.profiles.photos import tiny_png
from vetline.publishing.models import Approval, ApprovalRequest

pytestmark = pytest.mark.django_db


def _save(world: Any, **overrides: Any) -> Any:
    data: dict[str, Any] = {
        "display_name": "Jane Advisor",
        "bio": "Financial advisor at Harbor Point.",
        "title": "Senior Advisor",
        "links": ["https://harborpoint.example/jane"],
    }
    data.update(overrides)
    return actions.save_proposal(
        actor=world.people[Role.EMPLOYEE], account=world.employee_account, **data
    )


def test_submit_screen_approve_records_the_approved_version(
    world: Any, profile_policy: Any, officer: Any
) -> None:
    revision = _save(world, title="Rockstar advisor", photo=tiny_png(), submit=True)
    proposal = revision.proposal
    assert revision.number == 1 and len(revision.content_sha256) == 64
    # Screened in the profile scope, hits kept per field with their offsets.
    assert revision.verdict == "warn"
    [hit] = revision.screening["fields"]["title"]["hits"]
    assert (hit["rule_id"], hit["start"], hit["end"]) == ("rockstar", 0, 8)
    assert revision.screening["policy"]["name"] == "profile-test"
    assert revision.photo_mime_type == "image/png" and revision.photo_width_px == 64
    assert proposal.status == "submitted"
    request = approval.pending_request(revision)
    assert request is not None and request.subject_sha256 == revision.content_sha256
    assert request.subject_kind == "profile"

    actions.approve_proposal(actor=officer, proposal=proposal, revision_number=1, comment="Fine.")
    proposal.refresh_from_db()
    assert proposal.status == "approved"
    assert proposal.approved_revision_id == revision.pk and proposal.approved_at is not None
    request.refresh_from_db()
    assert request.state == "approved"
    [decision] = Approval.objects.filter(request=request)
    assert decision.approver_id == officer.pk and decision.subject_sha256 == revision.content_sha256
    assert AuditEvent.objects.filter(action="profiles.proposal.approve").count() == 1
    assert AuditEvent.objects.filter(action="profiles.revision.create").count() == 1


def test_reject_returns_it_with_comments(world: Any, profile_policy: Any, officer: Any) -> None:
    revision = _save(world, submit=True)
    with pytest.raises(ValidationFailed):
        actions.reject_proposal(
            actor=officer, proposal=revision.proposal, revision_number=1, comment="  "
        )
    actions.reject_proposal(
        actor=officer,
        proposal=revision.proposal,
        revision_number=1,
        comment="Use your registered title.",
    )
    proposal = ProfileProposal.objects.get(pk=revision.proposal_id)
    assert proposal.status == "rejected"
    assert proposal.returned_comment == "Use your registered title."
    assert proposal.approved_revision is None
    # Resubmitted after an edit: a new revision, a new request.
    again = _save(world, title="Advisor", submit=True)
    assert again.number == 2
    proposal.refresh_from_db()
    assert proposal.status == "submitted" and proposal.returned_comment == ""


def test_edit_after_approval_resets(world: Any, profile_policy: Any, officer: Any) -> None:
    first = _save(world, submit=True)
    actions.approve_proposal(actor=officer, proposal=first.proposal, revision_number=1)
    first_request = ApprovalRequest.objects.get(subject_id=first.pk)

    second = _save(world, bio="Financial advisor. Ask me about retirement.")
    proposal = ProfileProposal.objects.get(pk=first.proposal_id)
    assert proposal.status == "draft" and proposal.current_revision_id == second.pk
    # The approved version stays recorded (the live profile is still compared with it)…
    assert proposal.approved_revision_id == first.pk
    # …but the approval never carries over to the edit: its request is superseded.
    first_request.refresh_from_db()
    assert first_request.state == "superseded"
    # An approver looking at the old revision cannot approve it any more.
    actions.submit_proposal(actor=world.people[Role.EMPLOYEE], proposal=proposal)
    with pytest.raises(Conflict):
        actions.approve_proposal(actor=officer, proposal=proposal, revision_number=1)
    actions.approve_proposal(actor=officer, proposal=proposal, revision_number=2)
    proposal.refresh_from_db()
    assert proposal.approved_revision_id == second.pk


def test_unchanged_save_makes_no_revision(world: Any, profile_policy: Any) -> None:
    first = _save(world)
    assert _save(world).pk == first.pk
    assert first.proposal.revisions.count() == 1


def test_four_eyes_the_employee_never_approves_their_own_profile(
    world: Any, profile_policy: Any, make_person: Any
) -> None:
    from vetline.identity.models import RoleGrant

    # An employee who is also a compliance officer still cannot vet their own profile.
    employee = world.people[Role.EMPLOYEE]
    RoleGrant.objects.create(person=employee, role=Role.COMPLIANCE_OFFICER.value)
    revision = _save(world, submit=True)
    with pytest.raises(Forbidden):
        actions.approve_proposal(actor=employee, proposal=revision.proposal, revision_number=1)
    with pytest.raises(Forbidden):
        actions.reject_proposal(
            actor=employee, proposal=revision.proposal, revision_number=1, comment="no"
        )
    # Nor through the engine directly: its handler and its database constraint refuse too.
    from vetline.publishing import approvals as engine

    request = approval.pending_request(revision)
    assert request is not None
    with pytest.raises(Forbidden):
        engine.decide(
            actor=employee,
            request_id=request.pk,
            decision="approve",
            subject_sha256=revision.content_sha256,
        )
    assert not Approval.objects.exists()
    # People without profiles.vet cannot decide either.
    with pytest.raises(Forbidden):
        actions.approve_proposal(
            actor=world.people[Role.APPROVER], proposal=revision.proposal, revision_number=1
        )


def test_a_block_hit_prevents_submission(world: Any, profile_policy: Any) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _save(world, bio="Guaranteed returns every year", submit=True)
    assert caught.value.code == "screening_blocked"
    # Nothing was saved: the revision and the submission are one transaction.
    assert not ProfileProposal.objects.filter(revisions__isnull=False).exists()
    revision = _save(world, bio="Guaranteed returns every year")
    assert revision.verdict == "block"
    with pytest.raises(ValidationFailed):
        actions.submit_proposal(actor=world.people[Role.EMPLOYEE], proposal=revision.proposal)


def test_an_escalate_hit_adds_a_compliance_step(world: Any, profile_policy: Any) -> None:
    revision = _save(world, bio="Weekly crypto tips", submit=True)
    request = approval.pending_request(revision)
    assert request is not None
    assert request.steps.count() == 2 and request.steps.filter(added_by_screening=True).exists()


def test_only_the_owner_proposes(world: Any, profile_policy: Any) -> None:
    for role in (Role.COMPLIANCE_OFFICER, Role.ADMINISTRATOR, Role.PUBLISHER):
        with pytest.raises(NotFound):
            actions.save_proposal(
                actor=world.people[role], account=world.employee_account, display_name="X"
            )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"display_name": "  "}, "display_name"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"bio": "b" * 2001}, "bio"),
        ({"title": "t\x00"}, "title"),
        ({"links": ["javascript:alert(1)"]}, "links"),
        ({"links": ["ftp://files.example"]}, "links"),
        ({"links": ["https://"]}, "links"),
        ({"links": [f"https://e{i}.example" for i in range(11)]}, "links"),
        ({"photo": b"%PDF-1.4"}, "photo"),
        ({"photo": tiny_png() + b"\x00" * (5 * 1024 * 1024)}, "photo"),
    ],
)
def test_bad_input_gets_a_clear_error(
    world: Any, profile_policy: Any, overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _save(world, **overrides)
    assert caught.value.field == field and caught.value.message


def test_withdraw_returns_to_draft(world: Any, profile_policy: Any) -> None:
    revision = _save(world, submit=True)
    proposal = actions.withdraw_proposal(
        actor=world.people[Role.EMPLOYEE], proposal=revision.proposal
    )
    assert proposal.status == "draft"
    assert ApprovalRequest.objects.get(subject_id=revision.pk).state == "withdrawn"
    with pytest.raises(Conflict):
        actions.withdraw_proposal(actor=world.people[Role.EMPLOYEE], proposal=proposal)


def test_no_policy_installed_is_recorded_as_unscreened(world: Any) -> None:
    revision = _save(world)
    assert revision.verdict == "unscreened" and "No policy" in revision.screening["error"]


def test_withdrawal_through_the_engine_returns_the_proposal_to_draft(
    world: Any, profile_policy: Any
) -> None:
    from vetline.publishing import approvals as engine

    revision = _save(world, submit=True)
    request = approval.pending_request(revision)
    assert request is not None
    engine.withdraw_request(actor=world.people[Role.EMPLOYEE], request_id=request.pk)
    assert ProfileProposal.objects.get().status == "draft"
    assert AuditEvent.objects.filter(action="profiles.proposal.withdraw").count() == 1
