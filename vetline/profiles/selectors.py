"""Reads of profile vetting, always scoped to what the person may see: owners see their own
accounts' proposals and drift items; holders of ``profiles.vet`` see all of them."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from vetline.accounts.models import SocialAccount
from vetline.core.errors import NotFound
from vetline.core.http import MAX_DB_ID
from vetline.identity.models import Person
from vetline.identity.roles import Perm
from vetline.policy.highlight import segments
from vetline.profiles.drift import FIELD_LABELS
from vetline.profiles.models import ProfileDrift, ProfileProposal, ProfileRevision
from vetline.profiles.screening import StoredHit
from vetline.profiles.states import DRIFT_ACTIVE, ProposalState


def _in_range(value: int) -> bool:
    """A page's URL can carry any integer; the database driver overflows past 64 bits."""
    return 1 <= value <= MAX_DB_ID


def _signed_in(person: Person) -> bool:
    return bool(person.is_authenticated and person.is_active)


def can_vet(person: Person) -> bool:
    return _signed_in(person) and person.can(Perm.PROFILES_VET)


def own_accounts(person: Person) -> QuerySet[SocialAccount]:
    """Active accounts the person owns: the ones whose profile they propose."""
    if not _signed_in(person):
        return SocialAccount.objects.none()
    return SocialAccount.objects.filter(owner=person, is_active=True).order_by("network", "handle")


def get_own_account(person: Person, account_id: int) -> SocialAccount:
    account = own_accounts(person).filter(pk=account_id).first() if _in_range(account_id) else None
    if account is None:
        raise NotFound("No such account.")
    return account


def visible_proposals(person: Person) -> QuerySet[ProfileProposal]:
    qs = ProfileProposal.objects.select_related(
        "account", "account__owner", "current_revision", "approved_revision"
    )
    if not _signed_in(person):
        return qs.none()
    if person.can(Perm.PROFILES_VET):
        return qs
    return qs.filter(account__owner=person)


def get_visible_proposal(person: Person, proposal_id: int) -> ProfileProposal:
    proposal = (
        visible_proposals(person).filter(pk=proposal_id).first() if _in_range(proposal_id) else None
    )
    if proposal is None:
        raise NotFound("No such profile.")
    return proposal


def proposal_for_account(account: SocialAccount) -> ProfileProposal | None:
    return (
        ProfileProposal.objects.filter(account=account)
        .select_related("current_revision", "approved_revision")
        .first()
    )


def vetting_inbox(person: Person) -> QuerySet[ProfileProposal]:
    """Profiles waiting for compliance, oldest first; none for people who may not vet."""
    if not can_vet(person):
        return ProfileProposal.objects.none()
    return (
        visible_proposals(person)
        .filter(status=ProposalState.SUBMITTED.value)
        .select_related("current_revision__created_by")
        .order_by("submitted_at", "pk")
    )


def get_revision(proposal: ProfileProposal, number: int) -> ProfileRevision:
    if not 1 <= number < 2**31:
        raise NotFound("No such revision.")
    revision = proposal.revisions.filter(number=number).select_related("created_by").first()
    if revision is None:
        raise NotFound("No such revision.")
    return revision


def visible_drifts(person: Person) -> QuerySet[ProfileDrift]:
    qs = ProfileDrift.objects.select_related(
        "account", "account__owner", "approved_revision", "latest_record", "resolved_by"
    )
    if not _signed_in(person):
        return qs.none()
    if person.can(Perm.PROFILES_VET):
        return qs
    return qs.filter(account__owner=person)


def active_drifts(person: Person) -> QuerySet[ProfileDrift]:
    return visible_drifts(person).filter(status__in=[s.value for s in DRIFT_ACTIVE])


def get_visible_drift(person: Person, drift_id: int) -> ProfileDrift:
    drift = visible_drifts(person).filter(pk=drift_id).first() if _in_range(drift_id) else None
    if drift is None:
        raise NotFound("No such drift item.")
    return drift


def can_see_photo(person: Person, sha256: str) -> bool:
    """A photo is visible to whoever may see a revision that uses it."""
    if not _signed_in(person) or not sha256:
        return False
    qs = ProfileRevision.objects.filter(photo_sha256=sha256)
    if person.can(Perm.PROFILES_VET):
        return qs.exists()
    return qs.filter(Q(proposal__account__owner=person)).exists()


# --- Presentation helpers (pure reads of stored data) -----------------------------------------


@dataclass(frozen=True)
class FieldView:
    name: str
    label: str
    text: str
    verdict: str
    segments: list[dict[str, Any]]
    hits: list[StoredHit]


def highlighted_fields(revision: ProfileRevision) -> list[FieldView]:
    """Each screened field of a revision, split into segments for highlighting its hits."""
    screened = (revision.screening or {}).get("fields", {})
    texts = {
        "display_name": revision.display_name,
        "title": revision.title,
        "bio": revision.bio,
        "links": "\n".join(revision.links or []),
    }
    out: list[FieldView] = []
    for name, text in texts.items():
        data = screened.get(name, {})
        hits = [StoredHit.from_dict(h) for h in data.get("hits", [])]
        segs = []
        for seg in segments(text, hits):
            covering = [hits[i] for i in seg.hits]
            top = max(covering, key=lambda h: h.rank) if covering else None
            segs.append(
                {
                    "text": seg.text,
                    "hits": covering,
                    "top": top,
                    "numbers": [i + 1 for i in seg.hits],
                }
            )
        out.append(
            FieldView(
                name=name,
                label=FIELD_LABELS[name],
                text=text,
                verdict=data.get("verdict", "pass"),
                segments=segs,
                hits=hits,
            )
        )
    return out


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    before: str
    after: str
    lines: list[tuple[str, str]]  # (kind, text): kind is add, del or ctx


def _line_diff(before: str, after: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        tag, text = line[:2], line[2:]
        if tag == "+ ":
            out.append(("add", text))
        elif tag == "- ":
            out.append(("del", text))
        elif tag == "  ":
            out.append(("ctx", text))
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value or "")


def revision_changes(older: ProfileRevision | None, newer: ProfileRevision) -> list[FieldChange]:
    """The fields that differ between two revisions (all of ``newer`` when there is none)."""
    before = older.content() if older else {}
    after = newer.content()
    changes: list[FieldChange] = []
    for key, label in (
        ("display_name", "Display name"),
        ("title", "Title"),
        ("bio", "Headline / bio"),
        ("links", "Links"),
        ("photo_sha256", "Photo"),
    ):
        a, b = _as_text(before.get(key)), _as_text(after.get(key))
        if a != b:
            changes.append(FieldChange(key, label, a, b, _line_diff(a, b)))
    return changes


def drift_rows(drift: ProfileDrift) -> list[FieldChange]:
    """The drift item's differences, field by field, approved version against live."""
    rows = []
    for d in drift.differences or []:
        name = str(d.get("field", ""))
        a, b = str(d.get("approved", "")), str(d.get("live", ""))
        rows.append(FieldChange(name, FIELD_LABELS.get(name, name), a, b, _line_diff(a, b)))
    return rows
