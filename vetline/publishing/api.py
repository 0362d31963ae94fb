"""The publishing REST API: the same operations as the pages (drafts, screening, approvals,
chains, delegations, freezes, publications, rogue posts, notifications)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from vetline.accounts.models import SocialAccount
from vetline.core.errors import NotFound, ValidationFailed
from vetline.core.http import DbId, api_actor
from vetline.core.pagination import BoundedPagination
from vetline.identity.models import Person
from vetline.identity.permissions import require, require_any
from vetline.identity.roles import Perm
from vetline.publishing import actions, approvals, selectors
from vetline.publishing.models import (
    ApprovalChain,
    ApprovalRequest,
    Delegation,
    Draft,
    Freeze,
    Notification,
    Publication,
    RoguePost,
)
from vetline.publishing.notifications import mark_read

router = Router(tags=["publishing"])

Text = Field("", max_length=actions.MAX_TEXT_CHARS)
RevisionNumber = Annotated[int, Field(ge=1, le=100_000)]


# --- Schemas -------------------------------------------------------------------------------------


class MediaIn(Schema):
    content_b64: str = Field(..., min_length=1, max_length=23_000_000)
    mime_type: str = Field("", max_length=100)
    alt_text: str = Field("", max_length=1000)


class DraftIn(Schema):
    text: str = Text
    account_ids: list[DbId] = Field(..., min_length=1, max_length=actions.MAX_TARGETS)
    variants: dict[str, str] = Field(default_factory=dict, max_length=actions.MAX_TARGETS)
    links: list[str] = Field(default_factory=list, max_length=actions.MAX_LINKS)
    media: list[MediaIn] = Field(default_factory=list, max_length=actions.MAX_MEDIA)
    reply_to_record_id: DbId | None = None
    scheduled_for: str | None = Field(
        None, max_length=40, description="ISO 8601 with a time zone; empty: when approved"
    )


class HitOut(Schema):
    rule_id: str
    severity: str
    start: int
    end: int
    matched_text: str
    explanation: str


class ScreeningOut(Schema):
    account_id: int | None = None
    text: str = ""
    verdict: str
    hits: list[dict[str, Any]]


class RevisionOut(Schema):
    id: int
    number: int
    text: str
    links: list[str]
    content_sha256: str
    verdict: str
    screening: list[dict[str, Any]]
    override_reason: str
    override_by_id: int | None
    created_at: datetime
    targets: list[dict[str, Any]]
    media: list[dict[str, Any]]

    @staticmethod
    def resolve_targets(obj: Any) -> list[dict[str, Any]]:
        return [
            {"account_id": t.account_id, "variant_text": t.variant_text} for t in obj.targets.all()
        ]

    @staticmethod
    def resolve_media(obj: Any) -> list[dict[str, Any]]:
        return [
            {"sha256": m.sha256, "mime_type": m.mime_type, "size_bytes": m.size_bytes}
            for m in obj.media.all()
        ]


class DraftOut(Schema):
    id: int
    kind: str
    state: str
    author_id: int
    scheduled_for: datetime | None
    reply_to_record_id: int | None
    last_error: str
    created_at: datetime
    updated_at: datetime
    latest: RevisionOut | None
    request_id: int | None

    @staticmethod
    def resolve_latest(obj: Draft) -> Any:
        return obj.latest_revision

    @staticmethod
    def resolve_request_id(obj: Draft) -> int | None:
        req = selectors.latest_request(obj)
        return req.pk if req else None


class DiffOut(Schema):
    older: int | None
    newer: int
    pieces: list[list[str]]


class EventOut(Schema):
    at: datetime
    kind: str
    text: str


class StepOut(Schema):
    position: int
    name: str
    role: str
    approver_ids: list[int]
    required_approvals: int
    added_by_screening: bool
    completed_at: datetime | None


class ApprovalOut(Schema):
    id: int
    step_id: int
    approver_id: int
    on_behalf_of_id: int | None
    decision: str
    comment: str
    decided_at: datetime


class RequestOut(Schema):
    id: int
    subject_type: str
    subject_id: int
    subject_kind: str
    subject_sha256: str
    title: str
    author_id: int
    state: str
    current_position: int
    notes_for_approvers: str
    created_at: datetime
    decided_at: datetime | None
    expires_at: datetime | None
    steps: list[StepOut]
    approvals: list[ApprovalOut]

    @staticmethod
    def resolve_steps(obj: ApprovalRequest) -> Any:
        return list(obj.steps.all())

    @staticmethod
    def resolve_approvals(obj: ApprovalRequest) -> Any:
        return list(obj.approvals.all())


class DecisionIn(Schema):
    decision: str = Field(..., pattern="^(approve|reject)$")
    comment: str = Field("", max_length=5000)
    subject_sha256: str = Field(..., min_length=64, max_length=64)
    on_behalf_of_id: DbId | None = None
    step_position: int | None = Field(None, ge=1, le=1000)


class ReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=5000)


class OptionalReasonIn(Schema):
    reason: str = Field("", max_length=2000)


class SubmitIn(Schema):
    revision_sha256: str = Field("", max_length=64)


class RescheduleIn(Schema):
    scheduled_for: str | None = Field(None, max_length=40)


class ScreenIn(Schema):
    text: str = Field(..., max_length=actions.MAX_TEXT_CHARS)
    reply: bool = False


class StepIn(Schema):
    name: str = Field(..., min_length=1, max_length=120)
    required_approvals: int = Field(1, ge=1, le=20)
    role: str = Field("", max_length=40)
    approver_ids: list[DbId] = Field(default_factory=list, max_length=50)


class ChainIn(Schema):
    name: str = Field(..., min_length=1, max_length=120)
    subject_kind: str = Field(..., pattern="^(post|reply|profile)$")
    account_id: DbId | None = None
    group_id: DbId | None = None
    requires_approval: bool = True
    approval_valid_hours: int = Field(72, ge=1, le=24 * 90)
    steps: list[StepIn] = Field(default_factory=list, max_length=10)


class ChainOut(Schema):
    id: int
    name: str
    subject_kind: str
    account_id: int | None
    group_id: int | None
    requires_approval: bool
    approval_valid_hours: int
    is_active: bool
    steps: list[dict[str, Any]]

    @staticmethod
    def resolve_steps(obj: ApprovalChain) -> list[dict[str, Any]]:
        return [
            {
                "position": s.position,
                "name": s.name,
                "role": s.role,
                "approver_ids": sorted(s.approvers.values_list("pk", flat=True)),
                "required_approvals": s.required_approvals,
            }
            for s in obj.steps.all()
        ]


class DelegationIn(Schema):
    delegator_id: DbId | None = None
    delegate_id: DbId
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(..., min_length=1, max_length=500)


class DelegationOut(Schema):
    id: int
    delegator_id: int
    delegate_id: int
    starts_at: datetime
    ends_at: datetime
    reason: str
    revoked_at: datetime | None


class FreezeIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)
    account_ids: list[DbId] = Field(default_factory=list, max_length=1000)


class HeldOut(Schema):
    publication_id: int
    resolution: str
    resolved_by_id: int | None
    resolved_at: datetime | None


class FreezeOut(Schema):
    id: int
    reason: str
    all_accounts: bool
    account_ids: list[int]
    started_by_id: int
    started_at: datetime
    lifted_at: datetime | None
    held: list[HeldOut]

    @staticmethod
    def resolve_account_ids(obj: Freeze) -> list[int]:
        return sorted(a.pk for a in obj.accounts.all())

    @staticmethod
    def resolve_held(obj: Freeze) -> Any:
        return list(obj.held.all())


class HeldDecisionIn(Schema):
    decision: str = Field(..., pattern="^(reconfirmed|withdrawn)$")


class SettleIn(Schema):
    outcome: str = Field(
        ...,
        pattern="^(published|not_published)$",
        description="published: found on the network; not_published: not there",
    )
    remote_id: str = Field(
        "", max_length=actions.MAX_REMOTE_ID_CHARS, description="required when published"
    )
    url: str = Field("", max_length=actions.MAX_URL_CHARS)
    reason: str = Field(..., min_length=1, max_length=actions.MAX_REASON_CHARS)


class PublicationOut(Schema):
    id: int
    draft_id: int
    account_id: int
    state: str
    scheduled_for: datetime
    attempts: int
    remote_id: str
    url: str
    published_at: datetime | None
    last_used_at: datetime | None
    last_use_reason: str
    last_error: str
    archived_record_id: int | None
    approval_record_id: int | None
    approval_record: dict[str, Any]

    @staticmethod
    def resolve_approval_record(obj: Publication) -> dict[str, Any]:
        import json

        return dict(json.loads(json.dumps(actions.approval_record(obj), default=str)))


class RogueOut(Schema):
    id: int
    record_id: int
    account_id: int
    remote_id: str
    text: str
    verdict: str
    status: str
    detected_at: datetime
    alert_id: int | None


class NoteIn(Schema):
    note: str = Field("", max_length=5000)


class NotificationOut(Schema):
    id: int
    title: str
    body: str
    url: str
    created_at: datetime
    read_at: datetime | None


# --- Helpers -------------------------------------------------------------------------------------


def _draft_input(payload: DraftIn) -> actions.DraftInput:
    media = []
    for i, m in enumerate(payload.media, start=1):
        try:
            content = base64.b64decode(m.content_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed(f"Attachment {i} is not valid base64.", field="media") from exc
        media.append(
            actions.MediaUpload(content=content, declared_type=m.mime_type, alt_text=m.alt_text)
        )
    variants: dict[int, str] = {}
    for key, text in payload.variants.items():
        if not key.isdigit() or len(key) > 18 or len(text) > actions.MAX_TEXT_CHARS:
            raise ValidationFailed("Variants map account ids to text.", field="variants")
        variants[int(key)] = text
    for link in payload.links:
        if len(link) > 2000:
            raise ValidationFailed("A link is too long.", field="links")
    return actions.DraftInput(
        text=payload.text,
        account_ids=list(payload.account_ids),
        variants=variants,
        links=list(payload.links),
        media=media,
        reply_to_record_id=payload.reply_to_record_id,
        scheduled_for=payload.scheduled_for or None,
    )


def _draft(request: HttpRequest, draft_id: int) -> Draft:
    return actions.get_draft(api_actor(request), draft_id)


# --- Drafts --------------------------------------------------------------------------------------


@router.get("/drafts", response=list[DraftOut])
@paginate(BoundedPagination)
def list_drafts(request: HttpRequest, state: str | None = None) -> Any:
    actor = api_actor(request)
    qs = actions.visible_drafts(actor).order_by("-updated_at", "-id")
    if state:
        qs = qs.filter(state=state[:20])
    return qs


@router.post("/drafts", response={201: DraftOut})
def create_draft(request: HttpRequest, payload: DraftIn) -> Status[Draft]:
    draft = actions.create_draft(actor=api_actor(request), data=_draft_input(payload))
    return Status(201, draft)


@router.get("/drafts/{draft_id}", response=DraftOut)
def get_draft(request: HttpRequest, draft_id: DbId) -> Draft:
    return _draft(request, draft_id)


@router.put("/drafts/{draft_id}", response=DraftOut)
def save_draft(request: HttpRequest, draft_id: DbId, payload: DraftIn) -> Draft:
    actor = api_actor(request)
    draft = _draft(request, draft_id)
    latest = draft.latest_revision
    data = _draft_input(payload)
    if not data.media and latest is not None:
        data = replace(data, keep_media_from=latest.pk)
    actions.save_draft(actor=actor, draft_id=draft.pk, data=data)
    draft.refresh_from_db()
    return draft


@router.get("/drafts/{draft_id}/history", response=list[EventOut])
def draft_history(request: HttpRequest, draft_id: DbId) -> Any:
    return selectors.timeline(_draft(request, draft_id))


@router.get("/drafts/{draft_id}/diff", response=DiffOut)
def draft_diff(
    request: HttpRequest,
    draft_id: DbId,
    newer: RevisionNumber | None = None,
    older: RevisionNumber | None = None,
) -> dict[str, Any]:
    draft = _draft(request, draft_id)
    revs = {r.number: r for r in draft.revisions.all()}
    new = revs.get(newer) if newer else draft.latest_revision
    if new is None:
        raise NotFound("No such revision.")
    old = revs.get(older) if older else selectors.previous_revision(new)
    if older and old is None:
        raise NotFound("No such revision.")
    return {
        "older": old.number if old else None,
        "newer": new.number,
        "pieces": [list(p) for p in selectors.revision_diff(old, new)],
    }


@router.post("/drafts/{draft_id}/submit", response=DraftOut)
def submit_draft(request: HttpRequest, draft_id: DbId, payload: SubmitIn) -> Draft:
    return actions.submit_draft(
        actor=api_actor(request), draft_id=draft_id, revision_sha256=payload.revision_sha256
    )


@router.post("/drafts/{draft_id}/withdraw", response=DraftOut)
def withdraw_draft(request: HttpRequest, draft_id: DbId, payload: OptionalReasonIn) -> Draft:
    return actions.withdraw_draft(
        actor=api_actor(request), draft_id=draft_id, reason=payload.reason
    )


@router.post("/drafts/{draft_id}/reschedule", response=DraftOut)
def reschedule_draft(request: HttpRequest, draft_id: DbId, payload: RescheduleIn) -> Draft:
    return actions.reschedule_draft(
        actor=api_actor(request), draft_id=draft_id, scheduled_for=payload.scheduled_for
    )


@router.post("/revisions/{revision_id}/override", response=RevisionOut)
def override_block(request: HttpRequest, revision_id: DbId, payload: ReasonIn) -> Any:
    return actions.override_block(
        actor=api_actor(request), revision_id=revision_id, reason=payload.reason
    )


@router.post("/screen", response=ScreeningOut)
def screen(request: HttpRequest, payload: ScreenIn) -> dict[str, Any]:
    result = actions.preview_screening(
        actor=api_actor(request), text=payload.text, reply=payload.reply
    )
    return {"text": payload.text, **result}


# --- Approvals -----------------------------------------------------------------------------------


@router.get("/approvals", response=list[RequestOut])
def inbox(request: HttpRequest) -> Any:
    """What waits for the caller's decision now."""
    return approvals.inbox(api_actor(request))


@router.get("/approvals/{request_id}", response=RequestOut)
def get_request(request: HttpRequest, request_id: DbId) -> ApprovalRequest:
    return approvals.get_request(api_actor(request), request_id)


@router.post("/approvals/{request_id}/decide", response=RequestOut)
def decide(request: HttpRequest, request_id: DbId, payload: DecisionIn) -> ApprovalRequest:
    actor = api_actor(request)
    approvals.get_request(actor, request_id)
    req = approvals.decide(
        actor=actor,
        request_id=request_id,
        decision=payload.decision,
        comment=payload.comment,
        subject_sha256=payload.subject_sha256,
        on_behalf_of_id=payload.on_behalf_of_id,
        step_position=payload.step_position,
    )
    req.refresh_from_db()
    return req


# --- Chains and delegations ----------------------------------------------------------------------


@router.get("/chains", response=list[ChainOut])
def list_chains(request: HttpRequest) -> Any:
    require(api_actor(request), Perm.APPROVAL_CHAINS_MANAGE)
    return list(ApprovalChain.objects.filter(is_active=True).prefetch_related("steps__approvers"))


@router.post("/chains", response={201: ChainOut})
def save_chain(request: HttpRequest, payload: ChainIn) -> Status[ApprovalChain]:
    from vetline.publishing.models import AccountGroup

    actor = api_actor(request)
    require(actor, Perm.APPROVAL_CHAINS_MANAGE)
    account = None
    if payload.account_id is not None:
        account = SocialAccount.objects.filter(pk=payload.account_id).first()
        if account is None:
            raise ValidationFailed("No such account.", field="account_id")
    group = None
    if payload.group_id is not None:
        group = AccountGroup.objects.filter(pk=payload.group_id).first()
        if group is None:
            raise ValidationFailed("No such group.", field="group_id")
    chain = approvals.save_chain(
        actor=actor,
        name=payload.name,
        subject_kind=payload.subject_kind,
        steps=[
            approvals.StepInput(
                name=s.name,
                required_approvals=s.required_approvals,
                role=s.role,
                approver_ids=tuple(s.approver_ids),
            )
            for s in payload.steps
        ],
        account=account,
        group=group,
        requires_approval=payload.requires_approval,
        approval_valid_hours=payload.approval_valid_hours,
    )
    return Status(201, chain)


@router.get("/delegations", response=list[DelegationOut])
def list_delegations(request: HttpRequest) -> Any:
    actor = api_actor(request)
    qs = Delegation.objects.all()
    if not actor.can(Perm.APPROVAL_CHAINS_MANAGE):
        qs = qs.filter(delegator=actor) | qs.filter(delegate=actor)
    return list(qs.order_by("-starts_at")[:500])


@router.post("/delegations", response={201: DelegationOut})
def create_delegation(request: HttpRequest, payload: DelegationIn) -> Status[Delegation]:
    actor = api_actor(request)
    require_any(actor, Perm.APPROVE, Perm.PROFILES_VET, Perm.APPROVAL_CHAINS_MANAGE)
    delegator = actor
    if payload.delegator_id is not None and payload.delegator_id != actor.pk:
        require(actor, Perm.APPROVAL_CHAINS_MANAGE)
        found = Person.objects.filter(pk=payload.delegator_id).first()
        if found is None:
            raise ValidationFailed("No such person.", field="delegator_id")
        delegator = found
    delegate = Person.objects.filter(pk=payload.delegate_id).first()
    if delegate is None:
        raise ValidationFailed("No such person.", field="delegate_id")
    starts, ends = payload.starts_at, payload.ends_at
    if timezone.is_naive(starts) or timezone.is_naive(ends):
        raise ValidationFailed("Give times with a time zone.", field="starts_at")
    delegation = approvals.create_delegation(
        actor=actor,
        delegator=delegator,
        delegate=delegate,
        starts_at=starts,
        ends_at=ends,
        reason=payload.reason,
    )
    return Status(201, delegation)


@router.post("/delegations/{delegation_id}/revoke", response=DelegationOut)
def revoke_delegation(request: HttpRequest, delegation_id: DbId) -> Delegation:
    return approvals.revoke_delegation(actor=api_actor(request), delegation_id=delegation_id)


# --- Freezes --------------------------------------------------------------------------------------


@router.get("/freezes", response=list[FreezeOut])
def list_freezes(request: HttpRequest) -> Any:
    require(api_actor(request), Perm.PUBLISHING_FREEZE)
    return list(Freeze.objects.prefetch_related("accounts", "held")[:100])


@router.post("/freezes", response={201: FreezeOut})
def start_freeze(request: HttpRequest, payload: FreezeIn) -> Status[Freeze]:
    freeze = actions.start_freeze(
        actor=api_actor(request), reason=payload.reason, account_ids=list(payload.account_ids)
    )
    return Status(201, freeze)


@router.post("/freezes/{freeze_id}/held/{publication_id}", response=HeldOut)
def resolve_held(
    request: HttpRequest, freeze_id: DbId, publication_id: DbId, payload: HeldDecisionIn
) -> Any:
    return actions.resolve_held(
        actor=api_actor(request),
        freeze_id=freeze_id,
        publication_id=publication_id,
        decision=payload.decision,
    )


@router.post("/freezes/{freeze_id}/lift", response=FreezeOut)
def lift_freeze(request: HttpRequest, freeze_id: DbId, payload: OptionalReasonIn) -> Freeze:
    return actions.lift_freeze(actor=api_actor(request), freeze_id=freeze_id, reason=payload.reason)


# --- Publications, rogue posts, notifications -----------------------------------------------------


def _publication(request: HttpRequest, publication_id: int) -> Publication:
    actor = api_actor(request)
    pub = (
        Publication.objects.filter(pk=publication_id, draft__in=actions.visible_drafts(actor))
        .select_related("account", "revision", "draft__author", "request")
        .first()
    )
    if pub is None:
        raise NotFound("No such publication.")
    return pub


@router.get("/publications/{publication_id}", response=PublicationOut)
def get_publication(request: HttpRequest, publication_id: DbId) -> Publication:
    """A publication and its approval record (approving principals, dates, first and last
    use)."""
    return _publication(request, publication_id)


@router.post("/publications/{publication_id}/retry", response=PublicationOut)
def retry_publication(request: HttpRequest, publication_id: DbId) -> Publication:
    _publication(request, publication_id)
    actions.retry_publication(actor=api_actor(request), publication_id=publication_id)
    return _publication(request, publication_id)


@router.get("/unsettled", response=list[PublicationOut])
@paginate(BoundedPagination)
def list_unsettled(request: HttpRequest) -> Any:
    """Publications whose sending was interrupted and whose fate is still unknown (among the
    drafts the caller sees), oldest first: what ``settle`` is for."""
    return actions.awaiting_settlement(api_actor(request)).select_related("revision", "request")


@router.post("/publications/{publication_id}/settle", response=PublicationOut)
def settle_publication(
    request: HttpRequest, publication_id: DbId, payload: SettleIn
) -> Publication:
    """Settle by hand a publication whose sending was interrupted and whose fate reconciliation
    could not establish (compliance). 409 unless it is still sending and stale."""
    actions.settle_publication(
        actor=api_actor(request),
        publication_id=publication_id,
        outcome=payload.outcome,
        remote_id=payload.remote_id,
        url=payload.url,
        reason=payload.reason,
    )
    return _publication(request, publication_id)


@router.get("/rogue-posts", response=list[RogueOut])
@paginate(BoundedPagination)
def list_rogue_posts(request: HttpRequest, status: str | None = None) -> Any:
    qs = selectors.visible_rogue_posts(api_actor(request)).order_by("-detected_at", "-id")
    if status:
        qs = qs.filter(status=status[:20])
    return qs


@router.post("/rogue-posts/{rogue_id}/acknowledge", response=RogueOut)
def acknowledge_rogue(request: HttpRequest, rogue_id: DbId, payload: NoteIn) -> RoguePost:
    return actions.acknowledge_rogue(actor=api_actor(request), rogue_id=rogue_id, note=payload.note)


@router.get("/notifications", response=list[NotificationOut])
@paginate(BoundedPagination)
def list_notifications(request: HttpRequest, unread: bool = False) -> Any:
    qs = Notification.objects.filter(person=api_actor(request)).order_by("-created_at", "-id")
    if unread:
        qs = qs.filter(read_at__isnull=True)
    return qs


@router.post("/notifications/{notification_id}/read", response=NotificationOut)
def read_notification(request: HttpRequest, notification_id: DbId) -> Notification:
    return mark_read(actor=api_actor(request), notification_id=notification_id)


# --- Account groups -------------------------------------------------------------------------------


class GroupIn(Schema):
    name: str = Field(..., min_length=1, max_length=120)
    account_ids: list[DbId] = Field(default_factory=list, max_length=1000)


class GroupOut(Schema):
    id: int
    name: str
    account_ids: list[int]

    @staticmethod
    def resolve_account_ids(obj: Any) -> list[int]:
        return sorted(a.pk for a in obj.accounts.all())


@router.get("/groups", response=list[GroupOut])
def list_groups(request: HttpRequest) -> Any:
    from vetline.publishing.models import AccountGroup

    require(api_actor(request), Perm.APPROVAL_CHAINS_MANAGE)
    return list(AccountGroup.objects.prefetch_related("accounts")[:500])


@router.post("/groups", response={201: GroupOut})
def create_group(request: HttpRequest, payload: GroupIn) -> Status[Any]:
    actor = api_actor(request)
    require(actor, Perm.APPROVAL_CHAINS_MANAGE)
    accounts = list(SocialAccount.objects.filter(pk__in=payload.account_ids))
    if len(accounts) != len(set(payload.account_ids)):
        raise ValidationFailed("An account given does not exist.", field="account_ids")
    return Status(201, approvals.save_group(actor=actor, name=payload.name, accounts=accounts))
