"""The approval engine: chains, four-eyes (actions and database), pinning, reset on edit,
rejection, withdrawal, expiry and delegation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from vetline.conftest import audit_actions_since, last_audit_id
from vetline.core.errors import Conflict, Forbidden, ValidationFailed
from vetline.identity.roles import Role
from vetline.publishing import actions, approvals
from vetline.publishing.models import Approval, ApprovalRequest, Draft, Notification
from vetline.publishing.states import DraftState, RequestState
from vetline.publishing.tests.conftest import draft_input

pytestmark = pytest.mark.django_db


def _submitted(pw: Any, text: str = "Our spring webinar is open.") -> tuple[Draft, ApprovalRequest]:
    draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, text))
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    return draft, req


def test_two_step_chain_approves_in_order_and_notifies(pw: Any) -> None:
    draft, req = _submitted(pw)
    assert [s.name for s in req.steps.all()] == ["Principal", "Senior principal"]
    assert Notification.objects.filter(person=pw.approver, title__startswith="Approval needed")
    # The named second-step approver cannot jump the queue... but may take step 1 in their role.
    assert approvals.inbox(pw.approver) == [req]
    start = last_audit_id()
    approvals.decide(
        actor=pw.approver, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )
    req.refresh_from_db()
    assert req.state == "pending" and req.current_position == 2
    assert approvals.inbox(pw.approver) == []
    assert approvals.inbox(pw.approver2) == [req]
    approvals.decide(
        actor=pw.approver2, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert req.expires_at is not None and req.expires_at > timezone.now()
    events = audit_actions_since(start)
    assert "publishing.approval.approve" in events
    assert "publishing.approval.advance" in events
    assert "publishing.approval.approved" in events
    draft.refresh_from_db()
    assert draft.state in (DraftState.SCHEDULED, DraftState.PUBLISHING, DraftState.PUBLISHED)


def test_author_never_approves(pw: Any) -> None:
    from vetline.accounts.models import Assignment
    from vetline.identity.models import RoleGrant

    # Give the publisher the approver role and assignment: they still cannot approve their own.
    RoleGrant.objects.create(person=pw.publisher, role=Role.APPROVER.value)
    Assignment.objects.create(account=pw.account, person=pw.publisher, capability="approve")
    pw.publisher.forget_roles()
    _, req = _submitted(pw)
    assert approvals.inbox(pw.publisher) == []
    with pytest.raises(Forbidden, match="Authors never approve"):
        approvals.decide(
            actor=pw.publisher,
            request_id=req.pk,
            decision="approve",
            subject_sha256=req.subject_sha256,
        )


def test_one_person_never_approves_two_steps(pw: Any) -> None:
    _, req = _submitted(pw)
    # approver2 holds the approver role (step 1) and is named for step 2.
    approvals.decide(
        actor=pw.approver2, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )
    req.refresh_from_db()
    assert req.current_position == 2
    with pytest.raises(Forbidden, match="at most one step"):
        approvals.decide(
            actor=pw.approver2,
            request_id=req.pk,
            decision="approve",
            subject_sha256=req.subject_sha256,
        )
    assert req.approvals.count() == 1


def test_database_enforces_four_eyes(pw: Any) -> None:
    _, req = _submitted(pw)
    step = req.steps.get(position=1)
    base = {"request": req, "step": step, "decision": "approve", "subject_sha256": "x" * 64}
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(approver=pw.publisher, author=pw.publisher, **base)
    Approval.objects.create(approver=pw.approver, author=pw.publisher, **base)
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(
            approver=pw.approver, author=pw.publisher, **{**base, "step": req.steps.get(position=2)}
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Approval.objects.create(
            approver=pw.approver2, on_behalf_of=pw.publisher, author=pw.publisher, **base
        )


def test_database_refuses_a_second_decision_through_a_delegate(pw: Any, make_person: Any) -> None:
    """Approver decides in person, then a delegate decides for them on another step: each
    Approval row is unique on its own, but the deciders table refuses the second decision."""
    from vetline.publishing.models import ApprovalDecider

    deputy = make_person(Role.APPROVER, "deputy2@example.com")
    _, req = _submitted(pw)
    approvals.decide(
        actor=pw.approver, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )
    assert set(ApprovalDecider.objects.filter(request=req).values_list("person", flat=True)) == {
        pw.approver.pk
    }
    second = Approval.objects.create(
        request=req,
        step=req.steps.get(position=2),
        approver=deputy,
        on_behalf_of=pw.approver,
        author=pw.publisher,
        decision="approve",
        subject_sha256=req.subject_sha256,
    )
    ApprovalDecider.objects.create(request=req, approval=second, person=deputy)
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalDecider.objects.create(request=req, approval=second, person=pw.approver)


def test_unassigned_approver_cannot_decide_or_see(pw: Any, make_person: Any) -> None:
    from vetline.core.errors import NotFound

    stranger = make_person(Role.APPROVER, "stranger@example.com")
    _, req = _submitted(pw)
    assert approvals.inbox(stranger) == []
    with pytest.raises(NotFound):
        approvals.decide(
            actor=stranger, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
        )


def test_approval_is_pinned_to_the_revision_and_edit_resets(pw: Any) -> None:
    draft, req = _submitted(pw)
    approvals.decide(
        actor=pw.approver, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )
    # An approver holding a stale hash is refused.
    with pytest.raises(Conflict):
        approvals.decide(
            actor=pw.approver2, request_id=req.pk, decision="approve", subject_sha256="0" * 64
        )
    actions.save_draft(
        actor=pw.publisher,
        draft_id=draft.pk,
        data=draft_input(pw.account, "Our spring webinar is open. Sign up now."),
    )
    req.refresh_from_db()
    assert req.state == RequestState.SUPERSEDED
    draft.refresh_from_db()
    assert draft.state == DraftState.EDITING
    with pytest.raises(Conflict):
        approvals.decide(
            actor=pw.approver2,
            request_id=req.pk,
            decision="approve",
            subject_sha256=req.subject_sha256,
        )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    fresh = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    assert fresh.pk != req.pk and fresh.current_position == 1
    assert fresh.approvals.count() == 0


def test_edit_after_full_approval_resets_and_cancels_queue(pw: Any) -> None:
    from vetline.publishing.models import Publication

    later = (timezone.now() + dt.timedelta(days=1)).isoformat()
    draft = actions.create_draft(
        actor=pw.publisher,
        data=draft_input(pw.account, "Tomorrow: open house.", scheduled_for=later),
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    for who in (pw.approver, pw.approver2):
        approvals.decide(
            actor=who, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
        )
    pub = Publication.objects.get(draft=draft)
    assert pub.state == "queued"
    actions.save_draft(
        actor=pw.publisher,
        draft_id=draft.pk,
        data=draft_input(pw.account, "Tomorrow: open house!", scheduled_for=later),
    )
    pub.refresh_from_db()
    req.refresh_from_db()
    assert pub.state == "cancelled"
    assert req.state == RequestState.SUPERSEDED
    assert not actions.approval_ok(pub, timezone.now())


def test_reject_needs_comment_and_returns_to_author(pw: Any) -> None:
    draft, req = _submitted(pw)
    with pytest.raises(ValidationFailed):
        approvals.decide(
            actor=pw.approver,
            request_id=req.pk,
            decision="reject",
            subject_sha256=req.subject_sha256,
        )
    approvals.decide(
        actor=pw.approver,
        request_id=req.pk,
        decision="reject",
        comment="Add the risk disclosure.",
        subject_sha256=req.subject_sha256,
    )
    draft.refresh_from_db()
    req.refresh_from_db()
    assert req.state == RequestState.REJECTED and draft.state == DraftState.REJECTED
    note = Notification.objects.get(person=pw.publisher, title__startswith="Rejected")
    assert "Add the risk disclosure." in note.body


def test_withdraw(pw: Any) -> None:
    draft, req = _submitted(pw)
    with pytest.raises(Forbidden):
        actions.withdraw_draft(actor=pw.approver, draft_id=draft.pk)
    actions.withdraw_draft(actor=pw.publisher, draft_id=draft.pk, reason="not needed")
    req.refresh_from_db()
    draft.refresh_from_db()
    assert req.state == RequestState.WITHDRAWN and draft.state == DraftState.WITHDRAWN


def test_expired_approval_cannot_publish(pw: Any) -> None:
    from vetline.publishing.models import Publication

    later = (timezone.now() + dt.timedelta(hours=100)).isoformat()
    draft = actions.create_draft(
        actor=pw.publisher, data=draft_input(pw.account, "Later post.", scheduled_for=later)
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    for who in (pw.approver, pw.approver2):
        approvals.decide(
            actor=who, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
        )
    pub = Publication.objects.get(draft=draft)
    # At the scheduled time the approval (valid 72 h) is stale: the send refuses.
    outcome = actions.publish_publication(
        publication_id=pub.pk, now=timezone.now() + dt.timedelta(hours=101)
    )
    assert outcome == "refused"
    pub.refresh_from_db()
    assert pub.state == "failed" and "approval" in pub.last_error
    # And the expiry job closes the request.
    assert approvals.expire_approvals(now=timezone.now() + dt.timedelta(hours=73)) == 1
    req.refresh_from_db()
    assert req.state == RequestState.EXPIRED


def test_delegation_covers_absence_and_is_audited(pw: Any, make_person: Any) -> None:
    deputy = make_person(Role.APPROVER, "deputy@example.com", full_name="Deputy")
    start = last_audit_id()
    approvals.create_delegation(
        actor=pw.approver2,
        delegator=pw.approver2,
        delegate=deputy,
        starts_at=timezone.now() - dt.timedelta(minutes=1),
        ends_at=timezone.now() + dt.timedelta(days=3),
        reason="Annual leave",
    )
    assert "publishing.delegation.create" in audit_actions_since(start)
    _, req = _submitted(pw)
    approvals.decide(
        actor=pw.approver, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )
    req.refresh_from_db()
    assert approvals.inbox(deputy) == [req]
    approvals.decide(
        actor=deputy, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
    )
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    last = req.approvals.order_by("-id").first()
    assert last is not None and last.approver == deputy and last.on_behalf_of == pw.approver2


def test_group_and_default_chain_resolution(pw: Any) -> None:
    from vetline.publishing.approvals import StepInput, resolve_chain, save_chain, save_group

    other = pw.world.corporate
    plan = resolve_chain(kind="post", accounts=[other])
    assert [s.role for s in plan.steps] == ["approver"]  # built-in default
    group = save_group(actor=pw.officer, name="Brand", accounts=[other])
    save_chain(
        actor=pw.officer,
        name="Brand posts",
        subject_kind="post",
        group=group,
        steps=[StepInput("Compliance", 1, role=Role.COMPLIANCE_OFFICER.value)],
        approval_valid_hours=24,
    )
    plan = resolve_chain(kind="post", accounts=[other])
    assert [s.name for s in plan.steps] == ["Compliance"] and plan.approval_valid_hours == 24
    both = resolve_chain(kind="post", accounts=[other, pw.account])
    assert [s.name for s in both.steps] == ["Compliance", "Principal", "Senior principal"]
    with pytest.raises(ValidationFailed):
        save_chain(
            actor=pw.officer,
            name="x",
            subject_kind="post",
            steps=[],
        )
    with pytest.raises(Forbidden):
        save_chain(
            actor=pw.publisher,
            name="x",
            subject_kind="post",
            steps=[StepInput("a", 1, role="approver")],
        )


def test_replies_may_skip_approval_per_account(pw: Any) -> None:
    from vetline.publishing.approvals import save_chain

    save_chain(
        actor=pw.officer,
        name="Replies free",
        subject_kind="reply",
        account=pw.account,
        steps=[],
        requires_approval=False,
    )
    with pytest.raises(ValidationFailed):
        save_chain(
            actor=pw.officer,
            name="Posts free",
            subject_kind="post",
            account=pw.account,
            steps=[],
            requires_approval=False,
        )
    assert not approvals.resolve_chain(kind="reply", accounts=[pw.account]).requires_approval
    assert approvals.resolve_chain(kind="post", accounts=[pw.account]).requires_approval
