"""The supervision REST API: queues, review items (scoped to the caller's queues), their
evidence of review, claiming, assigning, dispositions and bulk false positives."""

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from vetline.core.errors import NotFound
from vetline.core.http import DbId, api_actor
from vetline.core.pagination import BoundedPagination
from vetline.identity.models import Person
from vetline.identity.roles import Perm
from vetline.supervision import actions, selectors
from vetline.supervision.models import ReviewItem
from vetline.supervision.states import Disposition, ReviewState

router = Router(tags=["supervision"])


class QueueOut(Schema):
    id: int
    name: str
    population_id: int | None
    escalate_to_id: int | None
    is_default: bool
    sla_days: int
    open_items: int


class ItemOut(Schema):
    id: int
    record_id: int
    queue_id: int
    source: str
    state: str
    assignee_id: int | None
    severity: int | None
    rule_ids: list[str]
    hits: list[dict[str, Any]]
    policy_name: str
    policy_version: int | None
    sample_run_id: int | None
    escalation_level: int
    disposition: str
    excerpt: str
    created_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    review_seconds_total: int


class EvidenceOut(Schema):
    id: int
    item_id: int
    reviewer_id: int
    reviewer_name: str
    action: str
    is_review: bool
    disposition: str
    comment: str
    from_state: str
    to_state: str
    assignee_id: int | None
    time_spent_seconds: int
    audit_event_id: int | None
    at: datetime


class ItemQuery(Schema):
    queue_id: DbId | None = None
    state: Literal["open", "claimed", "needs_info", "escalated", "closed", "any"] = "open"
    mine: bool = False


class AssignIn(Schema):
    assignee_id: DbId


class DispositionIn(Schema):
    disposition: Disposition
    comment: str = Field("", max_length=actions.MAX_COMMENT)
    time_spent_seconds: int | None = Field(None, ge=0, le=actions.MAX_REVIEW_SECONDS)


class BulkIn(Schema):
    item_ids: list[DbId] = Field(..., min_length=1, max_length=actions.MAX_BULK)
    reason: str = Field(..., min_length=1, max_length=actions.MAX_COMMENT)
    time_spent_seconds: int = Field(0, ge=0, le=actions.MAX_REVIEW_SECONDS)


@router.get("/queues", response=list[QueueOut])
def list_queues(request: HttpRequest) -> list[dict[str, Any]]:
    """The queues the caller reviews (every queue for supervision managers)."""
    from django.db.models import Count, Q

    user = api_actor(request)
    open_states = [s.value for s in ReviewState if s.is_open]
    rows = selectors.visible_queues(user).annotate(
        open_items=Count("items", filter=Q(items__state__in=open_states))
    )
    return [
        {
            "id": q.pk,
            "name": q.name,
            "population_id": q.population_id,
            "escalate_to_id": q.escalate_to_id,
            "is_default": q.is_default,
            "sla_days": q.sla_days,
            "open_items": q.open_items,
        }
        for q in rows[:500]
    ]


@router.get("/items", response=list[ItemOut])
@paginate(BoundedPagination)
def list_items(request: HttpRequest, filters: Query[ItemQuery]) -> Any:
    """Review items of the caller's queues, oldest first."""
    user = api_actor(request)
    qs = selectors.visible_items(user)
    if filters.queue_id is not None:
        qs = qs.filter(queue_id=filters.queue_id)
    if filters.state == "open":
        qs = qs.filter(is_open=True)
    elif filters.state != "any":
        qs = qs.filter(state=filters.state)
    if filters.mine:
        qs = qs.filter(assignee=user)
    return qs.order_by("created_at", "id")


@router.get("/items/{item_id}", response=ItemOut)
def get_item(request: HttpRequest, item_id: DbId) -> ReviewItem:
    """One item. Reading it through the API is logged like opening it (not a review)."""
    user = api_actor(request)
    item = selectors.get_item(user, item_id)
    if user.can(Perm.SUPERVISE):
        actions.open_item(actor=user, item=item)
    return item


@router.get("/items/{item_id}/evidence", response=list[EvidenceOut])
def item_evidence(request: HttpRequest, item_id: DbId) -> list[Any]:
    """Evidence of review of one item: who did what, when, and the time spent."""
    item = selectors.get_item(api_actor(request), item_id)
    return list(selectors.evidence_of(item))


@router.post("/items/{item_id}/claim", response=ItemOut)
def claim(request: HttpRequest, item_id: DbId) -> ReviewItem:
    user = api_actor(request)
    return actions.claim_item(actor=user, item=selectors.get_item(user, item_id))


@router.post("/items/{item_id}/release", response=ItemOut)
def release(request: HttpRequest, item_id: DbId) -> ReviewItem:
    user = api_actor(request)
    return actions.release_item(actor=user, item=selectors.get_item(user, item_id))


@router.post("/items/{item_id}/assign", response=ItemOut)
def assign(request: HttpRequest, item_id: DbId, body: AssignIn) -> ReviewItem:
    user = api_actor(request)
    item = selectors.get_item(user, item_id)
    assignee = Person.objects.filter(pk=body.assignee_id, is_active=True).first()
    if assignee is None:
        raise NotFound("No such person.", field="assignee_id")
    return actions.assign_item(actor=user, item=item, assignee=assignee)


@router.post("/items/{item_id}/disposition", response=ItemOut)
def dispose(request: HttpRequest, item_id: DbId, body: DispositionIn) -> ReviewItem:
    """Record a disposition (a comment is required for anything but ``no_issue``)."""
    user = api_actor(request)
    return actions.dispose_item(
        actor=user,
        item=selectors.get_item(user, item_id),
        disposition=body.disposition,
        comment=body.comment,
        time_spent_seconds=body.time_spent_seconds,
    )


@router.post("/bulk-false-positive", response=list[ItemOut])
def bulk_false_positive(request: HttpRequest, body: BulkIn) -> list[ReviewItem]:
    """Close several items as false positives with one reason (all or nothing)."""
    return actions.bulk_dispose_false_positives(
        actor=api_actor(request),
        item_ids=body.item_ids,
        reason=body.reason,
        time_spent_seconds=body.time_spent_seconds,
    )
