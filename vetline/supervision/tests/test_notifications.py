"""Supervision e-mails with Django's locmem backend (real EmailMessage objects in
``mail.outbox``): the digest (batching, rate limit, visibility, opt-out), overdue notices and
escalations (once per item and level, restart-safe), sending failures retried and audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import Client
from django.utils import timezone

from vetline.audit.models import AuditEvent
from vetline.supervision import actions
from vetline.supervision.models import (
    NotificationEmail,
    NotificationKind,
    NotificationStatus,
    OverdueNotice,
    ReviewItem,
)
from vetline.supervision.notifications import (
    plan_digests,
    plan_overdue,
    run_notifications,
    send_pending,
)
from vetline.supervision.tests.conftest import ingest

pytestmark = pytest.mark.django_db

BROKEN = "vetline.supervision.tests.test_notifications.RefusingBackend"


class RefusingBackend(BaseEmailBackend):
    """An e-mail backend whose server refuses every message (the SMTP server being down)."""

    def send_messages(self, email_messages: Any) -> int:
        raise OSError("connection refused")


def _to(person: Any) -> list[Any]:
    return [m for m in mail.outbox if m.to == [person.email]]


def _item(desk: Any, key: str) -> ReviewItem:
    return ReviewItem.objects.get(record_id=desk.records[key])


def _make_overdue(*items: ReviewItem) -> None:
    past = timezone.now() - dt.timedelta(hours=1)
    ReviewItem.objects.filter(pk__in=[i.pk for i in items]).update(due_at=past)


def test_digest_per_reviewer_counts_per_queue_links_and_no_message_text(desk: Any) -> None:
    a1, b1 = _item(desk, "a1"), _item(desk, "b1")
    result = run_notifications()
    assert result["digests"] == 2 and result["sent"] == 2
    (to_sup,) = _to(desk.sup)
    (to_sup2,) = _to(desk.sup2)
    assert _to(desk.co) == []  # the compliance queue has nothing new for them
    assert to_sup.subject == "[Vetline] 1 new review item waiting"
    assert "Queue A: 1" in to_sup.body
    assert f"/supervision/?queue={desk.queue_a.pk}" in to_sup.body
    assert f"#{a1.pk} in Queue A (flagged)" in to_sup.body
    assert f"/supervision/items/{a1.pk}/" in to_sup.body
    # Visibility: nothing of the queue the reviewer does not review, and never message text.
    assert "Queue B" not in to_sup.body and f"#{b1.pk}" not in to_sup.body
    assert "guarantee" not in to_sup.body.lower()
    assert "Queue B: 1" in to_sup2.body and "Queue A" not in to_sup2.body
    # One audit event per e-mail, with recipients and counts.
    events = AuditEvent.objects.filter(action="supervision.notification.send").order_by("pk")
    assert [e.after["recipients"] for e in events] == [[desk.sup.email], [desk.sup2.email]]
    assert events[0].after["counts"] == {"Queue A": 1}
    assert events[0].after["kind"] == "digest"
    assert all(r.status == NotificationStatus.SENT for r in NotificationEmail.objects.all())


def test_digest_batches_new_items_and_sends_at_most_one_per_window(
    desk: Any, settings: Any
) -> None:
    settings.VETLINE_SUPERVISION_DIGEST_MINUTES = 60
    now = timezone.now()
    run_notifications(now=now)
    assert len(_to(desk.sup)) == 1
    for n in range(2):
        ingest(
            desk.world.corporate,
            [
                {
                    "remote_id": f"n{n}{i}",
                    "kind": "post",
                    "direction": "outbound",
                    "text": "guaranteed",
                }
                for i in range(3)
            ],
        )
        actions.process_new_records()
        run_notifications(now=now + dt.timedelta(minutes=10 + n * 20))
    assert len(_to(desk.sup)) == 1  # six new items, no e-mail inside the window
    run_notifications(now=now + dt.timedelta(minutes=61))
    digests = _to(desk.sup)
    assert len(digests) == 2
    assert "6 new review items" in digests[1].subject and "Queue A: 6" in digests[1].body
    run_notifications(now=now + dt.timedelta(minutes=200))
    assert len(_to(desk.sup)) == 2  # nothing new: no empty digest


def test_digest_follows_queue_membership(desk: Any) -> None:
    actions.set_queue_reviewers(actor=desk.co, queue=desk.queue_a, reviewers=[desk.sup2])
    run_notifications()
    assert _to(desk.sup) == []  # no longer a reviewer of Queue A: sees none of it
    (to_sup2,) = _to(desk.sup2)
    assert "Queue A: 1" in to_sup2.body and "Queue B: 1" in to_sup2.body


def test_digest_leaves_out_items_assigned_to_someone_else(desk: Any) -> None:
    actions.set_queue_reviewers(actor=desk.co, queue=desk.queue_a, reviewers=[desk.sup, desk.sup2])
    actions.assign_item(actor=desk.co, item=_item(desk, "a1"), assignee=desk.sup2)
    run_notifications()
    assert _to(desk.sup) == []
    assert "Queue A: 1" in _to(desk.sup2)[0].body


def test_opting_out_stops_the_digest_not_the_overdue_notice(desk: Any, client: Client) -> None:
    client.force_login(desk.sup)
    response = client.post("/supervision/notifications/", {"digest_enabled": "0"})
    assert response.status_code == 302
    (event,) = AuditEvent.objects.filter(action="supervision.digest.preference", actor=desk.sup)
    assert event.before == {"digest_enabled": True} and event.after == {"digest_enabled": False}
    page = client.get("/supervision/notifications/").content.decode()
    assert '<strong id="digest-state">off</strong>' in page
    run_notifications()
    assert _to(desk.sup) == []
    _make_overdue(_item(desk, "a1"))
    run_notifications()
    (notice,) = _to(desk.sup)
    assert notice.subject == "[Vetline] 1 review item overdue"
    # Back on: the items reported while off are not delivered as a backlog.
    actions.set_digest_preference(actor=desk.sup, enabled=True)
    run_notifications(now=timezone.now() + dt.timedelta(days=1))
    assert len(_to(desk.sup)) == 1


def test_overdue_notifies_assignee_and_escalates_to_managers_once_per_level(desk: Any) -> None:
    a1, b1 = _item(desk, "a1"), _item(desk, "b1")
    actions.claim_item(actor=desk.sup, item=a1)
    _make_overdue(a1, b1)
    run_notifications()
    overdue = [m for m in mail.outbox if "overdue" in m.subject]
    by_person = {m.to[0]: m for m in overdue}
    assert set(by_person) == {desk.sup.email, desk.sup2.email, desk.co.email}
    assert f"#{a1.pk}" in by_person[desk.sup.email].body
    assert f"#{b1.pk}" not in by_person[desk.sup.email].body  # not theirs to see
    assert f"#{b1.pk}" in by_person[desk.sup2.email].body  # unassigned: the queue's reviewers
    escalation = by_person[desk.co.email]
    assert escalation.subject == "[Vetline] Escalation: 2 review items overdue"
    assert f"#{a1.pk}" in escalation.body and f"#{b1.pk}" in escalation.body
    assert "guarantee" not in escalation.body.lower()
    assert OverdueNotice.objects.filter(escalation_level=0).count() == 2
    kinds = dict(
        NotificationEmail.objects.values_list("to_email", "kind").filter(
            kind__in=[NotificationKind.OVERDUE, NotificationKind.ESCALATION]
        )
    )
    assert kinds[desk.co.email] == NotificationKind.ESCALATION
    assert kinds[desk.sup.email] == NotificationKind.OVERDUE
    assert AuditEvent.objects.filter(action="supervision.overdue.notify").count() == 1

    sent = len(mail.outbox)
    run_notifications(now=timezone.now() + dt.timedelta(hours=5))
    assert len([m for m in mail.outbox[sent:] if "overdue" in m.subject]) == 0  # once

    # Escalated up the chain: a new level, a new due date, notified again when that passes.
    actions.dispose_item(
        actor=desk.sup, item=a1, disposition="violation_escalated", comment="Promissory."
    )
    a1.refresh_from_db()
    assert a1.escalation_level == 1 and a1.queue_id == desk.compliance.pk
    _make_overdue(a1)
    run_notifications(now=timezone.now() + dt.timedelta(hours=10))
    again = [m for m in mail.outbox[sent:] if "overdue" in m.subject]
    assert [m.to for m in again] == [[desk.co.email]]  # reviewer of Compliance and manager: once
    assert OverdueNotice.objects.filter(item=a1).count() == 2


def test_a_restart_between_deciding_and_sending_neither_loses_nor_repeats(desk: Any) -> None:
    _make_overdue(_item(desk, "a1"))
    assert plan_overdue() == 1
    assert plan_digests() == 2
    assert mail.outbox == []  # the worker "died" here: the decisions are committed rows
    assert NotificationEmail.objects.filter(status=NotificationStatus.PENDING).count() == 4
    assert plan_overdue() == 0 and plan_digests() == 0  # the restarted job decides nothing new
    assert send_pending() == (4, 0)
    assert len(mail.outbox) == 4
    assert run_notifications(now=timezone.now() + dt.timedelta(hours=3))["sent"] == 0
    assert len(mail.outbox) == 4


def test_a_failing_mail_server_is_retried_logged_and_never_raises(
    desk: Any, settings: Any, caplog: Any
) -> None:
    settings.EMAIL_BACKEND = BROKEN
    now = timezone.now()
    result = run_notifications(now=now)  # does not raise
    assert result == {"overdue_items": 0, "digests": 2, "sent": 0, "failed": 2}
    assert "supervision.notification.send_failed" in caplog.text
    row = NotificationEmail.objects.get(to_email=desk.sup.email)
    assert row.status == NotificationStatus.PENDING and row.attempts == 1
    assert row.last_error == "OSError: connection refused"
    assert row.next_attempt_at == now + dt.timedelta(minutes=1)
    assert send_pending(now=now + dt.timedelta(seconds=30)) == (0, 0)  # not due yet
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send_pending(now=now + dt.timedelta(minutes=1)) == (2, 0)
    row.refresh_from_db()
    assert row.status == NotificationStatus.SENT and row.attempts == 2 and row.last_error == ""
    assert len(_to(desk.sup)) == 1


def test_gives_up_after_the_configured_attempts_with_an_audit_event(
    desk: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = BROKEN
    settings.VETLINE_SUPERVISION_MAIL_ATTEMPTS = 3
    now = timezone.now()
    plan_digests(now=now)
    for minutes in (0, 1, 3, 7, 15):
        send_pending(now=now + dt.timedelta(minutes=minutes))
    rows = list(NotificationEmail.objects.all())
    assert [(r.status, r.attempts) for r in rows] == [(NotificationStatus.FAILED, 3)] * 2
    failed = AuditEvent.objects.filter(action="supervision.notification.fail")
    assert sorted(e.after["recipients"][0] for e in failed) == sorted(
        [desk.sup.email, desk.sup2.email]
    )


def test_queue_page_shows_overdue_counts_of_visible_queues(desk: Any, client: Client) -> None:
    _make_overdue(_item(desk, "a1"), _item(desk, "b1"))
    client.force_login(desk.sup)
    body = client.get("/supervision/").content.decode()
    assert 'id="overdue-counts"' in body
    assert f'href="?queue={desk.queue_a.pk}&state=open">Queue A</a>' in body
    assert "Queue B" not in body.split('id="overdue-counts"')[1].split("</div>")[0]
    client.force_login(desk.co)
    body = client.get("/supervision/").content.decode()
    counts = body.split('id="overdue-counts"')[1].split("</div>")[0]
    assert "Queue A" in counts and "Queue B" in counts


def test_notifications_page_lists_the_persons_own_mails(desk: Any, client: Client) -> None:
    run_notifications()
    client.force_login(desk.sup2)
    body = client.get("/supervision/notifications/").content.decode()
    assert "1 new review item waiting" in body and "New items digest" in body
    assert '<strong id="digest-state">on</strong>' in body
    client.force_login(desk.sup)
    body = client.get("/supervision/notifications/").content.decode()
    assert "Queue B" not in body


def test_queue_page_caps_a_large_overdue_count(desk: Any, client: Client, monkeypatch: Any) -> None:
    from vetline.supervision import selectors

    monkeypatch.setattr(selectors, "OVERDUE_COUNT_CAP", 2)
    ingest(
        desk.world.corporate,
        [
            {"remote_id": f"c{i}", "kind": "post", "direction": "outbound", "text": "guarantee"}
            for i in range(3)
        ],
    )
    actions.process_new_records()
    _make_overdue(*ReviewItem.objects.filter(queue=desk.queue_a))  # 4 overdue
    _make_overdue(_item(desk, "b1"))
    client.force_login(desk.co)
    counts = client.get("/supervision/").content.decode().split('id="overdue-counts"')[1]
    counts = counts.split("</div>")[0]
    assert 'Queue A</a> <span class="badge badge-warn">2+</span>' in counts
    assert 'Queue B</a> <span class="badge badge-warn">1</span>' in counts
