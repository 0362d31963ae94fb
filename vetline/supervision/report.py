"""The periodic supervision report: for a period and a population, what was captured, flagged,
sampled and reviewed, the outcomes, the open and overdue items, and the sampling statistics.

Rendered as HTML and CSV. No PDF: no library in requirements.lock renders HTML to PDF (a
browser's "Print to PDF" of the HTML report is the documented route). The report is archived
like any other record: both renderings are stored as blobs and ingested through the archive's
single ingest path as a record of the internal account ``vetline-supervision-reports``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from vetline.archive.models import ArchivedRecord
from vetline.audit.actions import record as audit
from vetline.core.errors import ValidationFailed
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.supervision import metrics, selectors
from vetline.supervision.models import (
    ItemSource,
    Population,
    ReviewItem,
    SampleRun,
    SupervisionReport,
    SupervisionSettings,
)
from vetline.supervision.states import Disposition

if TYPE_CHECKING:
    from vetline.accounts.models import SocialAccount
    from vetline.identity.models import Person

REPORT_ACCOUNT_HANDLE: Final = "vetline-supervision-reports"
MAX_PERIOD_DAYS: Final = 366


def report_data(
    *, start: dt.datetime, end: dt.datetime, population: Population | None
) -> dict[str, Any]:
    spec = population.spec() if population else None
    records = ArchivedRecord.objects.filter(captured_at__gte=start, captured_at__lt=end)
    items = ReviewItem.objects.all()
    if spec is not None:
        records = records.filter(selectors.population_q(spec))
        items = items.filter(selectors.population_q(spec, prefix="record__"))
    in_period = items.filter(record_captured_at__gte=start, record_captured_at__lt=end)
    closed_in_period = items.filter(closed_at__gte=start, closed_at__lt=end)
    outcomes = Counter(closed_in_period.values_list("disposition", flat=True))
    now = timezone.now()
    open_items = items.filter(is_open=True, created_at__lt=end)
    runs = SampleRun.objects.filter(period_start__gte=start, period_start__lt=end).select_related(
        "plan"
    )
    if population is not None:
        runs = runs.filter(plan__population=population)
    sampling = []
    for run in runs.order_by("period_start", "id"):
        outcome = metrics.sample_outcome(run)
        sampling.append(
            {
                "plan": run.plan.name,
                "period_start": run.period_start.date().isoformat(),
                "status": run.status,
                "population_size": run.population_size,
                "sample_size": run.sample_size,
                "reviewed": outcome.reviewed,
                "deviations": outcome.deviations,
                "confidence": str(outcome.confidence),
                "upper_deviation_limit": (
                    str(outcome.upper_limit) if outcome.upper_limit is not None else None
                ),
                "provisional_upper_limit": (
                    str(outcome.provisional_upper_limit)
                    if outcome.provisional_upper_limit is not None
                    else None
                ),
                "seed": run.seed,
                "population_sha256": run.population_sha256,
                "note": run.note,
            }
        )
    reviewed_items = [
        {
            "item": i.pk,
            "source": i.source,
            "record": i.record_id,
            "queue": i.queue.name,
            "disposition": i.disposition,
            "escalation_level": i.escalation_level,
            "closed_at": i.closed_at.isoformat() if i.closed_at else "",
        }
        for i in closed_in_period.select_related("queue").order_by("closed_at", "id")[:5000]
    ]
    escalated = items.filter(escalation_level__gt=0, created_at__lt=end).exclude(
        closed_at__lt=start
    )
    return {
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "population": population.name if population else "All communications",
        "generated_at": now.isoformat(),
        "policy_min_severity": SupervisionSettings.load().get_flag_min_severity_display(),
        "captured": records.count(),
        "flagged": in_period.filter(source=ItemSource.FLAG).count(),
        # Every record drawn, including those already queued by a flag (counted, not requeued).
        "sampled": sum(r["sample_size"] for r in sampling),
        "reviewed": closed_in_period.count(),
        "outcomes": {d.value: outcomes.get(d.value, 0) for d in Disposition},
        "open": open_items.count(),
        "overdue": open_items.filter(due_at__lt=now).count(),
        "escalated": escalated.count(),
        "sampling": sampling,
        "reviewed_items": reviewed_items,
    }


def render_csv(data: dict[str, Any]) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "name", "value"])
    for key in (
        "period_start",
        "period_end",
        "population",
        "generated_at",
        "captured",
        "flagged",
        "sampled",
        "reviewed",
        "open",
        "overdue",
        "escalated",
    ):
        w.writerow(["summary", key, data[key]])
    for key, value in data["outcomes"].items():
        w.writerow(["outcome", key, value])
    w.writerow([])
    w.writerow(
        [
            "sampling",
            "plan",
            "period_start",
            "status",
            "population_size",
            "sample_size",
            "reviewed",
            "deviations",
            "confidence",
            "upper_deviation_limit",
            "seed",
            "population_sha256",
        ]
    )
    for s in data["sampling"]:
        w.writerow(
            [
                "sampling",
                s["plan"],
                s["period_start"],
                s["status"],
                s["population_size"],
                s["sample_size"],
                s["reviewed"],
                s["deviations"],
                s["confidence"],
                s["upper_deviation_limit"] or "",
                s["seed"],
                s["population_sha256"],
            ]
        )
    w.writerow([])
    w.writerow(
        [
            "item",
            "item_id",
            "source",
            "record_id",
            "queue",
            "disposition",
            "escalation_level",
            "closed_at",
        ]
    )
    for i in data["reviewed_items"]:
        w.writerow(
            [
                "item",
                i["item"],
                i["source"],
                i["record"],
                i["queue"],
                i["disposition"],
                i["escalation_level"],
                i["closed_at"],
            ]
        )
    return out.getvalue()


def _report_account(actor: Person | None) -> SocialAccount:
    """The internal account that holds generated supervision reports in the archive (owned by
    the person generating the first report, or by the longest-serving active compliance officer
    when the schedule generates it)."""
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    account = SocialAccount.objects.filter(
        network=Network.INTERNAL, handle=REPORT_ACCOUNT_HANDLE
    ).first()
    if account is None:
        owner = actor or _report_owner()
        account = SocialAccount.objects.create(
            network=Network.INTERNAL,
            handle=REPORT_ACCOUNT_HANDLE,
            display_name="Supervision reports (generated by Vetline)",
            kind=AccountKind.CORPORATE,
            owner=owner,
            business_unit="Compliance",
        )
        audit(
            action="supervision.report_account.create",
            actor=actor,
            obj=account,
            after={"network": Network.INTERNAL, "handle": REPORT_ACCOUNT_HANDLE},
        )
    return account


def _report_owner() -> Person:
    from vetline.identity.models import Person, RoleGrant
    from vetline.identity.roles import Role

    owner = (
        Person.objects.filter(
            is_active=True,
            pk__in=RoleGrant.objects.filter(role=Role.COMPLIANCE_OFFICER.value).values("person_id"),
        )
        .order_by("pk")
        .first()
    )
    if owner is None:
        raise ValidationFailed(
            "No active compliance officer to own the supervision reports account: grant the "
            "role to someone first."
        )
    return owner


def last_month(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last complete calendar month before ``now``, in UTC: [start, end)."""
    end = now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - dt.timedelta(days=1)).replace(day=1)
    return start, end


def generate_scheduled_report(*, now: dt.datetime | None = None) -> SupervisionReport | None:
    """The monthly report (system): last calendar month, whole organisation. Idempotent: a
    month already reported by the schedule is not reported twice."""
    start, end = last_month(now or timezone.now())
    if SupervisionReport.objects.filter(
        period_start=start, period_end=end, population__isnull=True, generated_by__isnull=True
    ).exists():
        return None
    return generate_report(actor=None, start=start, end=end)


def generate_report(
    *,
    actor: Person | None,
    start: dt.datetime,
    end: dt.datetime,
    population: Population | None = None,
) -> SupervisionReport:
    """Compute, render and archive the supervision report for [start, end). ``actor`` None is
    the monthly schedule (:func:`generate_scheduled_report`)."""
    from vetline.archive.actions import ingest_batch
    from vetline.archive.blobs import default_store, retain_until_for

    if actor is not None:
        require(actor, Perm.SUPERVISION_MANAGE)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationFailed("Times need a time zone.", field="start")
    if start >= end:
        raise ValidationFailed("The start of the period must be before its end.", field="end")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise ValidationFailed(
            f"A report covers at most {MAX_PERIOD_DAYS} days; choose a shorter period.",
            field="end",
        )
    data = report_data(start=start, end=end, population=population)
    html = render_to_string("supervision/report_document.html", {"data": data})
    csv_text = render_csv(data)
    with transaction.atomic():
        report = SupervisionReport.objects.create(
            period_start=start,
            period_end=end,
            population=population,
            data=data,
            html=html,
            csv=csv_text,
            generated_by=actor,
        )
        account = _report_account(actor)
    now = timezone.now()
    store = default_store()
    retain = retain_until_for(captured_at=now, record_class="supervision_report")
    html_sha = store.put(html.encode(), retain_until=retain)
    csv_sha = store.put(csv_text.encode(), retain_until=retain)
    summary = (
        f"Supervision report {start:%Y-%m-%d} to {end:%Y-%m-%d}, {data['population']}: "
        f"captured {data['captured']}, flagged {data['flagged']}, sampled {data['sampled']}, "
        f"reviewed {data['reviewed']}, open {data['open']}, overdue {data['overdue']}."
    )
    ingested = ingest_batch(
        items=[
            {
                "remote_id": f"supervision-report-{report.pk}",
                "kind": "post",
                "direction": "outbound",
                "author": (
                    f"{actor.full_name} <{actor.email}>"[:300] if actor else "Vetline (monthly)"
                ),
                "text": summary,
                "attachments": [html_sha, csv_sha],
                "record_class": "supervision_report",
                "raw": {"report": report.pk, "data": data},
            }
        ],
        account=account,
        source="supervision:report",
        actor=None,
        screen=False,
    )
    record_id = ingested.items[0].record_id if ingested.items else None
    with transaction.atomic():
        SupervisionReport.objects.filter(pk=report.pk).update(archived_record_id=record_id)
        report.archived_record_id = record_id
        audit(
            action="supervision.report.generate",
            actor=actor,
            actor_name="" if actor else "monthly schedule",
            obj=report,
            after={
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "population": population.pk if population else None,
                "archived_record_id": record_id,
                "html_sha256": html_sha,
                "csv_sha256": csv_sha,
            },
        )
    return report
