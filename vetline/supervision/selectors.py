"""Reads of the supervision desk, always scoped: a reviewer sees only the items of the queues
they review (their populations); people who manage supervision see every queue. Pages, the API
and the admin all read through these functions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import connection
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from vetline.core.errors import Forbidden, NotFound
from vetline.identity.permissions import require_any
from vetline.identity.roles import Perm
from vetline.supervision.models import (
    DigestPreference,
    ItemSource,
    NotificationEmail,
    Population,
    ReviewAction,
    ReviewItem,
    ReviewQueue,
    RoutingRule,
    Severity,
)
from vetline.supervision.routing import PopulationSpec, RecordFacts, Route
from vetline.supervision.states import ReviewState

if TYPE_CHECKING:
    from vetline.archive.models import ArchivedRecord
    from vetline.identity.models import Person

QUEUE_PAGE_SIZE = 50


def sees_all_queues(person: Person) -> bool:
    return person.can(Perm.SUPERVISION_MANAGE)


def visible_queues(person: Person) -> QuerySet[ReviewQueue]:
    require_any(person, Perm.SUPERVISE, Perm.SUPERVISION_MANAGE)
    qs = ReviewQueue.objects.all()
    if not sees_all_queues(person):
        qs = qs.filter(reviewers=person)
    return qs.order_by("name")


def visible_items(person: Person) -> QuerySet[ReviewItem]:
    """Every review item ``person`` may see (one query, however it is sliced)."""
    require_any(person, Perm.SUPERVISE, Perm.SUPERVISION_MANAGE)
    qs = ReviewItem.objects.all()
    if not sees_all_queues(person):
        mine = ReviewQueue.reviewers.through.objects.filter(person_id=person.pk).values(
            "reviewqueue_id"
        )
        qs = qs.filter(queue_id__in=mine)
    return qs


def get_item(person: Person, item_id: int) -> ReviewItem:
    item = visible_items(person).select_related("queue", "assignee").filter(pk=item_id).first()
    if item is None:
        raise NotFound("No such review item.")
    return item


def get_queue(person: Person, queue_id: int) -> ReviewQueue:
    queue = visible_queues(person).filter(pk=queue_id).first()
    if queue is None:
        raise NotFound("No such queue.")
    return queue


def can_work(person: Person, item: ReviewItem) -> bool:
    """Whether ``person`` may claim and dispose of ``item``: a reviewer of its queue, or a
    supervision manager who holds the review permission."""
    if not person.can(Perm.SUPERVISE):
        return False
    if sees_all_queues(person):
        return True
    return item.queue.reviewers.filter(pk=person.pk).exists()


def require_can_work(person: Person, item: ReviewItem) -> None:
    if not can_work(person, item):
        raise Forbidden("You are not a reviewer of this item's queue.")


_URL_SENTINEL = 987654321
SOURCE_LABELS = dict(ItemSource.choices)
SEVERITY_NAMES = {0: "", **{int(k): str(v) for k, v in Severity.choices}}
STATE_NAMES = {s.value: s.label for s in ReviewState}


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One line of the queue page, as plain values (no model instances: the page renders 50
    of them on every request)."""

    id: int
    url: str
    queue: str
    escalation_level: int
    source: str
    severity: str
    rules: str
    excerpt: str
    state: str
    assignee: str
    due: str
    overdue: bool


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: list[QueueRow]
    total: int
    page: int
    pages: int


def queue_page(
    person: Person,
    *,
    queue_id: int | None = None,
    state: str = "open",
    mine: bool = False,
    page: int = 1,
) -> QueuePage:
    """One page of the review queue: oldest first. A fixed number of queries (a count and the
    rows, with queue and assignee joined, after the reviewer's queue ids), however many items
    are open. Every filter is served by an index in page order (see ReviewItem.Meta.indexes)."""
    require_any(person, Perm.SUPERVISE, Perm.SUPERVISION_MANAGE)
    qs = ReviewItem.objects.all()
    scope: list[int] | None = None
    if not sees_all_queues(person):
        scope = sorted(
            ReviewQueue.reviewers.through.objects.filter(person_id=person.pk).values_list(
                "reviewqueue_id", flat=True
            )
        )
    if queue_id is not None:
        qs = qs.filter(queue_id=queue_id)
        if scope is not None and queue_id not in scope:
            qs = qs.none()
    elif scope is not None:
        if len(scope) == 1:
            qs = qs.filter(queue_id=scope[0])
        elif connection.vendor == "sqlite" and scope:
            # Unary plus keeps SQLite from driving the query by queue (then sorting every open
            # item of those queues): it walks the open items in page order and filters.
            in_list = ",".join(str(int(i)) for i in scope)
            qs = qs.extra(where=[f'+"supervision_reviewitem"."queue_id" IN ({in_list})'])  # noqa: S610
        else:
            qs = qs.filter(queue_id__in=scope)
    if state == "open":
        qs = qs.filter(is_open=True)
    elif state:
        qs = qs.filter(state=state)
    if mine:
        qs = qs.filter(assignee=person)
    total = qs.count()
    pages = max(1, -(-total // QUEUE_PAGE_SIZE))
    page = min(max(1, page), pages)
    start = (page - 1) * QUEUE_PAGE_SIZE
    # The page's ids first, from the index alone; then their rows with the joins. (Joining
    # before the OFFSET would join every skipped row too: slow on deep pages.)
    ids = list(
        qs.order_by("created_at", "id").values_list("id", flat=True)[
            start : start + QUEUE_PAGE_SIZE
        ]
    )
    fetched = {
        r[0]: r
        for r in ReviewItem.objects.filter(pk__in=ids).values_list(
            "id",
            "queue__name",
            "escalation_level",
            "source",
            "severity",
            "rule_ids",
            "excerpt",
            "state",
            "assignee__full_name",
            "due_at",
        )
    }
    now = timezone.now()
    url_of = reverse("supervision:item", args=[_URL_SENTINEL])
    rows = []
    for pk in ids:
        _, queue_name, level, source, severity, rule_ids, excerpt, state_, assignee, due = fetched[
            pk
        ]
        rows.append(
            QueueRow(
                id=pk,
                url=url_of.replace(str(_URL_SENTINEL), str(pk)),
                queue=queue_name,
                escalation_level=level,
                source=SOURCE_LABELS.get(source, source),
                severity=SEVERITY_NAMES.get(severity or 0, ""),
                rules=" ".join(rule_ids or []),
                excerpt=excerpt if len(excerpt) <= 90 else excerpt[:89] + "…",
                state=STATE_NAMES.get(state_, state_),
                assignee=assignee or "",
                due=f"{due:%Y-%m-%d}" if due else "",
                overdue=bool(due and due < now),
            )
        )
    return QueuePage(rows, total, page, pages)


def evidence_of(item: ReviewItem) -> QuerySet[ReviewAction]:
    return item.evidence.select_related("reviewer", "assignee").order_by("at", "id")


def routes() -> list[Route]:
    out = []
    for r in RoutingRule.objects.filter(is_active=True).select_related("population"):
        out.append(
            Route(
                rule_pk=r.pk,
                priority=r.priority,
                queue_id=r.queue_id,
                business_unit=r.business_unit,
                population=r.population.spec() if r.population else None,
                policy_rule_id=r.policy_rule_id,
                min_severity=r.min_severity or 0,
            )
        )
    return out


def facts_of(record: ArchivedRecord) -> RecordFacts:
    return RecordFacts(
        account_id=record.account_id,
        business_unit=record.account.business_unit,
        owner_id=record.account.owner_id,
        network=record.network,
        direction=record.direction,
        record_class=record.record_class,
    )


def population_q(spec: PopulationSpec, *, prefix: str = "") -> Q:
    """The ORM filter of archived records in a population (``prefix`` e.g. ``"record__"``)."""
    q = Q()
    if not spec.selects_everyone:
        who = Q()
        if spec.account_ids:
            who |= Q(**{f"{prefix}account_id__in": sorted(spec.account_ids)})
        if spec.owner_ids:
            who |= Q(**{f"{prefix}account__owner_id__in": sorted(spec.owner_ids)})
        if spec.business_units:
            who |= Q(**{f"{prefix}account__business_unit__in": sorted(spec.business_units)})
        q &= who
    if spec.record_classes:
        q &= Q(**{f"{prefix}record_class__in": sorted(spec.record_classes)})
    if spec.directions:
        q &= Q(**{f"{prefix}direction__in": sorted(spec.directions)})
    if spec.networks:
        q &= Q(**{f"{prefix}network__in": sorted(spec.networks)})
    return q


def populations() -> QuerySet[Population]:
    return Population.objects.prefetch_related("accounts", "people").order_by("name")


def period_bounds(period: str, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC period (daily, weekly from Monday, monthly) that contains ``day``."""
    if period == "daily":
        start = day
        end = day + dt.timedelta(days=1)
    elif period == "weekly":
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=7)
    elif period == "monthly":
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return (
        dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
        dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC),
    )


def previous_period_day(period: str, today: dt.date) -> dt.date:
    """A day in the last complete period before ``today``."""
    start, _ = period_bounds(period, today)
    return (start - dt.timedelta(days=1)).date()


#: The queue page counts overdue items up to this many per queue, then shows "1,000+": an
#: exact count of a huge backlog would cost the page a scan of the whole backlog.
OVERDUE_COUNT_CAP = 1000


@dataclass(frozen=True, slots=True)
class OverdueCount:
    queue: ReviewQueue
    count: int
    capped: bool

    @property
    def label(self) -> str:
        return f"{self.count:,}+" if self.capped else f"{self.count:,}"


def overdue_counts(queues: Iterable[ReviewQueue]) -> list[OverdueCount]:
    """Open items past their due date, per queue of ``queues`` (the viewer's visible queues),
    only the queues with any, each counted up to :data:`OVERDUE_COUNT_CAP`. One query: per
    queue, a LIMITed range read of the open-items-by-queue-and-due-date partial index."""
    by_id = {q.pk: q for q in queues}
    if not by_id:
        return []
    items, queue_table = ReviewItem._meta.db_table, ReviewQueue._meta.db_table
    ids = sorted(by_id)
    marks = ", ".join(["%s"] * len(ids))
    # "WHERE is_open" spelled as in the partial index, so that SQLite uses it. Table names come
    # from the models; values are parameters.
    sql = (
        f'SELECT q.id, (SELECT COUNT(*) FROM (SELECT 1 FROM "{items}" i WHERE i."queue_id" = q.id'  # noqa: S608
        f' AND i."is_open" AND i."due_at" < %s LIMIT {OVERDUE_COUNT_CAP + 1}) t)'
        f' FROM "{queue_table}" q WHERE q.id IN ({marks})'
    )
    with connection.cursor() as cursor:
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        cursor.execute(sql, [now, *ids])
        rows = cursor.fetchall()
    out = [
        OverdueCount(by_id[q], min(n, OVERDUE_COUNT_CAP), n > OVERDUE_COUNT_CAP)
        for q, n in rows
        if n
    ]
    return sorted(out, key=lambda c: (c.queue.name, c.queue.pk))


def my_notifications(person: Person, *, limit: int = 20) -> QuerySet[NotificationEmail]:
    """The supervision e-mails addressed to ``person``, newest first."""
    return NotificationEmail.objects.filter(recipient=person).order_by("-created_at", "-id")[:limit]


def digest_enabled(person: Person) -> bool:
    pref = DigestPreference.objects.filter(person=person).values_list("digest_enabled", flat=True)
    return next(iter(pref), True)
