"""Replies to captured messages, and the background jobs: the publish task, the periodic tick
(due posts, retries, reconciliation, expiry) and the archive follower kicked by capture."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from vetline.archive.models import ArchivedRecord
from vetline.connectors.sandbox import network as sandbox
from vetline.connectors.sandbox.models import PostKind, SandboxAccount, SandboxPost
from vetline.core.errors import ValidationFailed
from vetline.publishing import actions, approvals
from vetline.publishing.actions import DraftInput
from vetline.publishing.models import ApprovalRequest, Publication, RoguePost
from vetline.publishing.tests.conftest import draft_input

pytestmark = pytest.mark.django_db


def _customer_reply(pw: Any, django_capture_on_commit_callbacks: Any) -> ArchivedRecord:
    from vetline.connectors.actions import capture_account

    timeline = SandboxAccount.objects.get(handle="acme-training")
    ours = sandbox.create_post(timeline=timeline, author=timeline, text="Open house Saturday")
    casey = sandbox.ensure_account("casey", display_name="Casey", customer=True)
    sandbox.create_post(
        timeline=timeline, author=casey, text="What time?", kind=PostKind.REPLY, in_reply_to=ours
    )
    with django_capture_on_commit_callbacks(execute=True):
        capture_account(account_id=pw.account.pk)
    return ArchivedRecord.objects.get(account=pw.account, text="What time?")


def test_reply_to_a_captured_message_without_approval_when_the_account_allows(
    pw: Any, django_capture_on_commit_callbacks: Any
) -> None:
    parent = _customer_reply(pw, django_capture_on_commit_callbacks)
    approvals.save_chain(
        actor=pw.officer,
        name="Replies go straight out",
        subject_kind="reply",
        account=pw.account,
        steps=[],
        requires_approval=False,
    )
    with pytest.raises(ValidationFailed, match="captured message"):
        actions.create_draft(
            actor=pw.publisher,
            data=DraftInput(text="Ten.", account_ids=[pw.account.pk], reply_to_record_id=10**12),
        )
    with django_capture_on_commit_callbacks(execute=True):
        draft = actions.create_draft(
            actor=pw.publisher,
            data=DraftInput(
                text="From 10 to 2, see you there!",
                account_ids=[pw.account.pk],
                reply_to_record_id=parent.pk,
            ),
        )
        assert draft.kind == "reply" and draft.reply_to_remote_id == parent.remote_id
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    assert not ApprovalRequest.objects.filter(subject_group=f"draft:{draft.pk}").exists()
    reply = SandboxPost.objects.get(text="From 10 to 2, see you there!")
    assert reply.kind == PostKind.REPLY and reply.in_reply_to is not None
    assert reply.in_reply_to.remote_id == parent.remote_id
    assert Publication.objects.get(draft=draft).request is None


def test_replies_need_approval_by_default(pw: Any, django_capture_on_commit_callbacks: Any) -> None:
    parent = _customer_reply(pw, django_capture_on_commit_callbacks)
    draft = actions.create_draft(
        actor=pw.publisher,
        data=DraftInput(text="Ten!", account_ids=[pw.account.pk], reply_to_record_id=parent.pk),
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}")
    assert req.subject_kind == "reply" and [s.role for s in req.steps.all()] == ["approver"]


def test_tick_sends_due_posts_and_expires_approvals(
    pw: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from vetline.publishing.tasks import publishing_tick

    soon = (timezone.now() + dt.timedelta(minutes=30)).isoformat()
    draft = actions.create_draft(
        actor=pw.publisher, data=draft_input(pw.account, "At half past", scheduled_for=soon)
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}")
    for who in (pw.approver, pw.approver2):
        approvals.decide(
            actor=who, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
        )
    result = publishing_tick.call_local()
    assert result["sent"] == 0  # not due yet
    later = timezone.now() + dt.timedelta(minutes=31)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with django_capture_on_commit_callbacks(execute=True):
        result = publishing_tick.call_local()
    assert result["sent"] == 1
    assert Publication.objects.get(draft=draft).state == "published"
    assert SandboxPost.objects.filter(text="At half past").count() == 1
    monkeypatch.setattr(timezone, "now", lambda: later + dt.timedelta(hours=73))
    assert publishing_tick.call_local()["expired"] == 1


def test_capture_kicks_the_rogue_follower(pw: Any, django_capture_on_commit_callbacks: Any) -> None:
    from vetline.connectors.actions import capture_account

    timeline = SandboxAccount.objects.get(handle="acme-training")
    sandbox.create_post(timeline=timeline, author=timeline, text="posted from my phone oops")
    with django_capture_on_commit_callbacks(execute=True):
        capture_account(account_id=pw.account.pk)
    # The records_archived signal ran the follower: no explicit call needed.
    assert RoguePost.objects.filter(text="posted from my phone oops").exists()
