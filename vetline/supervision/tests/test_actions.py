"""Flags, review, evidence, escalation, bulk, retroactive runs: through the actions, with the
real archive ingest and the real screening engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from vetline.audit.models import AuditEvent
from vetline.core.errors import Conflict, Forbidden, ValidationFailed
from vetline.supervision import actions
from vetline.supervision.models import (
    AppendOnlyError,
    ReviewAction,
    ReviewItem,
    RunState,
    SupervisionSettings,
)
from vetline.supervision.tests.conftest import ingest

pytestmark = pytest.mark.django_db


def item_for(desk: Any, key: str) -> ReviewItem:
    return ReviewItem.objects.get(record_id=desk.records[key])


def test_flags_reach_the_severity_and_are_routed(desk: Any) -> None:
    items = {i.record_id: i for i in ReviewItem.objects.all()}
    assert set(items) == {desk.records["a1"], desk.records["b1"]}  # info (lunch) is not flagged
    a1 = items[desk.records["a1"]]
    assert a1.queue == desk.queue_a and a1.routed_by is None  # the default queue
    assert a1.rule_ids == ["promissory"] and a1.severity == 3
    assert a1.hits[0]["matched_text"] == "guarantee"
    assert a1.origin_key == "flag:supervision-test:v1"
    assert a1.due_at is not None and a1.state == "open"
    b1 = items[desk.records["b1"]]
    assert b1.queue == desk.queue_b and b1.routed_by is not None
    setting = SupervisionSettings.load()
    assert setting.flag_cursor_record_id == max(desk.records.values())
    assert AuditEvent.objects.filter(action="supervision.flags.process").count() == 1


def test_follower_is_idempotent_and_moves_on(desk: Any) -> None:
    assert actions.process_new_records() == 0
    assert ReviewItem.objects.count() == 2
    new = ingest(
        desk.world.corporate,
        [{"remote_id": "a9", "kind": "post", "direction": "outbound", "text": "guaranteed!"}],
    )
    assert actions.process_new_records() == 1
    assert ReviewItem.objects.filter(record_id=new[0]).count() == 1


def test_threshold_setting(desk: Any) -> None:
    actions.update_settings(actor=desk.co, policy=None, flag_min_severity=1, overdue_after_days=3)
    new = ingest(
        desk.world.corporate,
        [{"remote_id": "a10", "kind": "post", "direction": "outbound", "text": "lunch again"}],
    )
    actions.process_new_records()
    assert ReviewItem.objects.get(record_id=new[0]).severity == 1
    with pytest.raises(Forbidden):
        actions.update_settings(
            actor=desk.sup, policy=None, flag_min_severity=1, overdue_after_days=3
        )


def test_review_with_evidence_and_escalation_chain(desk: Any) -> None:
    item = item_for(desk, "a1")
    actions.open_item(actor=desk.sup, item=item)
    item = actions.claim_item(actor=desk.sup, item=item)
    with pytest.raises(Conflict):
        actions.claim_item(actor=desk.co, item=item)
    with pytest.raises(ValidationFailed) as exc:
        actions.dispose_item(actor=desk.sup, item=item, disposition="violation_escalated")
    assert exc.value.field == "comment"
    item = actions.dispose_item(
        actor=desk.sup,
        item=item,
        disposition="violation_escalated",
        comment="Promises returns; compliance must decide.",
        time_spent_seconds=95,
    )
    assert item.state == "escalated" and item.queue_id == desk.compliance.pk
    assert item.escalation_level == 1 and item.assignee is None
    # The first reviewer no longer sees it (not their queue); the compliance officer does.
    with pytest.raises(Forbidden):
        actions.claim_item(actor=desk.sup, item=item)
    b1 = actions.claim_item(actor=desk.sup2, item=item_for(desk, "b1"))
    with pytest.raises(Conflict):  # someone else is reviewing it
        actions.dispose_item(actor=desk.co, item=b1, disposition="no_issue")
    item = actions.dispose_item(  # an escalated item is claimed as part of the disposition
        actor=desk.co, item=item, disposition="violation_escalated", comment="Reported."
    )
    assert item.state == "closed" and item.closed_at is not None  # top of the chain

    evidence = list(ReviewAction.objects.filter(item=item).order_by("at", "id"))
    assert [e.action for e in evidence] == ["open", "claim", "disposition", "claim", "disposition"]
    assert [e.is_review for e in evidence] == [False, False, True, False, True]
    first = evidence[2]
    assert first.reviewer == desk.sup and first.disposition == "violation_escalated"
    assert first.time_spent_seconds == 95 and first.comment.startswith("Promises")
    assert first.from_state == "claimed" and first.to_state == "escalated"
    for e in evidence:  # every action has its audit event, with the same actor
        event = AuditEvent.objects.get(pk=e.audit_event_id)
        assert event.actor_id == e.reviewer_id and event.object_id == str(item.pk)
        assert event.action.startswith("supervision.item.")
    assert item.review_seconds_total >= 95
    with pytest.raises(AppendOnlyError):
        evidence[0].save()
    with pytest.raises(AppendOnlyError):
        ReviewAction.objects.filter(item=item).update(comment="x")
    with pytest.raises(AppendOnlyError):
        evidence[0].delete()


def test_needs_info_then_no_issue_without_comment(desk: Any) -> None:
    item = actions.claim_item(actor=desk.sup, item=item_for(desk, "a1"))
    item = actions.dispose_item(
        actor=desk.sup, item=item, disposition="needs_info", comment="Ask the author."
    )
    assert item.state == "needs_info"
    item = actions.dispose_item(actor=desk.sup, item=item, disposition="no_issue")
    assert item.state == "closed" and item.disposition == "no_issue"
    with pytest.raises(Conflict):
        actions.claim_item(actor=desk.sup, item=item)


def test_assign_and_release(desk: Any) -> None:
    item = item_for(desk, "a1")
    with pytest.raises(Forbidden):
        actions.assign_item(actor=desk.sup, item=item, assignee=desk.sup)
    with pytest.raises(ValidationFailed):
        actions.assign_item(actor=desk.co, item=item, assignee=desk.sup2)  # not their queue
    item = actions.assign_item(actor=desk.co, item=item, assignee=desk.sup)
    assert item.assignee == desk.sup and item.state == "claimed"
    item = actions.release_item(actor=desk.sup, item=item)
    assert item.state == "open" and item.assignee is None


def test_bulk_false_positives(desk: Any) -> None:
    more = ingest(
        desk.world.corporate,
        [
            {"remote_id": f"g{i}", "kind": "post", "direction": "outbound", "text": "guarantee"}
            for i in range(3)
        ],
    )
    actions.process_new_records()
    ids = list(ReviewItem.objects.filter(record_id__in=more).values_list("pk", flat=True))
    with pytest.raises(ValidationFailed):
        actions.bulk_dispose_false_positives(actor=desk.sup, item_ids=ids, reason=" ")
    b1 = item_for(desk, "b1")
    with pytest.raises(Exception) as exc:  # not visible to this reviewer: all or nothing
        actions.bulk_dispose_false_positives(actor=desk.sup, item_ids=[*ids, b1.pk], reason="r")
    assert "not yours" in str(exc.value)
    assert not ReviewItem.objects.filter(pk__in=ids, state="closed").exists()
    done = actions.bulk_dispose_false_positives(
        actor=desk.sup, item_ids=ids, reason="Quoted a client's question.", time_spent_seconds=30
    )
    assert {i.state for i in done} == {"closed"}
    ev = ReviewAction.objects.filter(item_id__in=ids)
    assert ev.count() == 3 and {e.action for e in ev} == {"bulk_disposition"}
    assert {e.time_spent_seconds for e in ev} == {10}
    assert all(e.comment == "Quoted a client's question." for e in ev)


def test_retro_run_is_tracked_and_idempotent(desk: Any) -> None:
    from vetline.policy.actions import save_policy_version

    now = timezone.now()
    stricter = desk.policy.current_version().spec_yaml.replace("severity: info", "severity: warn")
    save_policy_version(actor=desk.co, policy=desk.policy, spec_yaml=stricter, note="warn")
    run = actions.start_retro_run(
        actor=desk.co,
        policy=desk.policy,
        captured_from=now - dt.timedelta(days=1),
        captured_to=now + dt.timedelta(days=1),
        run_now=False,
    )
    assert run.total == 4 and run.policy_version.number == 2
    seen: list[int] = []
    run = actions.run_retro(run_id=run.pk, on_progress=lambda r: seen.append(r.percent))
    assert run.state == RunState.DONE and run.processed == 4 and seen[-1] == 100
    # a2 (lunch) is newly flagged; a1 and b1 are still open: counted, not queued twice.
    assert run.flagged == 1 and run.already_queued == 2
    assert ReviewItem.objects.filter(record_id=desk.records["a2"], retro_run=run).exists()
    again = actions.start_retro_run(
        actor=desk.co,
        policy=desk.policy,
        captured_from=now - dt.timedelta(days=1),
        captured_to=now + dt.timedelta(days=1),
        run_now=False,
    )
    again = actions.run_retro(run_id=again.pk)
    assert again.flagged == 0 and ReviewItem.objects.count() == 3
    with pytest.raises(ValidationFailed):
        actions.start_retro_run(
            actor=desk.co, policy=desk.policy, captured_from=now, captured_to=now
        )
