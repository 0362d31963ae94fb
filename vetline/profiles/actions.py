"""Writes of profile vetting: proposing a profile (every save a screened revision), submitting
it to compliance through the line of authority's approval engine, and the drift review items
raised when a captured live profile no longer matches the approved version.

Every write checks permission (or ownership), runs in one transaction with its audit event, and
moves its object only along the transitions declared in :mod:`vetline.profiles.states`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from vetline.accounts.models import SocialAccount
from vetline.archive.models import ArchivedRecord, RecordKind
from vetline.audit.actions import record
from vetline.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.profiles import drift as drift_logic
from vetline.profiles.models import (
    MAX_LINKS,
    DriftCursor,
    ProfileDrift,
    ProfileProposal,
    ProfileRevision,
)
from vetline.profiles.photos import PhotoError, check_photo
from vetline.profiles.screening import field_texts, screen_profile
from vetline.profiles.states import (
    DRIFT_ACTIVE,
    DriftState,
    IllegalTransition,
    ProposalState,
    check_drift_transition,
    check_proposal_transition,
)

logger = logging.getLogger(__name__)

MAX_DISPLAY_NAME: Final = 100
MAX_BIO: Final = 2000
MAX_TITLE: Final = 150
MAX_LINK: Final = 500
MAX_COMMENT: Final = 2000
ALERT_PROFILE_DRIFT: Final = "profile_drift"
DRIFT_CURSOR: Final = "profile-drift"


# --- Proposals ---------------------------------------------------------------------------------


def _clean_text(value: str, *, field: str, label: str, limit: int, required: bool = False) -> str:
    value = (value or "").strip()
    if "\x00" in value:
        raise ValidationFailed(f"{label} contains a NUL character.", field=field)
    if required and not value:
        raise ValidationFailed(f"{label} is required.", field=field)
    if len(value) > limit:
        raise ValidationFailed(
            f"{label} is too long ({len(value):,} characters; at most {limit:,}).", field=field
        )
    return value


def clean_links(links: Sequence[str]) -> list[str]:
    """Web addresses only (http or https, with a host), each at most once."""
    out: list[str] = []
    for raw in links:
        link = (raw or "").strip()
        if not link:
            continue
        if len(link) > MAX_LINK:
            raise ValidationFailed(
                f"A link is too long ({len(link):,} characters; at most {MAX_LINK}).",
                field="links",
            )
        try:
            parts = urlsplit(link)
        except ValueError:
            parts = None
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() for c in link)
        ):
            raise ValidationFailed(
                f"“{link[:80]}” is not a web address; links start with https:// or http://.",
                field="links",
            )
        if link not in out:
            out.append(link)
    if len(out) > MAX_LINKS:
        raise ValidationFailed(f"At most {MAX_LINKS} links.", field="links")
    return out


def content_sha256(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _require_owner(actor: Person, account: SocialAccount) -> None:
    if actor is None or not actor.is_authenticated or not actor.is_active:
        raise Forbidden("Sign in first.")
    if account.owner_id != actor.pk:
        raise NotFound("No such account.")
    if not account.is_active:
        raise ValidationFailed("This account is deactivated.")


def _proposal_snapshot(p: ProfileProposal) -> dict[str, Any]:
    return {
        "status": p.status,
        "current_revision": p.current_revision.number if p.current_revision else None,
        "approved_revision": p.approved_revision.number if p.approved_revision else None,
    }


def _move(proposal: ProfileProposal, target: ProposalState) -> None:
    try:
        check_proposal_transition(proposal.status, target)
    except IllegalTransition as exc:
        raise Conflict(
            f"This profile is {proposal.state.label.lower()}; it cannot become "
            f"{target.label.lower()} from there."
        ) from exc
    proposal.status = target.value
    proposal.updated_at = timezone.now()


def store_photo(data: bytes) -> tuple[str, Any]:
    """Check an uploaded photo and store its bytes content-addressed. Raises ValidationFailed
    with the reason (too large, unsupported type, damaged, bad dimensions)."""
    from vetline.archive.blobs import default_store, retain_until_for

    try:
        info = check_photo(data)
    except PhotoError as exc:
        raise ValidationFailed(exc.message, field="photo", code=exc.code) from exc
    # Write-once and named by its hash: storing it before the transaction commits can at worst
    # leave an unreferenced blob, never a wrong one.
    sha = default_store().put(
        data, retain_until=retain_until_for(captured_at=timezone.now(), record_class="profile")
    )
    return sha, info


def save_proposal(
    *,
    actor: Person,
    account: SocialAccount,
    display_name: str,
    bio: str = "",
    title: str = "",
    links: Sequence[str] = (),
    photo: bytes | None = None,
    remove_photo: bool = False,
    submit: bool = False,
) -> ProfileRevision:
    """The account's owner saves their proposed profile: a new screened revision (an unchanged
    save makes none). Any edit puts the proposal back in draft and supersedes a request under
    way, so an approval never carries over to changed content. ``submit`` also submits it."""
    _require_owner(actor, account)
    display_name = _clean_text(
        display_name,
        field="display_name",
        label="Display name",
        limit=MAX_DISPLAY_NAME,
        required=True,
    )
    bio = _clean_text(bio, field="bio", label="Headline / bio", limit=MAX_BIO)
    title = _clean_text(title, field="title", label="Title", limit=MAX_TITLE)
    cleaned_links = clean_links(links)
    photo_info = None
    photo_sha = ""
    if photo is not None:
        photo_sha, photo_info = store_photo(photo)
    with transaction.atomic():
        proposal, _created = ProfileProposal.objects.get_or_create(account=account)
        proposal = (
            ProfileProposal.objects.select_for_update(of=("self",))
            .select_related("current_revision", "approved_revision")
            .get(pk=proposal.pk)
        )
        current = proposal.current_revision
        if photo is None and current is not None and not remove_photo:
            photo_sha = current.photo_sha256
        content = {
            "display_name": display_name,
            "bio": bio,
            "title": title,
            "links": cleaned_links,
            "photo_sha256": photo_sha,
        }
        sha = content_sha256(content)
        if current is not None and current.content_sha256 == sha:
            revision = current
        else:
            revision = _new_revision(
                actor=actor,
                proposal=proposal,
                content=content,
                sha=sha,
                photo_info=photo_info,
                previous=current,
            )
        if submit:
            _submit(actor=actor, proposal=proposal)
    return revision


def _new_revision(
    *,
    actor: Person,
    proposal: ProfileProposal,
    content: dict[str, Any],
    sha: str,
    photo_info: Any,
    previous: ProfileRevision | None,
) -> ProfileRevision:
    before = _proposal_snapshot(proposal)
    screening = screen_profile(
        field_texts(
            display_name=content["display_name"],
            bio=content["bio"],
            title=content["title"],
            links=content["links"],
        )
    )
    photo_fields: dict[str, Any] = {}
    if content["photo_sha256"]:
        if photo_info is not None:
            photo_fields = {
                "photo_mime_type": photo_info.mime_type,
                "photo_size_bytes": photo_info.size_bytes,
                "photo_width_px": photo_info.width_px,
                "photo_height_px": photo_info.height_px,
            }
        elif previous is not None:
            photo_fields = {
                "photo_mime_type": previous.photo_mime_type,
                "photo_size_bytes": previous.photo_size_bytes,
                "photo_width_px": previous.photo_width_px,
                "photo_height_px": previous.photo_height_px,
            }
    revision = ProfileRevision.objects.create(
        proposal=proposal,
        number=(previous.number + 1) if previous else 1,
        display_name=content["display_name"],
        bio=content["bio"],
        title=content["title"],
        links=content["links"],
        photo_sha256=content["photo_sha256"],
        content_sha256=sha,
        screening=screening,
        verdict=screening["verdict"],
        created_by=actor,
        **photo_fields,
    )
    if previous is not None:
        from vetline.profiles import approval

        approval.supersede(proposal=proposal, revision=previous, actor=actor)
    if proposal.status != ProposalState.DRAFT:
        _move(proposal, ProposalState.DRAFT)
    proposal.current_revision = revision
    proposal.updated_at = timezone.now()
    proposal.save()
    record(
        action="profiles.revision.create",
        actor=actor,
        obj=proposal,
        before=before,
        after={
            **_proposal_snapshot(proposal),
            "revision": revision.number,
            "content_sha256": sha,
            "verdict": revision.verdict,
            "content": content,
        },
    )
    return revision


def submit_proposal(*, actor: Person, proposal: ProfileProposal) -> ProfileProposal:
    """The owner submits the current revision to compliance."""
    _require_owner(actor, proposal.account)
    with transaction.atomic():
        locked = (
            ProfileProposal.objects.select_for_update(of=("self",))
            .select_related("account", "current_revision")
            .get(pk=proposal.pk)
        )
        _submit(actor=actor, proposal=locked)
    return locked


def _submit(*, actor: Person, proposal: ProfileProposal) -> None:
    revision = proposal.current_revision
    if revision is None:
        raise ValidationFailed("Save a profile before submitting it.")
    if proposal.status == ProposalState.SUBMITTED:
        return  # a double click: already waiting
    if revision.verdict == "block":
        raise ValidationFailed(
            "The screening blocks this profile: change the highlighted words and save again "
            "before submitting.",
            code="screening_blocked",
        )
    before = _proposal_snapshot(proposal)
    _move(proposal, ProposalState.SUBMITTED)
    proposal.submitted_at = timezone.now()
    proposal.returned_comment = ""
    proposal.save()
    from vetline.profiles import approval

    approval.open_request(proposal=proposal, revision=revision, actor=actor)
    record(
        action="profiles.proposal.submit",
        actor=actor,
        obj=proposal,
        before=before,
        after={**_proposal_snapshot(proposal), "content_sha256": revision.content_sha256},
    )


def withdraw_proposal(*, actor: Person, proposal: ProfileProposal) -> ProfileProposal:
    """The owner takes a submitted profile back (it returns to draft)."""
    _require_owner(actor, proposal.account)
    with transaction.atomic():
        locked = (
            ProfileProposal.objects.select_for_update(of=("self",))
            .select_related("account", "current_revision", "approved_revision")
            .get(pk=proposal.pk)
        )
        if locked.status != ProposalState.SUBMITTED:
            raise Conflict("Only a profile waiting for compliance can be withdrawn.")
        assert locked.current_revision is not None
        from vetline.profiles import approval

        revision = locked.current_revision
        if not approval.withdraw(proposal=locked, revision=revision, actor=actor):
            record_withdrawal(proposal_id=locked.pk, revision_id=revision.pk, actor=actor)
        locked.refresh_from_db()
    return locked


def record_withdrawal(*, proposal_id: int, revision_id: int, actor: Person | None) -> None:
    """The request of a submitted revision was withdrawn (here or through the engine's own
    pages): the proposal is a draft again. Call inside the withdrawing transaction."""
    proposal = (
        ProfileProposal.objects.select_for_update(of=("self",))
        .select_related("current_revision", "approved_revision")
        .get(pk=proposal_id)
    )
    if proposal.current_revision_id != revision_id or proposal.status != ProposalState.SUBMITTED:
        return
    before = _proposal_snapshot(proposal)
    _move(proposal, ProposalState.DRAFT)
    proposal.save()
    record(
        action="profiles.proposal.withdraw",
        actor=actor,
        obj=proposal,
        before=before,
        after=_proposal_snapshot(proposal),
    )


def _locked_for_decision(proposal: ProfileProposal, revision_number: int) -> ProfileProposal:
    locked = (
        ProfileProposal.objects.select_for_update(of=("self",))
        .select_related("account", "current_revision", "approved_revision")
        .get(pk=proposal.pk)
    )
    revision = locked.current_revision
    if revision is None or revision.number != revision_number:
        raise Conflict(
            "The profile was edited since you opened it: review the current revision.",
            code="stale_revision",
        )
    if locked.status != ProposalState.SUBMITTED:
        raise Conflict(f"This profile is {locked.state.label.lower()}: there is nothing to decide.")
    return locked


def approve_proposal(
    *, actor: Person, proposal: ProfileProposal, revision_number: int, comment: str = ""
) -> ProfileProposal:
    """Compliance approves exactly the revision it reviewed (``revision_number``). Four-eyes:
    the revision's author and the account's owner never approve it."""
    require(actor, Perm.PROFILES_VET)
    comment = _clean_text(comment, field="comment", label="The comment", limit=MAX_COMMENT)
    with transaction.atomic():
        locked = _locked_for_decision(proposal, revision_number)
        revision = locked.current_revision
        assert revision is not None
        _four_eyes(actor, locked, revision)
        from vetline.profiles import approval

        approval.decide(
            proposal=locked, revision=revision, actor=actor, approve=True, comment=comment
        )
    locked.refresh_from_db()
    return locked


def reject_proposal(
    *, actor: Person, proposal: ProfileProposal, revision_number: int, comment: str
) -> ProfileProposal:
    """Compliance returns the revision to its author with a comment (required)."""
    require(actor, Perm.PROFILES_VET)
    comment = _clean_text(
        comment, field="comment", label="A comment", limit=MAX_COMMENT, required=True
    )
    with transaction.atomic():
        locked = _locked_for_decision(proposal, revision_number)
        revision = locked.current_revision
        assert revision is not None
        _four_eyes(actor, locked, revision)
        from vetline.profiles import approval

        approval.decide(
            proposal=locked, revision=revision, actor=actor, approve=False, comment=comment
        )
    locked.refresh_from_db()
    return locked


def _four_eyes(actor: Person, proposal: ProfileProposal, revision: ProfileRevision) -> None:
    if revision.created_by_id == actor.pk or proposal.account.owner_id == actor.pk:
        raise Forbidden(
            "Four-eyes: nobody approves or rejects their own profile.", code="four_eyes"
        )


def record_final_decision(
    *,
    proposal_id: int,
    revision_id: int,
    approved: bool,
    comment: str,
    actor: Person | None,
) -> None:
    """The approval engine reached a final decision on a revision (call inside its
    transaction). Approved: the revision becomes the recorded approved version and an open
    drift it now matches is resolved. Rejected: the proposal returns to its author."""
    proposal = (
        ProfileProposal.objects.select_for_update(of=("self",))
        .select_related("account", "current_revision", "approved_revision")
        .get(pk=proposal_id)
    )
    if proposal.current_revision_id != revision_id or proposal.status != ProposalState.SUBMITTED:
        return  # an edit superseded it in the meantime; the engine's request is closed too
    before = _proposal_snapshot(proposal)
    revision = proposal.current_revision
    assert revision is not None
    if approved:
        _move(proposal, ProposalState.APPROVED)
        proposal.approved_revision = revision
        proposal.approved_at = timezone.now()
        proposal.returned_comment = ""
    else:
        _move(proposal, ProposalState.REJECTED)
        proposal.returned_comment = comment
    proposal.save()
    record(
        action="profiles.proposal.approve" if approved else "profiles.proposal.reject",
        actor=actor,
        obj=proposal,
        before=before,
        after={
            **_proposal_snapshot(proposal),
            "content_sha256": revision.content_sha256,
            "comment": comment,
        },
    )
    if approved:
        _recheck_after_approval(proposal)


# --- Drift -------------------------------------------------------------------------------------


def approved_fields(revision: ProfileRevision) -> drift_logic.ProfileFields:
    return drift_logic.ProfileFields(
        display_name=revision.display_name,
        bio=revision.bio,
        title=revision.title,
        links=tuple(revision.links or ()),
        photo=revision.photo_sha256 or None,
    )


def _recheck_after_approval(proposal: ProfileProposal) -> None:
    """A new approved version may match the live profile that drifted from the old one."""
    drift = (
        ProfileDrift.objects.select_for_update(of=("self",))
        .filter(account=proposal.account, status__in=[s.value for s in DRIFT_ACTIVE])
        .select_related("latest_record")
        .first()
    )
    if drift is None or proposal.approved_revision is None:
        return
    record_ = drift.latest_record
    live = drift_logic.live_fields(
        bytes(record_.raw_payload), text=record_.text, attachments=record_.attachments or ()
    )
    if not drift_logic.compare(approved_fields(proposal.approved_revision), live):
        _close_drift(
            drift,
            actor=None,
            resolution="A newly approved version matches the live profile.",
        )


def _close_drift(drift: ProfileDrift, *, actor: Person | None, resolution: str) -> None:
    from vetline.connectors.actions import resolve_alerts

    check_drift_transition(drift.status, DriftState.RESOLVED)
    before = {"status": drift.status}
    drift.status = DriftState.RESOLVED.value
    drift.resolved_by = actor
    drift.resolved_at = timezone.now()
    drift.resolution = resolution
    drift.save()
    resolve_alerts(account=drift.account, codes=(ALERT_PROFILE_DRIFT,), reason=resolution[:200])
    record(
        action="profiles.drift.resolve",
        actor=actor,
        actor_name="" if actor else "drift detection",
        obj=drift,
        before=before,
        after={"status": drift.status, "resolution": resolution},
    )


@dataclass
class _BatchState:
    """What one detection batch knows about its snapshots' accounts, read once per batch: their
    proposals (with the approved revision) and their active drift items (locked)."""

    proposals: dict[int, ProfileProposal] = field(default_factory=dict)
    active: dict[int, ProfileDrift | None] = field(default_factory=dict)

    @classmethod
    def load(cls, account_ids: set[int]) -> _BatchState:
        state = cls()
        for p in ProfileProposal.objects.filter(account_id__in=account_ids).select_related(
            "approved_revision", "account", "account__owner"
        ):
            state.proposals[p.account_id] = p
        state.active = dict.fromkeys(account_ids)
        for d in ProfileDrift.objects.select_for_update(of=("self",)).filter(
            account_id__in=account_ids, status__in=[s.value for s in DRIFT_ACTIVE]
        ):
            state.active[d.account_id] = d
        return state


def _examine_snapshot(snapshot: ArchivedRecord, batch: _BatchState | None = None) -> str:
    """Compare one captured profile snapshot with its account's approved version (call inside
    the detection transaction). Returns what happened: no_approved, match, resolved, drift,
    updated, unchanged."""
    from vetline.connectors.actions import raise_alert
    from vetline.connectors.models import AlertSeverity

    if batch is None:
        batch = _BatchState.load({snapshot.account_id})
    proposal = batch.proposals.get(snapshot.account_id)
    if proposal is None or proposal.approved_revision is None:
        return "no_approved"
    approved = proposal.approved_revision
    live = drift_logic.live_fields(
        bytes(snapshot.raw_payload), text=snapshot.text, attachments=snapshot.attachments or ()
    )
    differences = drift_logic.compare(approved_fields(approved), live)
    active = batch.active.get(snapshot.account_id)
    if not differences:
        if active is None:
            return "match"
        batch.active[snapshot.account_id] = None
        _close_drift(
            active,
            actor=None,
            resolution=f"The live profile captured on {snapshot.captured_at:%Y-%m-%d %H:%M} UTC "
            "matches the approved version again.",
        )
        return "resolved"
    diff_dicts = [d.as_dict() for d in differences]
    if active is not None:
        if active.differences == diff_dicts:
            return "unchanged"
        before = {"differences": active.differences, "latest_record": active.latest_record_id}
        active.latest_record = snapshot
        active.differences = diff_dicts
        active.save(update_fields=["latest_record", "differences"])
        record(
            action="profiles.drift.update",
            actor=None,
            actor_name="drift detection",
            obj=active,
            before=before,
            after={"differences": diff_dicts, "latest_record": snapshot.pk},
        )
        return "updated"
    account = proposal.account
    drift = ProfileDrift.objects.create(
        account=account,
        approved_revision=approved,
        first_record=snapshot,
        latest_record=snapshot,
        differences=diff_dicts,
    )
    changed = ", ".join(d.label.lower() for d in differences)
    alert = raise_alert(
        code=ALERT_PROFILE_DRIFT,
        severity=AlertSeverity.WARNING,
        account=account,
        title=f"The live profile of {account} differs from the approved version",
        body=(
            f"The profile captured on {snapshot.captured_at:%Y-%m-%d %H:%M} UTC differs from "
            f"revision {approved.number} approved by compliance in: {changed}. "
            "Open the drift review item in Vetline to see the differences field by field."
        ),
        link=reverse("profiles:drift", args=[drift.pk]),
    )
    if alert is not None:
        drift.alert = alert
        drift.save(update_fields=["alert"])
    batch.active[account.pk] = drift
    record(
        action="profiles.drift.open",
        actor=None,
        actor_name="drift detection",
        obj=drift,
        after={
            "account_id": account.pk,
            "approved_revision": approved.number,
            "record_id": snapshot.pk,
            "differences": diff_dicts,
            "alert_id": alert.pk if alert else None,
        },
    )
    logger.info(
        "profiles.drift.open",
        extra={"account": account.pk, "record": snapshot.pk, "fields": len(diff_dicts)},
    )
    return "drift"


def detect_drift(*, batch_size: int = 200, max_batches: int = 50) -> dict[str, int]:
    """Follow newly archived profile snapshots from the cursor and compare each with its
    account's approved version (system; safe to re-run, and after a crash: the cursor advances
    in the same transaction as the drift items of the records it passes). Returns how many
    snapshots led to each outcome."""
    counts: dict[str, int] = {}
    for _ in range(max_batches):
        with transaction.atomic():
            cursor, _created = DriftCursor.objects.get_or_create(name=DRIFT_CURSOR)
            cursor = DriftCursor.objects.select_for_update(of=("self",)).get(pk=cursor.pk)
            newer = ArchivedRecord.objects.filter(pk__gt=cursor.last_record_id)
            high = newer.aggregate(high=Max("pk"))["high"]
            if high is None:
                return counts
            snapshots = list(
                newer.filter(pk__lte=high, kind=RecordKind.PROFILE_SNAPSHOT.value).order_by("pk")[
                    :batch_size
                ]
            )
            batch = _BatchState.load({r.account_id for r in snapshots})
            for snapshot in snapshots:
                outcome = _examine_snapshot(snapshot, batch)
                counts[outcome] = counts.get(outcome, 0) + 1
            full = len(snapshots) == batch_size
            cursor.last_record_id = snapshots[-1].pk if full else high
            cursor.updated_at = timezone.now()
            cursor.save(update_fields=["last_record_id", "updated_at"])
        if not full:
            break
    return counts


def acknowledge_drift(*, actor: Person, drift: ProfileDrift, comment: str = "") -> ProfileDrift:
    """Compliance has seen the drift and is dealing with it (e.g. asked the employee)."""
    require(actor, Perm.PROFILES_VET)
    comment = _clean_text(comment, field="comment", label="The comment", limit=MAX_COMMENT)
    with transaction.atomic():
        locked = ProfileDrift.objects.select_for_update(of=("self",)).get(pk=drift.pk)
        try:
            check_drift_transition(locked.status, DriftState.ACKNOWLEDGED)
        except IllegalTransition as exc:
            raise Conflict(f"This drift item is {locked.state.label.lower()}.") from exc
        locked.status = DriftState.ACKNOWLEDGED.value
        locked.acknowledged_by = actor
        locked.acknowledged_at = timezone.now()
        locked.save()
        record(
            action="profiles.drift.acknowledge",
            actor=actor,
            obj=locked,
            before={"status": DriftState.OPEN.value},
            after={"status": locked.status, "comment": comment},
        )
    return locked


def resolve_drift(*, actor: Person, drift: ProfileDrift, resolution: str) -> ProfileDrift:
    """Compliance closes the drift item with what was done about it (required)."""
    require(actor, Perm.PROFILES_VET)
    resolution = _clean_text(
        resolution, field="resolution", label="The resolution", limit=MAX_COMMENT, required=True
    )
    with transaction.atomic():
        locked = (
            ProfileDrift.objects.select_for_update(of=("self",))
            .select_related("account")
            .get(pk=drift.pk)
        )
        if locked.status == DriftState.RESOLVED:
            raise Conflict("This drift item is already resolved.")
        _close_drift(locked, actor=actor, resolution=resolution)
    return locked
