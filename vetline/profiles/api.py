"""The profiles REST API: the same operations as the pages, through the same actions."""

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.pagination import paginate

from vetline.core.errors import ValidationFailed
from vetline.core.http import DbId, api_actor
from vetline.core.pagination import BoundedPagination
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.profiles import actions, selectors
from vetline.profiles.actions import MAX_BIO, MAX_COMMENT, MAX_DISPLAY_NAME, MAX_LINK, MAX_TITLE
from vetline.profiles.models import MAX_LINKS, ProfileDrift, ProfileProposal, ProfileRevision
from vetline.profiles.photos import MAX_PHOTO_BYTES
from vetline.profiles.states import DriftState, ProposalState

router = Router(tags=["profiles"])

MAX_PHOTO_BASE64 = (MAX_PHOTO_BYTES * 4) // 3 + 8
RevisionNumber = Annotated[int, Field(ge=1, le=2**31 - 1)]


class RevisionOut(Schema):
    number: int
    display_name: str
    bio: str
    title: str
    links: list[str]
    photo_sha256: str
    photo_mime_type: str
    content_sha256: str
    verdict: str
    screening: dict[str, Any]
    created_by_id: int
    created_at: datetime


class ProposalOut(Schema):
    id: int
    account_id: int
    account_handle: str
    network: str
    status: ProposalState
    current_revision: RevisionOut | None
    approved_revision: RevisionOut | None
    approved_at: datetime | None
    submitted_at: datetime | None
    returned_comment: str

    @staticmethod
    def resolve_account_handle(obj: ProfileProposal) -> str:
        return obj.account.handle

    @staticmethod
    def resolve_network(obj: ProfileProposal) -> str:
        return obj.account.network


class OwnAccountOut(Schema):
    account_id: int
    network: str
    handle: str
    kind: str
    proposal_id: int | None
    status: str | None


class ProposalIn(Schema):
    display_name: str = Field(..., min_length=1, max_length=MAX_DISPLAY_NAME)
    bio: str = Field("", max_length=MAX_BIO)
    title: str = Field("", max_length=MAX_TITLE)
    links: list[str] = Field(
        default_factory=list,
        max_length=MAX_LINKS,
        json_schema_extra={"items": {"maxLength": MAX_LINK}},
    )
    photo_base64: str | None = Field(
        None,
        max_length=MAX_PHOTO_BASE64,
        description="The photo's bytes, base64 (JPEG, PNG, GIF or WebP, at most 5 MB). "
        "Omit to keep the current photo.",
    )
    remove_photo: bool = False
    submit: bool = False


class DecisionIn(Schema):
    revision: int = Field(..., ge=1, le=2**31 - 1)
    comment: str = Field("", max_length=MAX_COMMENT)


class DriftOut(Schema):
    id: int
    account_id: int
    account_handle: str
    status: DriftState
    approved_revision: int
    first_record_id: int
    latest_record_id: int
    differences: list[dict[str, str]]
    alert_id: int | None
    detected_at: datetime
    resolved_at: datetime | None
    resolution: str

    @staticmethod
    def resolve_account_handle(obj: ProfileDrift) -> str:
        return obj.account.handle

    @staticmethod
    def resolve_approved_revision(obj: ProfileDrift) -> int:
        return obj.approved_revision.number


class DriftActionIn(Schema):
    comment: str = Field("", max_length=MAX_COMMENT)


def _photo(payload: ProposalIn) -> bytes | None:
    if payload.photo_base64 is None:
        return None
    try:
        return base64.b64decode(payload.photo_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("photo_base64 is not valid base64.", field="photo_base64") from exc


@router.get("/accounts", response=list[OwnAccountOut])
def list_own_accounts(request: HttpRequest) -> list[dict[str, Any]]:
    """The accounts you own, whose profile you propose."""
    out = []
    for account in selectors.own_accounts(api_actor(request)):
        proposal = selectors.proposal_for_account(account)
        out.append(
            {
                "account_id": account.pk,
                "network": account.network,
                "handle": account.handle,
                "kind": account.kind,
                "proposal_id": proposal.pk if proposal else None,
                "status": proposal.status if proposal else None,
            }
        )
    return out


@router.put("/accounts/{account_id}/proposal", response=ProposalOut)
def save_proposal(request: HttpRequest, account_id: DbId, payload: ProposalIn) -> ProfileProposal:
    """Save (and optionally submit) the proposed profile of an account you own: a new
    screened revision when anything changed."""
    actor = api_actor(request)
    account = selectors.get_own_account(actor, account_id)
    revision = actions.save_proposal(
        actor=actor,
        account=account,
        display_name=payload.display_name,
        bio=payload.bio,
        title=payload.title,
        links=payload.links,
        photo=_photo(payload),
        remove_photo=payload.remove_photo,
        submit=payload.submit,
    )
    return selectors.get_visible_proposal(actor, revision.proposal_id)


@router.get("/proposals", response=list[ProposalOut])
@paginate(BoundedPagination)
def list_proposals(request: HttpRequest, status: ProposalState | None = None) -> Any:
    """Your proposals; with ``profiles.vet``, everyone's."""
    qs = selectors.visible_proposals(api_actor(request)).order_by("id")
    if status:
        qs = qs.filter(status=status.value)
    return qs


@router.get("/proposals/{proposal_id}", response=ProposalOut)
def get_proposal(request: HttpRequest, proposal_id: DbId) -> ProfileProposal:
    return selectors.get_visible_proposal(api_actor(request), proposal_id)


@router.get("/proposals/{proposal_id}/revisions/{number}", response=RevisionOut)
def get_revision(
    request: HttpRequest, proposal_id: DbId, number: RevisionNumber
) -> ProfileRevision:
    proposal = selectors.get_visible_proposal(api_actor(request), proposal_id)
    return selectors.get_revision(proposal, number)


@router.post("/proposals/{proposal_id}/submit", response=ProposalOut)
def submit_proposal(request: HttpRequest, proposal_id: DbId) -> ProfileProposal:
    actor = api_actor(request)
    proposal = selectors.get_visible_proposal(actor, proposal_id)
    actions.submit_proposal(actor=actor, proposal=proposal)
    return selectors.get_visible_proposal(actor, proposal_id)


@router.post("/proposals/{proposal_id}/withdraw", response=ProposalOut)
def withdraw_proposal(request: HttpRequest, proposal_id: DbId) -> ProfileProposal:
    actor = api_actor(request)
    proposal = selectors.get_visible_proposal(actor, proposal_id)
    actions.withdraw_proposal(actor=actor, proposal=proposal)
    return selectors.get_visible_proposal(actor, proposal_id)


@router.post("/proposals/{proposal_id}/approve", response=ProposalOut)
def approve_proposal(
    request: HttpRequest, proposal_id: DbId, payload: DecisionIn
) -> ProfileProposal:
    """Approve exactly revision ``revision`` (compliance; never your own profile)."""
    actor = api_actor(request)
    require(actor, Perm.PROFILES_VET)
    proposal = selectors.get_visible_proposal(actor, proposal_id)
    actions.approve_proposal(
        actor=actor, proposal=proposal, revision_number=payload.revision, comment=payload.comment
    )
    return selectors.get_visible_proposal(actor, proposal_id)


@router.post("/proposals/{proposal_id}/reject", response=ProposalOut)
def reject_proposal(
    request: HttpRequest, proposal_id: DbId, payload: DecisionIn
) -> ProfileProposal:
    """Return revision ``revision`` to its author with a comment (required)."""
    actor = api_actor(request)
    require(actor, Perm.PROFILES_VET)
    proposal = selectors.get_visible_proposal(actor, proposal_id)
    actions.reject_proposal(
        actor=actor, proposal=proposal, revision_number=payload.revision, comment=payload.comment
    )
    return selectors.get_visible_proposal(actor, proposal_id)


@router.get("/drifts", response=list[DriftOut])
@paginate(BoundedPagination)
def list_drifts(request: HttpRequest, status: DriftState | None = None) -> Any:
    qs = selectors.visible_drifts(api_actor(request)).order_by("-detected_at", "-id")
    if status:
        qs = qs.filter(status=status.value)
    return qs


@router.get("/drifts/{drift_id}", response=DriftOut)
def get_drift(request: HttpRequest, drift_id: DbId) -> ProfileDrift:
    return selectors.get_visible_drift(api_actor(request), drift_id)


@router.post("/drifts/{drift_id}/acknowledge", response=DriftOut)
def acknowledge_drift(request: HttpRequest, drift_id: DbId, payload: DriftActionIn) -> ProfileDrift:
    actor = api_actor(request)
    require(actor, Perm.PROFILES_VET)
    drift = selectors.get_visible_drift(actor, drift_id)
    actions.acknowledge_drift(actor=actor, drift=drift, comment=payload.comment)
    return selectors.get_visible_drift(actor, drift_id)


@router.post("/drifts/{drift_id}/resolve", response=DriftOut)
def resolve_drift(request: HttpRequest, drift_id: DbId, payload: DriftActionIn) -> ProfileDrift:
    """Close the drift item with what was done about it (required)."""
    actor = api_actor(request)
    require(actor, Perm.PROFILES_VET)
    drift = selectors.get_visible_drift(actor, drift_id)
    actions.resolve_drift(actor=actor, drift=drift, resolution=payload.comment)
    return selectors.get_visible_drift(actor, drift_id)
