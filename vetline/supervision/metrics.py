"""Supervision metrics: queue sizes and age, reviewer throughput, coverage per population per
period, false-positive rate per rule, minutes spent per item and per period; and the sampling
outcome of a run (achieved upper deviation limit). Reads only, scoped like every read."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncWeek
from django.utils import timezone

from vetline.archive.models import ArchivedRecord
from vetline.supervision import selectors
from vetline.supervision.models import (
    Population,
    ReviewAction,
    ReviewItem,
    SampleRun,
    SampleStatus,
)
from vetline.supervision.states import Disposition, ReviewState

if TYPE_CHECKING:
    from vetline.identity.models import Person

VIOLATIONS = [Disposition.VIOLATION_COACHED.value, Disposition.VIOLATION_ESCALATED.value]
DEFAULT_CONFIDENCE = Decimal("0.95")


@dataclass(frozen=True, slots=True)
class SampleOutcome:
    sample_size: int
    reviewed: int
    deviations: int
    confidence: Decimal
    upper_limit: Decimal | None  # None until the sample is fully reviewed
    provisional_upper_limit: Decimal | None

    @property
    def complete(self) -> bool:
        return self.sample_size > 0 and self.reviewed >= self.sample_size

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample_size": self.sample_size,
            "reviewed": self.reviewed,
            "deviations": self.deviations,
            "confidence": str(self.confidence),
            "upper_deviation_limit": (
                str(self.upper_limit) if self.upper_limit is not None else None
            ),
            "complete": self.complete,
        }


def sample_outcome(run: SampleRun) -> SampleOutcome:
    """What the review of a sample found: deviations (violations) among the drawn records and
    the achieved one-sided Clopper-Pearson upper deviation limit at the plan's confidence.
    A drawn record reviewed through any item (also a flag it was already queued for) counts."""
    from vetline.supervision.sampling import upper_deviation_limit

    confidence = run.plan.confidence or DEFAULT_CONFIDENCE
    n = run.sample_size
    if run.status != SampleStatus.DRAWN or n == 0:
        return SampleOutcome(0, 0, 0, confidence, None, None)
    drawn = run.drawn_record_ids
    closed = ReviewItem.objects.filter(record_id__in=drawn, state=ReviewState.CLOSED)
    reviewed = closed.values("record_id").distinct().count()
    deviations = (
        ReviewItem.objects.filter(record_id__in=drawn, disposition__in=VIOLATIONS)
        .values("record_id")
        .distinct()
        .count()
    )
    limit = upper_deviation_limit(sample_size=n, deviations=deviations, confidence=confidence)
    final = limit if reviewed >= n else None
    return SampleOutcome(n, reviewed, deviations, confidence, final, limit)


# --- Metrics page -----------------------------------------------------------------------------


def queue_sizes(person: Person) -> list[dict[str, Any]]:
    """Open items per visible queue, with the age of the oldest."""
    now = timezone.now()
    rows = (
        selectors.visible_items(person)
        .filter(is_open=True)
        .values("queue_id", "queue__name")
        .annotate(
            n=Count("id"),
            oldest=Min("created_at"),
            overdue=Count("id", filter=Q(due_at__lt=now)),
        )
        .order_by("queue__name")
    )
    out = []
    for r in rows:
        age_days = (now - r["oldest"]).total_seconds() / 86400 if r["oldest"] else 0
        out.append(
            {
                "queue_id": r["queue_id"],
                "queue": r["queue__name"],
                "open": r["n"],
                "overdue": r["overdue"],
                "oldest_age_days": round(age_days, 1),
            }
        )
    return out


def age_buckets(person: Person) -> list[tuple[str, int]]:
    now = timezone.now()
    qs = selectors.visible_items(person).filter(is_open=True)
    edges = [("< 1 day", 0, 1), ("1-3 days", 1, 3), ("3-7 days", 3, 7), ("7-30 days", 7, 30)]
    agg: dict[str, Any] = {}
    for i, (_, lo, hi) in enumerate(edges):
        agg[f"b{i}"] = Count(
            "id",
            filter=Q(
                created_at__lte=now - dt.timedelta(days=lo),
                created_at__gt=now - dt.timedelta(days=hi),
            ),
        )
    agg["b_old"] = Count("id", filter=Q(created_at__lte=now - dt.timedelta(days=30)))
    counts = qs.aggregate(**agg)
    out = [(label, counts[f"b{i}"] or 0) for i, (label, _, _) in enumerate(edges)]
    return [*out, ("> 30 days", counts["b_old"] or 0)]


def _evidence(person: Person, since: dt.datetime) -> Any:
    return ReviewAction.objects.filter(
        item__in=selectors.visible_items(person), is_review=True, at__gte=since
    )


def reviewer_throughput(person: Person, *, days: int = 30) -> list[dict[str, Any]]:
    since = timezone.now() - dt.timedelta(days=days)
    rows = (
        _evidence(person, since)
        .values("reviewer_id", "reviewer_name")
        .annotate(n=Count("id"), seconds=Sum("time_spent_seconds"))
        .order_by("-n")
    )
    return [
        {
            "reviewer": r["reviewer_name"].split(" <")[0],
            "reviews": r["n"],
            "minutes": round((r["seconds"] or 0) / 60, 1),
        }
        for r in rows
    ]


def _week_start(d: dt.datetime) -> dt.date:
    day = d.astimezone(dt.UTC).date()
    return day - dt.timedelta(days=day.weekday())


def minutes_per_period(person: Person, *, weeks: int = 12) -> list[dict[str, Any]]:
    """Review minutes per week and per reviewed item, the human cost of supervision."""
    since = timezone.now() - dt.timedelta(weeks=weeks)
    per_week: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for at, seconds in _evidence(person, since).values_list("at", "time_spent_seconds"):
        bucket = per_week[_week_start(at)]
        bucket[0] += seconds
        bucket[1] += 1
    return [
        {
            "week": week.isoformat(),
            "minutes": round(s / 60, 1),
            "reviews": n,
            "minutes_per_item": round(s / 60 / n, 2) if n else 0,
        }
        for week, (s, n) in sorted(per_week.items())
    ]


def false_positive_rates(person: Person) -> list[dict[str, Any]]:
    """Per policy rule: flagged items closed, and the share closed as false positives."""
    closed = (
        selectors.visible_items(person)
        .filter(state=ReviewState.CLOSED, source="flag")
        .values_list("policy_name", "rule_ids", "disposition")
    )
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for policy_name, rule_ids, disposition in closed.iterator(chunk_size=2000):
        for rule in rule_ids or []:
            t = totals[(policy_name, rule)]
            t[0] += 1
            t[1] += disposition == Disposition.FALSE_POSITIVE
    out = [
        {
            "policy": policy,
            "rule_id": rule,
            "closed": n,
            "false_positives": fp,
            "rate_percent": round(100 * fp / n, 1) if n else 0.0,
        }
        for (policy, rule), (n, fp) in totals.items()
    ]
    return sorted(out, key=lambda r: (-r["rate_percent"], r["rule_id"]))


def coverage(person: Person, *, weeks: int = 8) -> list[dict[str, Any]]:
    """Per population and week: captured records, and the share sampled or reviewed."""
    today = timezone.now().date()
    start_day = today - dt.timedelta(days=today.weekday()) - dt.timedelta(weeks=weeks - 1)
    start = dt.datetime.combine(start_day, dt.time(), tzinfo=dt.UTC)
    items = selectors.visible_items(person)
    out = []
    for pop in selectors.populations():
        q = selectors.population_q(pop.spec())
        captured: dict[dt.date, int] = defaultdict(int)
        for week, n in (
            ArchivedRecord.objects.filter(q, captured_at__gte=start)
            .annotate(week=TruncWeek("captured_at", tzinfo=dt.UTC))
            .values("week")
            .annotate(n=Count("id"))
            .values_list("week", "n")
        ):
            captured[_week_start(week)] += n
        covered: dict[dt.date, int] = defaultdict(int)
        for week, n in (
            items.filter(selectors.population_q(pop.spec(), prefix="record__"))
            .filter(record_captured_at__gte=start)
            .filter(Q(source="sample") | Q(state=ReviewState.CLOSED))
            .annotate(week=TruncWeek("record_captured_at", tzinfo=dt.UTC))
            .values("week")
            .annotate(n=Count("id"))
            .values_list("week", "n")
        ):
            if week is not None:
                covered[_week_start(week)] += n
        for week in sorted(captured):
            total = captured[week]
            out.append(
                {
                    "population": pop.name,
                    "week": week.isoformat(),
                    "captured": total,
                    "covered": covered.get(week, 0),
                    "percent": round(100 * covered.get(week, 0) / total, 1) if total else 0.0,
                }
            )
    return out


def populations_for_report() -> list[Population]:
    return list(selectors.populations())
