"""Drafts, the screening gate, publishing to the sandbox exactly once, the archive link, failures,
the emergency freeze and the rogue-post alarm."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from vetline.archive.models import ArchivedRecord
from vetline.conftest import audit_actions_since, last_audit_id
from vetline.connectors.models import Alert
from vetline.connectors.sandbox import network as sandbox
from vetline.connectors.sandbox.models import SandboxAccount, SandboxPost
from vetline.core.errors import Conflict, Forbidden, ValidationFailed
from vetline.identity.roles import Role
from vetline.publishing import actions, approvals
from vetline.publishing.actions import DraftInput, MediaUpload
from vetline.publishing.models import (
    ApprovalRequest,
    Draft,
    HeldItem,
    Publication,
    RoguePost,
)
from vetline.publishing.states import DraftState
from vetline.publishing.tests.conftest import draft_input, stuck_publication

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def approve_all(pw: Any, draft: Draft) -> ApprovalRequest:
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    for who in (pw.approver, pw.approver2, pw.officer):
        req.refresh_from_db()
        if req.state != "pending":
            break
        if approvals.may_decide(who, req):
            approvals.decide(
                actor=who, request_id=req.pk, decision="approve", subject_sha256=req.subject_sha256
            )
    req.refresh_from_db()
    return req


# --- Drafting ----------------------------------------------------------------------------------


def test_only_authorized_publishers_draft(pw: Any) -> None:
    with pytest.raises(ValidationFailed, match="not an authorized publisher"):
        actions.create_draft(actor=pw.publisher, data=draft_input(pw.world.other, "Hello"))
    with pytest.raises(Forbidden):
        actions.create_draft(actor=pw.approver, data=draft_input(pw.account, "Hello"))
    # The employee's personal account is never a publishing target.
    with pytest.raises(ValidationFailed):
        actions.create_draft(
            actor=pw.publisher, data=draft_input(pw.world.employee_account, "Hello")
        )


def test_network_limits_media_and_schedule_bad_input(pw: Any) -> None:
    with pytest.raises(ValidationFailed, match="280"):
        actions.create_draft(actor=pw.publisher, data=draft_input(pw.world.corporate, "x" * 281))
    with pytest.raises(ValidationFailed, match="not a supported image"):
        actions.create_draft(
            actor=pw.publisher,
            data=draft_input(pw.account, "Hi", media=[MediaUpload(b"%PDF-1.7 ...", "image/png")]),
        )
    with pytest.raises(ValidationFailed, match="MB"):
        actions.create_draft(
            actor=pw.publisher,
            data=draft_input(
                pw.account, "Hi", media=[MediaUpload(PNG + b"\x00" * (6 * 1024 * 1024))]
            ),
        )
    for bad, why in (
        ("2020-01-01T10:00:00+00:00", "past"),
        ("next tuesday", "ISO 8601"),
        ("2030-01-01T10:00:00", "time zone"),
        ((timezone.now() + dt.timedelta(days=400)).isoformat(), "a year"),
    ):
        with pytest.raises(ValidationFailed, match=why):
            actions.create_draft(
                actor=pw.publisher, data=draft_input(pw.account, "Hi", scheduled_for=bad)
            )
    with pytest.raises(ValidationFailed, match="http"):
        actions.create_draft(
            actor=pw.publisher, data=draft_input(pw.account, "Hi", links=["javascript:alert(1)"])
        )
    # A zone other than UTC is converted, not misread.
    when = (timezone.now() + dt.timedelta(days=2)).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    draft = actions.create_draft(
        actor=pw.publisher, data=draft_input(pw.account, "Hi", scheduled_for=when.isoformat())
    )
    assert draft.scheduled_for is not None
    assert abs((draft.scheduled_for - when).total_seconds()) < 1


def test_variants_are_checked_per_network(pw: Any) -> None:
    long = "A" * 400  # fine on the sandbox (500), too long for X (280)
    with pytest.raises(ValidationFailed, match="280"):
        actions.create_draft(
            actor=pw.publisher,
            data=DraftInput(text=long, account_ids=[pw.account.pk, pw.world.corporate.pk]),
        )
    draft = actions.create_draft(
        actor=pw.publisher,
        data=DraftInput(
            text=long,
            account_ids=[pw.account.pk, pw.world.corporate.pk],
            variants={pw.world.corporate.pk: "Short version for X."},
        ),
    )
    rev = draft.latest_revision
    assert rev is not None and {t.effective_text for t in rev.targets.all()} == {
        long,
        "Short version for X.",
    }


def test_block_prevents_submission_until_fixed_or_overridden(pw: Any) -> None:
    draft = actions.create_draft(
        actor=pw.publisher, data=draft_input(pw.account, "Guaranteed returns of 12% a year!")
    )
    rev = draft.latest_revision
    assert rev is not None and rev.verdict == "block" and rev.blocked
    hit = rev.screening[0]["hits"][0]
    assert (
        hit["rule_id"] == "promise.returns" and hit["matched_text"].lower() == "guaranteed returns"
    )
    with pytest.raises(ValidationFailed, match="blocks"):
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    # Nobody but compliance overrides; never the author; always with a reason.
    with pytest.raises(Forbidden):
        actions.override_block(actor=pw.approver, revision_id=rev.pk, reason="I like it a lot")
    with pytest.raises(ValidationFailed):
        actions.override_block(actor=pw.officer, revision_id=rev.pk, reason="ok")
    start = last_audit_id()
    actions.override_block(
        actor=pw.officer, revision_id=rev.pk, reason="Quoted from the regulator's own release."
    )
    assert "publishing.revision.override" in audit_actions_since(start)
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    assert "regulator" in req.notes_for_approvers
    steps = list(req.steps.all())
    assert steps[-1].added_by_screening and steps[-1].role == Role.COMPLIANCE_OFFICER.value


def test_escalate_adds_a_compliance_step(pw: Any) -> None:
    draft = actions.create_draft(
        actor=pw.publisher, data=draft_input(pw.account, "Stay safe during the hurricane.")
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    req = ApprovalRequest.objects.get(subject_group=f"draft:{draft.pk}", state="pending")
    assert [s.name for s in req.steps.all()][-1].startswith("Compliance review")
    req = approve_all(pw, draft)
    assert req.state == "approved"
    assert req.approvals.filter(approver=pw.officer).exists()


def test_edit_makes_revisions_and_a_diff(pw: Any) -> None:
    from vetline.publishing import selectors

    draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, "Hello world"))
    rev2 = actions.save_draft(
        actor=pw.publisher, draft_id=draft.pk, data=draft_input(pw.account, "Hello brave world")
    )
    assert rev2.number == 2
    diff = selectors.revision_diff(selectors.previous_revision(rev2), rev2)
    assert ("add", "brave ") in diff
    with pytest.raises(Forbidden):
        actions.save_draft(
            actor=pw.approver, draft_id=draft.pk, data=draft_input(pw.account, "Hijack")
        )


# --- Publishing --------------------------------------------------------------------------------


def test_publishes_once_to_the_sandbox_and_links_the_archive(
    pw: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        draft = actions.create_draft(
            actor=pw.publisher, data=draft_input(pw.account, "Our spring webinar is open.")
        )
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
        req = approve_all(pw, draft)
    assert req.state == "approved"
    pub = Publication.objects.get(draft=draft)
    assert pub.state == "published" and pub.remote_id.startswith("sbx-")
    assert SandboxPost.objects.filter(text="Our spring webinar is open.").count() == 1
    draft.refresh_from_db()
    assert draft.state == DraftState.PUBLISHED
    # The approval record is archived with its approval reference...
    approval_rec = ArchivedRecord.objects.get(pk=pub.approval_record_id)
    assert approval_rec.approval_ref == pub.approval_ref
    assert approval_rec.record_class == "approval_record"
    assert approval_rec.parent_remote_id == pub.remote_id
    import json

    body = json.loads(bytes(approval_rec.raw_payload))
    assert {a["email"] for a in body["approvers"]} == {pw.approver.email, pw.approver2.email}
    assert body["first_use"] is not None
    # ...and the network's own copy, captured, is linked to the publication.
    captured = ArchivedRecord.objects.get(pk=pub.archived_record_id)
    assert captured.remote_id == pub.remote_id and captured.text == pub.text
    # It is not a rogue post.
    assert not RoguePost.objects.exists()
    # Publishing the same publication again does nothing.
    assert actions.publish_publication(publication_id=pub.pk) == "published"
    assert SandboxPost.objects.filter(text="Our spring webinar is open.").count() == 1


def test_published_media_are_archived_as_blobs_of_the_approval_record(
    pw: Any, django_capture_on_commit_callbacks: Any
) -> None:
    import hashlib

    from vetline.archive.blobs import default_store

    image = PNG + b"spring webinar banner"
    with django_capture_on_commit_callbacks(execute=True):
        draft = actions.create_draft(
            actor=pw.publisher,
            data=draft_input(
                pw.account, "Banner attached.", media=[MediaUpload(image, alt_text="Banner")]
            ),
        )
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
        approve_all(pw, draft)
    pub = Publication.objects.get(draft=draft)
    assert pub.state == "published"
    approval_rec = ArchivedRecord.objects.get(pk=pub.approval_record_id)
    digest = hashlib.sha256(image).hexdigest()
    assert approval_rec.attachments == [digest]
    assert default_store().get(digest) == image


def test_last_use_when_deleted_on_the_network(
    pw: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from vetline.connectors.actions import capture_account

    with django_capture_on_commit_callbacks(execute=True):
        draft = actions.create_draft(
            actor=pw.publisher, data=draft_input(pw.account, "Short-lived")
        )
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
        approve_all(pw, draft)
    pub = Publication.objects.get(draft=draft)
    assert pub.last_used_at is None
    sandbox.delete_post(post=SandboxPost.objects.get(remote_id=pub.remote_id))
    with django_capture_on_commit_callbacks(execute=True):
        capture_account(account_id=pw.account.pk)
    actions.follow_archive()
    pub.refresh_from_db()
    assert pub.last_used_at is not None and pub.last_use_reason == "deleted"


def test_failure_is_visible_and_alerts_the_publisher(
    pw: Any, django_capture_on_commit_callbacks: Any
) -> None:
    timeline = SandboxAccount.objects.get(handle="acme-training")
    sandbox.revoke_grant(timeline)
    with django_capture_on_commit_callbacks(execute=True):
        draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, "Doomed"))
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
        approve_all(pw, draft)
    pub = Publication.objects.get(draft=draft)
    draft.refresh_from_db()
    assert pub.state == "failed" and "access" in pub.last_error
    assert draft.state == DraftState.FAILED and draft.last_error
    alert = Alert.objects.get(code=f"publish_failed:{pub.pk}")
    assert alert.deliveries.filter(person=pw.publisher).exists()
    assert any(pw.publisher.email in m.to for m in mail.outbox)
    assert not SandboxPost.objects.filter(text="Doomed").exists()


# --- Freeze ------------------------------------------------------------------------------------


def test_freeze_holds_queue_and_lifting_needs_each_item_decided(
    pw: Any, django_capture_on_commit_callbacks: Any
) -> None:
    later = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    drafts = []
    for text in ("Cheerful post one", "Cheerful post two"):
        draft = actions.create_draft(
            actor=pw.publisher, data=draft_input(pw.account, text, scheduled_for=later)
        )
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
        approve_all(pw, draft)
        drafts.append(draft)
    with pytest.raises(Forbidden):
        actions.start_freeze(actor=pw.publisher, reason="Tragedy in the news")
    start = last_audit_id()
    freeze = actions.start_freeze(actor=pw.officer, reason="Tragedy in the news")
    assert "publishing.freeze.start" in audit_actions_since(start)
    pubs = list(Publication.objects.filter(draft__in=drafts))
    assert {p.state for p in (Publication.objects.get(pk=p.pk) for p in pubs)} == {"frozen"}
    assert HeldItem.objects.filter(freeze=freeze).count() == 2
    # The scheduled job fires during the freeze: nothing goes out.
    for p in pubs:
        assert (
            actions.publish_publication(
                publication_id=p.pk, now=timezone.now() + dt.timedelta(hours=3)
            )
            == "frozen"
        )
    assert not SandboxPost.objects.filter(text__startswith="Cheerful").exists()
    # A post approved during the freeze is held too.
    with django_capture_on_commit_callbacks(execute=True):
        late = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, "Cheerful 3"))
        actions.submit_draft(actor=pw.publisher, draft_id=late.pk)
        approve_all(pw, late)
    assert Publication.objects.get(draft=late).state == "frozen"
    assert not SandboxPost.objects.filter(text="Cheerful 3").exists()
    with pytest.raises(Conflict, match="need a decision"):
        actions.lift_freeze(actor=pw.officer, freeze_id=freeze.pk)
    actions.resolve_held(
        actor=pw.officer, freeze_id=freeze.pk, publication_id=pubs[0].pk, decision="withdrawn"
    )
    actions.resolve_held(
        actor=pw.officer, freeze_id=freeze.pk, publication_id=pubs[1].pk, decision="reconfirmed"
    )
    late_pub = Publication.objects.get(draft=late)
    actions.resolve_held(
        actor=pw.officer, freeze_id=freeze.pk, publication_id=late_pub.pk, decision="reconfirmed"
    )
    # Re-confirmed but still frozen until the lift.
    assert Publication.objects.get(pk=pubs[1].pk).state == "frozen"
    with django_capture_on_commit_callbacks(execute=True):
        actions.lift_freeze(actor=pw.officer, freeze_id=freeze.pk, reason="Over")
    assert Publication.objects.get(pk=pubs[0].pk).state == "cancelled"
    assert Publication.objects.get(pk=pubs[1].pk).state == "queued"  # due in two hours
    assert Publication.objects.get(pk=late_pub.pk).state == "published"
    drafts[0].refresh_from_db()
    assert drafts[0].state == DraftState.WITHDRAWN


def test_freeze_of_chosen_accounts_only(pw: Any, django_capture_on_commit_callbacks: Any) -> None:
    actions.start_freeze(
        actor=pw.officer, reason="Only the other one", account_ids=[pw.world.other.pk]
    )
    with django_capture_on_commit_callbacks(execute=True):
        draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, "Unaffected"))
        actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
        approve_all(pw, draft)
    assert Publication.objects.get(draft=draft).state == "published"


def test_freeze_banner_on_every_page(pw: Any, client: Any) -> None:
    actions.start_freeze(actor=pw.officer, reason="Breaking news: stop everything")
    client.force_login(pw.world.people[Role.EMPLOYEE])
    page = client.get("/").content.decode()
    assert "freeze-banner" in page and "Breaking news" in page


# --- Rogue posts -------------------------------------------------------------------------------


def test_rogue_post_alarm(pw: Any, django_capture_on_commit_callbacks: Any) -> None:
    from vetline.connectors.actions import capture_account

    timeline = SandboxAccount.objects.get(handle="acme-training")
    sandbox.create_post(
        timeline=timeline,
        author=timeline,
        text="lol can't wait for the weekend, guaranteed returns",
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        capture_account(account_id=pw.account.pk)
    actions.follow_archive()  # idempotent: the signal's kick may already have run it
    rogue = RoguePost.objects.get()
    assert rogue.account == pw.account and rogue.verdict == "block"
    alert = Alert.objects.get(pk=rogue.alert_id)
    assert alert.severity == "critical"
    recipients = set(alert.deliveries.values_list("person__email", flat=True))
    assert pw.officer.email in recipients  # owner and compliance (the owner is the officer here)
    # A second run and a restart from the cursor do not raise it twice.
    assert actions.follow_archive() == 0
    assert RoguePost.objects.count() == 1
    actions.acknowledge_rogue(actor=pw.officer, rogue_id=rogue.pk, note="Agency briefed")
    rogue.refresh_from_db()
    assert rogue.status == "acknowledged"
    with pytest.raises(Exception):  # noqa: B017 - NotFound for someone who may not see it
        actions.acknowledge_rogue(actor=pw.publisher, rogue_id=rogue.pk)


def test_posts_on_employee_accounts_or_inbound_are_not_rogue(pw: Any) -> None:
    from vetline.archive.actions import ingest_batch

    ingest_batch(
        items=[
            {"remote_id": "in-1", "kind": "reply", "direction": "inbound", "text": "hi"},
        ],
        account=pw.account,
        source="test",
        actor=None,
    )
    ingest_batch(
        items=[{"remote_id": "emp-1", "kind": "post", "direction": "outbound", "text": "mine"}],
        account=pw.world.employee_account,
        source="test",
        actor=None,
    )
    actions.follow_archive()
    assert not RoguePost.objects.exists()


def test_overlapping_freezes_each_need_their_decision(
    pw: Any, django_capture_on_commit_callbacks: Any
) -> None:
    later = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    draft = actions.create_draft(
        actor=pw.publisher, data=draft_input(pw.account, "Held twice", scheduled_for=later)
    )
    actions.submit_draft(actor=pw.publisher, draft_id=draft.pk)
    approve_all(pw, draft)
    pub = Publication.objects.get(draft=draft)
    first = actions.start_freeze(actor=pw.officer, reason="First tragedy")
    second = actions.start_freeze(
        actor=pw.officer, reason="Second tragedy", account_ids=[pw.account.pk]
    )
    assert HeldItem.objects.filter(publication=pub).count() == 2
    actions.resolve_held(
        actor=pw.officer, freeze_id=first.pk, publication_id=pub.pk, decision="reconfirmed"
    )
    actions.lift_freeze(actor=pw.officer, freeze_id=first.pk)
    assert Publication.objects.get(pk=pub.pk).state == "frozen"  # the second still holds it
    actions.resolve_held(
        actor=pw.officer, freeze_id=second.pk, publication_id=pub.pk, decision="reconfirmed"
    )
    actions.lift_freeze(actor=pw.officer, freeze_id=second.pk)
    assert Publication.objects.get(pk=pub.pk).state == "queued"


# --- Settling by hand a publication whose fate is unknown --------------------------------------

REASON = "Looked at the account's timeline on the network at 10:05."


def _settle(pw: Any, pub: Publication, outcome: str, **kw: Any) -> Publication:
    args: dict[str, Any] = {"reason": REASON, **kw}
    return actions.settle_publication(
        actor=pw.officer, publication_id=pub.pk, outcome=outcome, **args
    )


def test_settled_as_published_is_recorded_like_a_reconciled_one_and_never_sent_again(
    pw: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from vetline.audit.models import AuditEvent
    from vetline.connectors.actions import capture_account
    from vetline.connectors.models import CaptureState

    pub = stuck_publication(pw, monkeypatch, "Went out, then the worker died", sent=True)
    post = SandboxPost.objects.get(text="Went out, then the worker died")
    alert = Alert.objects.get(code=f"publish_unknown:{pub.pk}", resolved_at__isnull=True)
    assert alert.link == "/publishing/unsettled/"
    start = last_audit_id()
    with django_capture_on_commit_callbacks(execute=True):
        settled = _settle(
            pw, pub, "published", remote_id=f" {post.remote_id} ", url="https://sbx.test/p/1"
        )
    assert settled.state == "published" and settled.remote_id == post.remote_id
    assert settled.url == "https://sbx.test/p/1"
    assert settled.published_at == pub.intent_at  # no archived copy yet: first use = intent
    assert settled.approval_record_id is not None  # the FINRA 2210 approval record
    approval_rec = ArchivedRecord.objects.get(pk=settled.approval_record_id)
    assert approval_rec.approval_ref == pub.approval_ref
    assert approval_rec.parent_remote_id == post.remote_id
    settled.draft.refresh_from_db()
    assert settled.draft.state == DraftState.PUBLISHED
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert audit_actions_since(start)[:3] == [
        "publishing.publication.published",
        "publishing.draft.published",
        "publishing.publication.settle",
    ]
    assert "connectors.alert.resolve" in audit_actions_since(start)
    event = AuditEvent.objects.get(id__gt=start, action="publishing.publication.settle")
    assert event.actor_id == pw.officer.pk
    assert event.before is not None and event.before["state"] == "sending"
    assert event.after is not None
    assert event.after["state"] == "published" and event.after["outcome"] == "published"
    assert event.after["remote_id"] == post.remote_id and event.after["reason"] == REASON
    # Never sent again, by any path.
    assert actions.publish_publication(publication_id=pub.pk) == "published"
    assert actions.reconcile_publication(publication_id=pub.pk) == "published"
    with pytest.raises(Conflict):
        actions.retry_publication(actor=pw.publisher, publication_id=pub.pk)
    with pytest.raises(Conflict, match="published"):
        _settle(pw, pub, "not_published")
    # The original worker's late answer is recognised, not recorded twice.
    assert (
        actions.record_published(
            publication_id=pub.pk, token=pub.intent_token, remote_id=post.remote_id, url=""
        )
        == "published"
    )
    assert SandboxPost.objects.filter(text="Went out, then the worker died").count() == 1
    # When capture works again, the network's copy is linked and is not a rogue post.
    CaptureState.objects.filter(account=pw.account).update(retry_not_before=None)
    with django_capture_on_commit_callbacks(execute=True):
        capture_account(account_id=pw.account.pk)
    actions.follow_archive()
    settled.refresh_from_db()
    assert settled.archived_record_id is not None
    assert not RoguePost.objects.exists()


def test_settled_as_not_published_fails_for_its_author_to_retry(
    pw: Any, monkeypatch: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from vetline.publishing.models import Notification

    pub = stuck_publication(pw, monkeypatch, "The worker died before sending", sent=False)
    start = last_audit_id()
    with django_capture_on_commit_callbacks(execute=True):
        settled = _settle(pw, pub, "not_published")
    assert settled.state == "failed" and settled.intent_token == ""
    assert REASON in settled.last_error and settled.remote_id == ""
    settled.draft.refresh_from_db()
    assert settled.draft.state == DraftState.FAILED
    assert Notification.objects.filter(
        person=pw.publisher, title__startswith="Not published on"
    ).exists()
    assert Alert.objects.get(code=f"publish_unknown:{pub.pk}").resolved_at is not None
    assert audit_actions_since(start)[0] == "publishing.publication.failed"
    assert "publishing.publication.settle" in audit_actions_since(start)
    # Nothing goes out by itself...
    assert actions.publish_publication(publication_id=pub.pk) == "failed"
    assert actions.reconcile_publication(publication_id=pub.pk) == "failed"
    assert not SandboxPost.objects.filter(text="The worker died before sending").exists()
    # ...only when its author decides to send it again.
    with django_capture_on_commit_callbacks(execute=True):
        actions.retry_publication(actor=pw.publisher, publication_id=pub.pk)
    pub.refresh_from_db()
    assert pub.state == "published"
    assert SandboxPost.objects.filter(text="The worker died before sending").count() == 1


def test_settling_is_refused_unless_allowed_complete_and_settleable(
    pw: Any, monkeypatch: Any
) -> None:
    from vetline.core.errors import NotFound

    pub = stuck_publication(pw, monkeypatch, "Fate unknown", sent=True)
    post = SandboxPost.objects.get(text="Fate unknown")
    for who in (pw.publisher, pw.approver, pw.admin, pw.world.people[Role.AUDITOR]):
        with pytest.raises(Forbidden):
            actions.settle_publication(
                actor=who, publication_id=pub.pk, outcome="not_published", reason=REASON
            )
    bad: list[tuple[dict[str, Any], str]] = [
        ({"outcome": "published", "remote_id": post.remote_id, "reason": " "}, "reason"),
        ({"outcome": "published", "remote_id": post.remote_id, "reason": "x" * 2001}, "reason"),
        ({"outcome": "published", "remote_id": "  "}, "remote_id"),
        ({"outcome": "published", "remote_id": "x" * 301}, "remote_id"),
        ({"outcome": "published", "remote_id": post.remote_id, "url": "javascript:x"}, "url"),
        ({"outcome": "not_published", "remote_id": post.remote_id}, "remote_id"),
        ({"outcome": "maybe"}, "outcome"),
    ]
    for kw, field in bad:
        args = {"reason": REASON, **kw}
        with pytest.raises(ValidationFailed) as exc:
            actions.settle_publication(actor=pw.officer, publication_id=pub.pk, **args)
        assert exc.value.field == field, kw
    with pytest.raises(NotFound):
        _settle(pw, Publication(pk=10**9), "not_published")
    # Never one a worker may still be sending: the intent is younger than the threshold.
    assert pub.intent_at is not None
    with pytest.raises(Conflict) as in_flight:
        actions.settle_publication(
            actor=pw.officer,
            publication_id=pub.pk,
            outcome="not_published",
            reason=REASON,
            now=pub.intent_at + actions.SEND_STALE - dt.timedelta(seconds=1),
        )
    assert in_flight.value.code == "in_flight"
    # Nothing changed, and the alert is still open.
    pub.refresh_from_db()
    assert pub.state == "sending"
    assert Alert.objects.get(code=f"publish_unknown:{pub.pk}").resolved_at is None
    # A network id already recorded for another publication of the account is refused.
    other = Publication.objects.filter(pk=pub.pk)
    queued_draft = actions.create_draft(actor=pw.publisher, data=draft_input(pw.account, "Next"))
    actions.submit_draft(actor=pw.publisher, draft_id=queued_draft.pk)
    approve_all(pw, queued_draft)
    queued = Publication.objects.get(draft=queued_draft)
    assert queued.state == "queued"
    with pytest.raises(Conflict) as not_settleable:
        _settle(pw, queued, "not_published")
    assert not_settleable.value.code == "not_settleable"
    Publication.objects.filter(pk=queued.pk).update(remote_id="sbx-taken")  # as if published
    with pytest.raises(Conflict) as taken:
        _settle(pw, pub, "published", remote_id="sbx-taken")
    assert taken.value.code == "remote_id_taken"
    assert other.get().state == "sending"
