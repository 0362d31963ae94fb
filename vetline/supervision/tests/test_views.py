"""The pages: the queue (with a fixed number of queries), an item in its conversation, the
disposition flow, setup, plans, retroactive runs, inspection (audited), metrics, reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from vetline.audit.models import AuditEvent
from vetline.identity.roles import Role
from vetline.supervision.models import (
    ReviewAction,
    ReviewItem,
    SamplingPlan,
    SupervisionReport,
)
from vetline.supervision.tests.conftest import ingest

pytestmark = pytest.mark.django_db


def _queue_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/supervision/")
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_queue_page_runs_a_fixed_number_of_queries(desk: Any, client: Client) -> None:
    from vetline.supervision.actions import process_new_records

    client.force_login(desk.sup)
    few = _queue_queries(client)
    ingest(
        desk.world.corporate,
        [
            {"remote_id": f"q{i}", "kind": "post", "direction": "outbound", "text": "guarantee"}
            for i in range(80)
        ],
    )
    process_new_records()
    assert ReviewItem.objects.filter(queue=desk.queue_a).count() == 81
    many = _queue_queries(client)
    assert many == few
    assert many <= 16, many  # session, person, roles, the layout's badges, and 4 of the page


def test_item_page_shows_context_and_hits_and_logs_the_opening(desk: Any, client: Client) -> None:
    item = ReviewItem.objects.get(record_id=desk.records["a1"])
    client.force_login(desk.sup)
    body = client.get(f"/supervision/items/{item.pk}/").content.decode()
    assert '<mark class="sev-escalate"' in body and "guarantee" in body
    assert "Promises of returns are not allowed." in body  # the hit explained
    assert "Nice lunch today" in body  # the conversation around it
    opened = ReviewAction.objects.get(item=item)
    assert opened.action == "open" and not opened.is_review
    assert AuditEvent.objects.filter(action="supervision.item.open", actor=desk.sup).exists()


def test_disposition_flow_through_the_pages(desk: Any, client: Client) -> None:
    item = ReviewItem.objects.get(record_id=desk.records["a1"])
    client.force_login(desk.sup)
    client.post(f"/supervision/items/{item.pk}/claim/")
    response = client.post(
        f"/supervision/items/{item.pk}/disposition/", {"disposition": "false_positive"}, follow=True
    )
    assert "comment" in response.content.decode().lower()
    item.refresh_from_db()
    assert item.state == "claimed"
    client.post(
        f"/supervision/items/{item.pk}/disposition/",
        {"disposition": "false_positive", "comment": "A quote."},
    )
    item.refresh_from_db()
    assert item.state == "closed" and item.disposition == "false_positive"


def test_bulk_page(desk: Any, client: Client) -> None:
    item = ReviewItem.objects.get(record_id=desk.records["a1"])
    client.force_login(desk.sup)
    client.post("/supervision/bulk-false-positives/", {"items": [item.pk], "reason": "Noise."})
    item.refresh_from_db()
    assert item.disposition == "false_positive"


def test_setup_and_plan_pages(desk: Any, client: Client) -> None:
    client.force_login(desk.co)
    assert client.get("/supervision/manage/").status_code == 200
    response = client.post(
        "/supervision/manage/",
        {"form": "population", "name": "Wealth", "business_units": "Wealth, Retail"},
    )
    assert response.status_code == 302
    response = client.post(
        "/supervision/plans/",
        {
            "name": "Bad",
            "population": desk.pop_a.pk,
            "queue": desk.queue_a.pk,
            "period": "weekly",
            "method": "statistical",
            "confidence": "0.95",
            "tolerable_rate": "0.02",
            "expected_rate": "0.03",
        },
    )
    assert response.status_code == 422
    assert "tolerable" in response.content.decode().lower()
    assert not SamplingPlan.objects.exists()
    response = client.post(
        "/supervision/plans/",
        {
            "name": "Daily all",
            "population": desk.pop_a.pk,
            "queue": desk.queue_a.pk,
            "period": "daily",
            "method": "fixed_rate",
            "fixed_rate_percent": "50",
        },
    )
    plan = SamplingPlan.objects.get()
    assert response.status_code == 302
    client.post(f"/supervision/plans/{plan.pk}/run/", {"day": "2001-01-01"})
    body = client.get(f"/supervision/plans/{plan.pk}/").content.decode()
    assert "Nothing to sample" in body


def test_retro_page_shows_progress(desk: Any, client: Client) -> None:
    client.force_login(desk.co)
    today = timezone.now().date()
    response = client.post(
        "/supervision/retro/",
        {
            "policy": desk.policy.pk,
            "captured_from": (today - dt.timedelta(days=1)).isoformat(),
            "captured_to": today.isoformat(),
        },
    )
    assert response.status_code == 302
    partial = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert "<progress" in partial and 'id="retro-progress"' in partial


def test_inspection_is_audited(desk: Any, client: Client) -> None:
    client.force_login(desk.world.people[Role.EXECUTIVE])
    today = timezone.now().date().isoformat()
    body = client.get(
        f"/supervision/inspect/?account={desk.world.corporate.pk}&start=2020-01-01&end={today}"
    ).content.decode()
    assert "We guarantee 10% returns!" in body and "Nice lunch today" in body
    assert "Guaranteed gains" not in body  # another account
    event = AuditEvent.objects.get(action="supervision.inspection.view")
    assert event.after["records"] == 3 and event.after["account"] == desk.world.corporate.pk
    owner = client.get(
        f"/supervision/inspect/?person={desk.co.pk}&start=2020-01-01&end={today}"
    ).content.decode()
    assert "Guaranteed gains" in owner  # the compliance officer owns both corporate accounts
    assert AuditEvent.objects.filter(action="supervision.inspection.view").count() == 2


def test_metrics_are_charts(desk: Any, client: Client) -> None:
    from vetline.supervision import actions

    item = ReviewItem.objects.get(record_id=desk.records["a1"])
    actions.dispose_item(actor=desk.sup, item=item, disposition="false_positive", comment="No.")
    client.force_login(desk.co)
    body = client.get("/supervision/metrics/").content.decode()
    assert body.count("<svg") >= 7 and "<table" not in body
    assert "/policies/supervision-test/#rule-promissory" in body  # linked to the policy editor
    assert "100 %" in body  # that rule's false-positive rate


def test_report_is_archived_with_csv(desk: Any, client: Client) -> None:
    from vetline.archive.models import ArchivedRecord
    from vetline.supervision import actions

    item = ReviewItem.objects.get(record_id=desk.records["a1"])
    actions.dispose_item(actor=desk.sup, item=item, disposition="violation_coached", comment="C.")
    client.force_login(desk.co)
    today = timezone.now().date()
    response = client.post(
        "/supervision/reports/",
        {"start": (today - dt.timedelta(days=1)).isoformat(), "end": today.isoformat()},
    )
    assert response.status_code == 302
    report = SupervisionReport.objects.get()
    assert report.data["captured"] == 4 and report.data["flagged"] == 2
    assert report.data["outcomes"]["violation_coached"] == 1 and report.data["open"] == 1
    record = ArchivedRecord.objects.get(pk=report.archived_record_id)
    assert record.record_class == "supervision_report" and len(record.attachments) == 2
    assert record.account.handle == "vetline-supervision-reports"
    csv_text = client.get(f"/supervision/reports/{report.pk}/csv/").content.decode()
    assert "summary,captured,4" in csv_text and "violation_coached" in csv_text
    html = client.get(f"/supervision/reports/{report.pk}/").content.decode()
    assert f"#{item.pk}" in html


def test_reviewer_of_several_queues_sees_them_all_oldest_first(desk: Any) -> None:
    from vetline.supervision import actions, selectors

    actions.set_queue_reviewers(actor=desk.co, queue=desk.queue_b, reviewers=[desk.sup2, desk.sup])
    a1 = ReviewItem.objects.get(record_id=desk.records["a1"]).pk
    b1 = ReviewItem.objects.get(record_id=desk.records["b1"]).pk
    page = selectors.queue_page(desk.sup)
    assert [i.id for i in page.items] == [a1, b1]
    assert page.total == 2 and page.items[0].url == f"/supervision/items/{a1}/"
    only_b = selectors.queue_page(desk.sup, queue_id=desk.queue_b.pk)
    assert [i.id for i in only_b.items] == [b1]
    assert selectors.queue_page(desk.sup2, queue_id=desk.queue_a.pk).total == 0  # not theirs


def test_monthly_schedule_reports_last_month_once(desk: Any) -> None:
    """The 1st-of-month job: last calendar month, whole organisation, archived, owned by a
    compliance officer, audited as the schedule; running it again adds nothing."""
    from vetline.archive.models import ArchivedRecord
    from vetline.supervision.report import generate_scheduled_report, last_month
    from vetline.supervision.tasks import monthly_report_job

    assert last_month(dt.datetime(2026, 3, 15, 9, tzinfo=dt.UTC)) == (
        dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    )
    assert last_month(dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC))[0] == dt.datetime(
        2025, 12, 1, tzinfo=dt.UTC
    )
    now = timezone.now() + dt.timedelta(days=40)  # next month's 1st is behind "now"
    report = generate_scheduled_report(now=now)
    assert report is not None and report.generated_by is None and report.population is None
    start, end = last_month(now)
    assert (report.period_start, report.period_end) == (start, end)
    record = ArchivedRecord.objects.get(pk=report.archived_record_id)
    assert (
        record.record_class == "supervision_report" and record.author_handle == "Vetline (monthly)"
    )
    assert record.account.owner == desk.co
    event = AuditEvent.objects.filter(action="supervision.report.generate").get()
    assert event.actor is None and event.actor_name == "monthly schedule"
    assert generate_scheduled_report(now=now) is None
    monthly_report_job.call_local()  # this month's run: a different period, one more report
    assert SupervisionReport.objects.count() == 2


def test_bulk_page_says_which_items_it_may_not_close(desk: Any, client: Client) -> None:
    """An item another queue's reviewer holds is news for the queue page (all or nothing),
    not a 404 of the whole page."""
    mine = ReviewItem.objects.get(record_id=desk.records["a1"])
    theirs = ReviewItem.objects.get(record_id=desk.records["b1"])
    client.force_login(desk.sup)
    response = client.post(
        "/supervision/bulk-false-positives/",
        {"items": [mine.pk, theirs.pk], "reason": "Noise."},
        follow=True,
    )
    assert response.redirect_chain == [("/supervision/", 302)]
    assert "not yours to see" in response.content.decode()
    mine.refresh_from_db()
    assert mine.disposition != "false_positive"
