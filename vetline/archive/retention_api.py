"""The retention API: record classes and their periods, legal holds, disposal runs and a
dry-run preview. Mounted at ``/api/archive/retention``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from vetline.accounts.models import SocialAccount
from vetline.archive import retention_actions as actions
from vetline.archive import retention_selectors as selectors
from vetline.core.errors import ValidationFailed
from vetline.core.http import DbId, api_actor
from vetline.core.pagination import BoundedPagination
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

router = Router(tags=["archive retention"])

Id = DbId


class RecordClassOut(Schema):
    code: str
    label: str
    retention_days: int
    easily_accessible_days: int
    regulatory_basis: str
    updated_at: dt.datetime
    updated_by_id: int | None


class RecordClassIn(Schema):
    retention_days: int = Field(..., ge=1, le=36500)
    easily_accessible_days: int = Field(..., ge=0, le=36500)
    label: str | None = Field(None, max_length=120)


class ScopeIn(Schema):
    account_ids: list[Id] = Field(default_factory=list, max_length=1000)
    person_ids: list[Id] = Field(default_factory=list, max_length=1000)
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    query: str = Field("", max_length=500)


class HoldIn(Schema):
    matter_name: str = Field(..., max_length=200)
    description: str = Field("", max_length=5000)
    account_ids: list[Id] = Field(default_factory=list, max_length=1000)
    person_ids: list[Id] = Field(default_factory=list, max_length=1000)
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    query: str = Field("", max_length=500)


class HoldOut(Schema):
    id: int
    matter_name: str
    description: str
    account_ids: list[int]
    person_ids: list[int]
    date_from: dt.date | None
    date_to: dt.date | None
    query: str
    placed_by_id: int
    placed_at: dt.datetime
    released_by_id: int | None
    released_at: dt.datetime | None
    release_reason: str
    active: bool


class HoldDetailOut(HoldOut):
    held_records: int


class ReleaseIn(Schema):
    reason: str = Field(..., max_length=5000)


class DisposalRunOut(Schema):
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    as_of: dt.datetime
    trigger: str
    actor_id: int | None
    status: str
    disposed_count: int
    disposed_by_class: dict[str, int]
    held_skipped: int
    integrity_skipped: int
    unconfigured_classes: list[str]


class DisposalRunDetailOut(DisposalRunOut):
    disposed_ids: list[int]


class PreviewOut(Schema):
    now: str
    dry_run: bool
    disposed: int
    disposed_by_class: dict[str, int]
    held_skipped: int
    unconfigured_classes: list[str]
    disposed_ids: list[int]


@router.get("/classes", response=list[RecordClassOut], summary="Record classes and periods")
def list_classes(request: HttpRequest) -> Any:
    return list(selectors.record_classes(api_actor(request)))


@router.put("/classes/{code}", response=RecordClassOut, summary="Change a retention period")
def update_class(request: HttpRequest, code: str, body: RecordClassIn) -> Any:
    actor = api_actor(request)
    require(actor, Perm.LEGAL_HOLD)
    record_class = selectors.get_record_class(actor, code)
    return actions.update_record_class(
        actor=actor,
        record_class=record_class,
        retention_days=body.retention_days,
        easily_accessible_days=body.easily_accessible_days,
        label=body.label,
    )


@router.get("/holds", response=list[HoldOut])
@paginate(BoundedPagination)
def list_holds(request: HttpRequest, active: bool | None = None) -> Any:
    return [selectors.hold_as_dict(h) for h in selectors.holds(api_actor(request), active=active)]


def _custodians(body: HoldIn | ScopeIn) -> tuple[list[SocialAccount], list[Person]]:
    accounts = list(SocialAccount.objects.filter(pk__in=body.account_ids))
    missing = set(body.account_ids) - {a.pk for a in accounts}
    if missing:
        raise ValidationFailed(f"No such account: {sorted(missing)}.", field="account_ids")
    people = list(Person.objects.filter(pk__in=body.person_ids))
    missing = set(body.person_ids) - {p.pk for p in people}
    if missing:
        raise ValidationFailed(f"No such person: {sorted(missing)}.", field="person_ids")
    return accounts, people


@router.post("/holds", response={201: HoldOut}, summary="Place a legal hold")
def place_hold(request: HttpRequest, body: HoldIn) -> Any:
    actor = require(api_actor(request), Perm.LEGAL_HOLD)
    accounts, people = _custodians(body)
    hold = actions.place_legal_hold(
        actor=actor,
        matter_name=body.matter_name,
        description=body.description,
        accounts=accounts,
        people=people,
        date_from=body.date_from,
        date_to=body.date_to,
        query=body.query,
    )
    return Status(201, selectors.hold_as_dict(hold))


@router.get("/holds/{hold_id}", response=HoldDetailOut)
def get_hold(request: HttpRequest, hold_id: DbId) -> Any:
    hold = selectors.get_hold(api_actor(request), hold_id)
    return {**selectors.hold_as_dict(hold), "held_records": selectors.held_record_count(hold)}


@router.put("/holds/{hold_id}/scope", response=HoldOut, summary="Change what a hold covers")
def update_hold_scope(request: HttpRequest, hold_id: DbId, body: ScopeIn) -> Any:
    actor = require(api_actor(request), Perm.LEGAL_HOLD)
    hold = selectors.get_hold(actor, hold_id)
    accounts, people = _custodians(body)
    actions.update_legal_hold_scope(
        actor=actor,
        hold=hold,
        accounts=accounts,
        people=people,
        date_from=body.date_from,
        date_to=body.date_to,
        query=body.query,
    )
    return selectors.hold_as_dict(selectors.get_hold(actor, hold.pk))


@router.post("/holds/{hold_id}/release", response=HoldOut, summary="Release a legal hold")
def release_hold(request: HttpRequest, hold_id: DbId, body: ReleaseIn) -> Any:
    actor = require(api_actor(request), Perm.LEGAL_HOLD)
    hold = selectors.get_hold(actor, hold_id)
    hold = actions.release_legal_hold(actor=actor, hold=hold, reason=body.reason)
    return selectors.hold_as_dict(selectors.get_hold(actor, hold.pk))


@router.get("/disposal-runs", response=list[DisposalRunOut])
@paginate(BoundedPagination)
def list_disposal_runs(request: HttpRequest) -> Any:
    return selectors.disposal_runs(api_actor(request))


@router.get("/disposal-runs/{run_id}", response=DisposalRunDetailOut)
def get_disposal_run(request: HttpRequest, run_id: DbId) -> Any:
    return selectors.get_disposal_run(api_actor(request), run_id)


@router.get("/disposal-preview", response=PreviewOut, summary="What disposal would do now")
def disposal_preview(request: HttpRequest) -> Any:
    require(api_actor(request), Perm.ARCHIVE_VIEW)
    report = actions.dispose_expired(now=timezone.now(), dry_run=True)
    return report.as_dict()
