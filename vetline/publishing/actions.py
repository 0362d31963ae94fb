"""Writes of publishing: drafts and revisions, the screening gate, submission into the approval
engine (:mod:`vetline.publishing.approvals`), exactly-once publishing, the emergency freeze and
the rogue-post alarm.

Network calls never run inside a database transaction. Publishing writes its *intent* (the
publication in ``sending``) and commits it before calling the network, then records the result
in a second transaction; a publication found in ``sending`` after a crash is reconciled with
the network instead of being sent again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from vetline.accounts.models import AccountKind, SocialAccount
from vetline.accounts.selectors import can_act_on
from vetline.audit.actions import record
from vetline.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from vetline.identity.models import Person
from vetline.identity.permissions import require, require_any
from vetline.identity.roles import Capability, Perm
from vetline.publishing import approvals
from vetline.publishing.models import (
    ApprovalRequest,
    Draft,
    DraftKind,
    DraftMedia,
    DraftRevision,
    Freeze,
    HeldItem,
    HeldResolution,
    Publication,
    RequestStep,
    RevisionTarget,
    RogueCursor,
    RoguePost,
    RogueStatus,
    SubjectKind,
    Verdict,
)
from vetline.publishing.notifications import notify
from vetline.publishing.rules import (
    MAX_UPLOAD_BYTES,
    MediaInfo,
    ScheduleError,
    check_target,
    content_sha256,
    parse_schedule,
    sniff_mime,
)
from vetline.publishing.states import (
    DraftState,
    IllegalTransition,
    PublicationState,
    RequestState,
    SettleOutcome,
    check_draft,
    check_publication,
    settle_target,
)

logger = logging.getLogger(__name__)

SUBJECT_TYPE: Final = "draft_revision"
MAX_TEXT_CHARS: Final = 70_000
MAX_TARGETS: Final = 20
MAX_LINKS: Final = 20
MAX_MEDIA: Final = 10
MAX_ATTEMPTS: Final = 5
BACKOFF_BASE_SECONDS: Final = 30
#: A publication still ``sending`` after this long is presumed interrupted and reconciled.
SEND_STALE: Final = dt.timedelta(minutes=5)
ALERT_PUBLISH_FAILED: Final = "publish_failed"
ALERT_PUBLISH_UNKNOWN: Final = "publish_unknown"
MAX_REMOTE_ID_CHARS: Final = 300
MAX_URL_CHARS: Final = 1000
MAX_REASON_CHARS: Final = 2000
ALERT_ROGUE: Final = "rogue_post"
ROGUE_BATCH: Final = 500
PUBLISHED_KINDS: Final = frozenset({"post", "reply"})
WATCHED_KINDS: Final = frozenset({"post", "reply", "edit", "deletion"})

# --- Inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaUpload:
    content: bytes = field(repr=False)
    declared_type: str = ""
    alt_text: str = ""
    filename: str = ""


@dataclass(frozen=True)
class DraftInput:
    """What a publisher writes. ``variants`` maps an account id to its own text."""

    text: str
    account_ids: Sequence[int]
    variants: Mapping[int, str] = field(default_factory=dict)
    links: Sequence[str] = ()
    media: Sequence[MediaUpload] = ()
    reply_to_record_id: int | None = None
    scheduled_for: str | dt.datetime | None = None
    keep_media_from: int | None = None  # revision id whose attachments are kept as they are


# --- Access ------------------------------------------------------------------------------------


def sees_all_drafts(person: Person) -> bool:
    return any(
        person.can(p)
        for p in (Perm.SCREENING_OVERRIDE, Perm.PUBLISHING_FREEZE, Perm.APPROVAL_CHAINS_MANAGE)
    )


def may_publish_on(person: Person, account: SocialAccount, *, reply: bool = False) -> bool:
    if not account.is_active or account.kind != AccountKind.CORPORATE:
        return False
    if can_act_on(person, account, Capability.PUBLISH):
        return True
    return reply and can_act_on(person, account, Capability.REPLY)


def visible_drafts(person: Person) -> Any:
    qs = Draft.objects.all()
    if not person.is_authenticated or not person.is_active:
        return qs.none()
    if sees_all_drafts(person):
        return qs
    from vetline.accounts.models import Assignment

    assigned = Assignment.objects.filter(person=person).values("account_id")
    reviewed = ApprovalRequest.objects.filter(
        subject_type=SUBJECT_TYPE, approvals__approver=person
    ).values("subject_id")
    return qs.filter(
        Q(author=person)
        | Q(revisions__targets__account_id__in=assigned)
        | Q(revisions__id__in=reviewed)
    ).distinct()


def get_draft(person: Person, draft_id: int) -> Draft:
    draft: Draft | None = (
        visible_drafts(person).filter(pk=draft_id).select_related("author").first()
    )
    if draft is None:
        raise NotFound("No such draft.")
    return draft


def _locked_draft(actor: Person, draft_id: int) -> Draft:
    get_draft(actor, draft_id)
    draft: Draft = Draft.objects.select_for_update().get(pk=draft_id)
    return draft


# --- Drafts and revisions ------------------------------------------------------------------------


def _draft_transition(draft: Draft, target: DraftState, *, actor: Person | None, why: str) -> None:
    try:
        check_draft(draft.state, target)
    except IllegalTransition as exc:
        raise Conflict(
            f"The draft is {draft.draft_state.label.lower()}; it cannot become "
            f"{target.label.lower()}."
        ) from exc
    before = draft.state
    draft.state = target.value
    draft.updated_at = timezone.now()
    draft.save(update_fields=["state", "updated_at"])
    record(
        action=f"publishing.draft.{target.value}",
        actor=actor,
        actor_name="" if actor else "publishing",
        obj=draft,
        before={"state": before},
        after={"state": target.value, "why": why[:500]},
    )


def _check_media(uploads: Sequence[MediaUpload]) -> list[tuple[MediaUpload, str]]:
    if len(uploads) > MAX_MEDIA:
        raise ValidationFailed(f"At most {MAX_MEDIA} attachments.", field="media")
    out = []
    for i, m in enumerate(uploads, start=1):
        if not m.content:
            raise ValidationFailed(f"Attachment {i} is empty.", field="media")
        if len(m.content) > MAX_UPLOAD_BYTES:
            raise ValidationFailed(
                f"Attachment {i} is {len(m.content) / 1048576:.1f} MB; at most "
                f"{MAX_UPLOAD_BYTES // 1048576} MB.",
                field="media",
            )
        mime = sniff_mime(m.content)
        if mime is None:
            raise ValidationFailed(
                f"Attachment {i} ({m.filename or m.declared_type or 'no name'}) is not a "
                "supported image or video (JPEG, PNG, GIF, WebP or MP4).",
                field="media",
            )
        if len(m.alt_text) > 1000:
            raise ValidationFailed(f"Attachment {i}: the alt text is too long.", field="media")
        out.append((m, mime))
    return out


def _check_links(links: Sequence[str]) -> list[str]:
    from urllib.parse import urlsplit

    clean = []
    if len(links) > MAX_LINKS:
        raise ValidationFailed(f"At most {MAX_LINKS} links.", field="links")
    for link in links:
        link = link.strip()
        if not link:
            continue
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(link) > 2000:
            raise ValidationFailed(f"{link[:80]!r} is not an http(s) link.", field="links")
        clean.append(link)
    return clean


def _resolve_targets(actor: Person, data: DraftInput, *, reply: bool) -> list[SocialAccount]:
    ids = list(dict.fromkeys(int(i) for i in data.account_ids))
    if not ids:
        raise ValidationFailed("Choose at least one account to publish on.", field="accounts")
    if len(ids) > MAX_TARGETS:
        raise ValidationFailed(f"At most {MAX_TARGETS} accounts.", field="accounts")
    accounts = {a.pk: a for a in SocialAccount.objects.filter(pk__in=ids)}
    out = []
    for pk in ids:
        account = accounts.get(pk)
        if account is None or not may_publish_on(actor, account, reply=reply):
            raise ValidationFailed(
                "You are not an authorized publisher of one of the chosen accounts.",
                field="accounts",
                code="not_authorized_publisher",
            )
        out.append(account)
    for pk in data.variants:
        if pk not in accounts:
            raise ValidationFailed("A variant is for an account that is not a target.")
    return out


def _reply_parent(data: DraftInput, targets: Sequence[SocialAccount]) -> tuple[int, str] | None:
    if data.reply_to_record_id is None:
        return None
    from vetline.archive.models import ArchivedRecord

    rec = ArchivedRecord.objects.filter(pk=data.reply_to_record_id).first()
    if rec is None or rec.account_id not in {a.pk for a in targets}:
        raise ValidationFailed(
            "The message replied to is not a captured message of the chosen account.",
            field="reply_to_record_id",
        )
    if len(targets) != 1:
        raise ValidationFailed("A reply goes to exactly one account.", field="accounts")
    return rec.pk, rec.remote_id


def _screen(text: str, *, reply: bool) -> dict[str, Any]:
    from vetline.policy.engine import Scope
    from vetline.policy.selectors import screen_text

    scope = Scope.REPLY if reply else Scope.OUTBOUND_POST
    try:
        result = screen_text(text=text, scope=scope)
    except NotFound:
        return {"verdict": "pass", "hits": [], "policy": None, "note": "no policy installed"}
    data = result.as_dict()
    hits = [h for h in data["hits"]]
    return {"verdict": data["verdict"], "hits": hits, "policy": data["policy"]}


_VERDICT_ORDER: Final = ["pass", "info", "warn", "escalate", "block", "error"]


def preview_screening(*, actor: Person, text: str, reply: bool = False) -> dict[str, Any]:
    """Screen unsaved text for live highlights while composing (nothing is written)."""
    require_any(actor, Perm.PUBLISH, Perm.REPLY)
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationFailed("The text is too long.", field="text")
    return _screen(text, reply=reply)


def _revision_content(
    data: DraftInput, text: str, targets: Sequence[SocialAccount], media: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    return {
        "text": text,
        "links": list(data.links),
        "targets": [
            {"account": a.pk, "text": data.variants.get(a.pk, "").strip()}
            for a in sorted(targets, key=lambda a: a.pk)
        ],
        "media": [{"sha256": sha, "alt": alt} for sha, alt in media],
        "reply_to": data.reply_to_record_id,
    }


def _write_revision(*, actor: Person, draft: Draft, data: DraftInput) -> DraftRevision:
    reply = draft.kind == DraftKind.REPLY
    text = (data.text or "").strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationFailed("The text is too long.", field="text")
    targets = _resolve_targets(actor, data, reply=reply)
    links = _check_links(data.links)
    uploads = _check_media(data.media)
    kept: list[DraftMedia] = []
    if data.keep_media_from is not None and not uploads:
        kept = list(
            DraftMedia.objects.filter(revision_id=data.keep_media_from, revision__draft=draft)
        )
    media_rows = [
        (hashlib.sha256(m.content).hexdigest(), mime, len(m.content), m.alt_text, m.content)
        for m, mime in uploads
    ] + [(k.sha256, k.mime_type, k.size_bytes, k.alt_text, bytes(k.content)) for k in kept]
    infos = [MediaInfo(mime, size) for _, mime, size, _, _ in media_rows]
    problems: list[str] = []
    for account in targets:
        variant = data.variants.get(account.pk, "").strip()
        effective = variant or text
        if not effective and not media_rows:
            problems.append(f"{account}: there is nothing to publish.")
        problems += check_target(
            network=account.network, label=str(account), text=effective, media=infos
        )
    if problems:
        raise ValidationFailed(" ".join(problems), field="text", code="network_limits")
    if draft.kind == DraftKind.REPLY and not draft.reply_to_remote_id:
        raise ValidationFailed("A reply needs the message it answers.")
    screening = []
    worst = "pass"
    for account in targets:
        effective = data.variants.get(account.pk, "").strip() or text
        result = _screen(effective, reply=reply)
        screening.append({"account_id": account.pk, "text": effective, **result})
        if _VERDICT_ORDER.index(result["verdict"]) > _VERDICT_ORDER.index(worst):
            worst = result["verdict"]
    content = _revision_content(
        data, text, targets, [(sha, alt) for sha, _, _, alt, _ in media_rows]
    )
    content["links"] = links
    number = (draft.revisions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    rev = DraftRevision.objects.create(
        draft=draft,
        number=number,
        author=actor,
        text=text,
        links=links,
        content_sha256=content_sha256(content),
        verdict=worst,
        screening=screening,
    )
    RevisionTarget.objects.bulk_create(
        [
            RevisionTarget(
                revision=rev, account=a, variant_text=data.variants.get(a.pk, "").strip()
            )
            for a in targets
        ]
    )
    DraftMedia.objects.bulk_create(
        [
            DraftMedia(
                revision=rev,
                position=i,
                sha256=sha,
                mime_type=mime,
                size_bytes=size,
                alt_text=alt,
                content=content_bytes,
            )
            for i, (sha, mime, size, alt, content_bytes) in enumerate(media_rows, start=1)
        ]
    )
    record(
        action="publishing.revision.create",
        actor=actor,
        obj=rev,
        after={
            "draft_id": draft.pk,
            "number": number,
            "content_sha256": rev.content_sha256,
            "verdict": worst,
            "targets": [a.pk for a in targets],
            "media": [sha for sha, *_ in media_rows],
        },
    )
    return rev


def create_draft(*, actor: Person, data: DraftInput) -> Draft:
    """A publisher starts a draft for accounts they are authorized to publish on. It is saved
    as revision 1 and screened at once."""
    require_any(actor, Perm.PUBLISH, Perm.REPLY)
    try:
        when = parse_schedule(data.scheduled_for, now=timezone.now())
    except ScheduleError as exc:
        raise ValidationFailed(str(exc), field="scheduled_for") from exc
    with transaction.atomic():
        targets = _resolve_targets(actor, data, reply=data.reply_to_record_id is not None)
        parent = _reply_parent(data, targets)
        draft = Draft.objects.create(
            kind=DraftKind.REPLY if parent else DraftKind.POST,
            author=actor,
            reply_to_record_id=parent[0] if parent else None,
            reply_to_remote_id=parent[1] if parent else "",
            scheduled_for=when,
        )
        record(
            action="publishing.draft.create",
            actor=actor,
            obj=draft,
            after={"kind": draft.kind, "scheduled_for": when, "reply_to": draft.reply_to_record_id},
        )
        _write_revision(actor=actor, draft=draft, data=data)
    return draft


def _cancel_unsent(draft: Draft, *, actor: Person | None, why: str) -> int:
    n = 0
    for pub in Publication.objects.select_for_update().filter(
        draft=draft,
        state__in=[
            PublicationState.QUEUED.value,
            PublicationState.FROZEN.value,
            PublicationState.FAILED.value,
        ],
    ):
        _pub_transition(pub, PublicationState.CANCELLED, actor=actor, why=why)
        HeldItem.objects.filter(publication=pub, resolution=HeldResolution.PENDING).update(
            resolution=HeldResolution.WITHDRAWN, resolved_by=actor, resolved_at=timezone.now()
        )
        n += 1
    return n


def save_draft(*, actor: Person, draft_id: int, data: DraftInput) -> DraftRevision:
    """Save an edit as a new revision. Any approval of an earlier revision is void: its chain
    is reset (the request superseded) and anything queued from it is cancelled."""
    with transaction.atomic():
        draft = _locked_draft(actor, draft_id)
        if draft.author_id != actor.pk:
            raise Forbidden("Only the draft's author edits it.")
        if not draft.draft_state.editable:
            raise Conflict(f"The draft is {draft.draft_state.label.lower()}; it cannot be edited.")
        if Publication.objects.filter(draft=draft, state=PublicationState.SENDING).exists():
            raise Conflict("The draft is being published right now.")
        try:
            when = parse_schedule(data.scheduled_for, now=timezone.now())
        except ScheduleError as exc:
            raise ValidationFailed(str(exc), field="scheduled_for") from exc
        if draft.kind == DraftKind.REPLY:
            data = DraftInput(
                text=data.text,
                account_ids=data.account_ids,
                variants=data.variants,
                links=data.links,
                media=data.media,
                reply_to_record_id=draft.reply_to_record_id,
                scheduled_for=data.scheduled_for,
                keep_media_from=data.keep_media_from,
            )
        rev = _write_revision(actor=actor, draft=draft, data=data)
        approvals.supersede_requests(
            subject_type=SUBJECT_TYPE,
            group=f"draft:{draft.pk}",
            reason=f"edited: revision {rev.number}",
            actor=actor,
        )
        _cancel_unsent(draft, actor=actor, why=f"edited: revision {rev.number}")
        if draft.scheduled_for != when:
            draft.scheduled_for = when
            draft.save(update_fields=["scheduled_for"])
        if draft.state != DraftState.EDITING:
            _draft_transition(
                draft, DraftState.EDITING, actor=actor, why=f"edited: revision {rev.number}"
            )
        else:
            draft.updated_at = timezone.now()
            draft.save(update_fields=["updated_at"])
    return rev


def override_block(*, actor: Person, revision_id: int, reason: str) -> DraftRevision:
    """A compliance officer lets a blocked revision go to approval, with a written reason. The
    override is audited, shown to every approver, and adds a compliance step to the chain."""
    require(actor, Perm.SCREENING_OVERRIDE)
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise ValidationFailed(
            "Write the reason for the override (10 characters at least).", field="reason"
        )
    if len(reason) > 5000:
        raise ValidationFailed("The reason is too long.", field="reason")
    with transaction.atomic():
        rev = DraftRevision.objects.select_for_update().filter(pk=revision_id).first()
        if rev is None or not visible_drafts(actor).filter(pk=rev.draft_id).exists():
            raise NotFound("No such revision.")
        if rev.verdict != Verdict.BLOCK:
            raise Conflict("This revision is not blocked.")
        if rev.override_by_id is not None:
            raise Conflict("This revision has already been overridden.")
        if rev.draft.author_id == actor.pk:
            raise Forbidden("Nobody overrides the screening of their own draft.")
        rev.override_reason = reason
        rev.override_by = actor
        rev.override_at = timezone.now()
        rev.save(update_fields=["override_reason", "override_by", "override_at"])
        record(
            action="publishing.revision.override",
            actor=actor,
            obj=rev,
            before={"verdict": rev.verdict},
            after={"override_reason": reason, "content_sha256": rev.content_sha256},
        )
        notify(
            people=[rev.draft.author],
            title=f"Screening overridden on draft {rev.draft_id}",
            body=f"{actor}: {reason}",
            url=reverse("publishing:draft", args=[rev.draft_id]),
        )
    return rev


def _latest(draft: Draft) -> DraftRevision:
    rev = draft.revisions.order_by("-number").first()
    if rev is None:  # pragma: no cover - a draft is created with revision 1
        raise Conflict("The draft has no revision.")
    return rev


def _subject(draft: Draft, rev: DraftRevision) -> approvals.Subject:
    accounts = [t.account for t in rev.targets.select_related("account")]
    preview = (rev.text or "(media only)")[:80]
    return approvals.Subject(
        type=SUBJECT_TYPE,
        id=rev.pk,
        group=f"draft:{draft.pk}",
        sha256=rev.content_sha256,
        kind=SubjectKind.REPLY if draft.kind == DraftKind.REPLY else SubjectKind.POST,
        title=f"{'Reply' if draft.kind == DraftKind.REPLY else 'Post'} on "
        f"{', '.join(str(a) for a in accounts)}: {preview}",
        author=draft.author,
        accounts=accounts,
    )


def submit_draft(*, actor: Person, draft_id: int, revision_sha256: str = "") -> Draft:
    """The author submits the latest revision for approval. A blocked revision cannot be
    submitted (unless compliance overrode it); an escalated one gets a compliance step; a reply
    on an account whose chain lets replies through is queued at once."""
    with transaction.atomic():
        draft = _locked_draft(actor, draft_id)
        if draft.author_id != actor.pk:
            raise Forbidden("Only the draft's author submits it.")
        rev = _latest(draft)
        if revision_sha256 and revision_sha256 != rev.content_sha256:
            raise Conflict("The draft changed since you looked at it; review it again.")
        if rev.blocked:
            raise ValidationFailed(
                "Screening blocks this text. Fix what is highlighted, or ask a compliance "
                "officer to override it with a written reason.",
                code="blocked",
            )
        if rev.verdict == Verdict.ERROR:
            raise ValidationFailed("Screening failed on this revision; save it again.")
        for t in rev.targets.select_related("account"):
            if not may_publish_on(actor, t.account, reply=draft.kind == DraftKind.REPLY):
                raise Forbidden(f"You are no longer an authorized publisher of {t.account}.")
        subject = _subject(draft, rev)
        plan = approvals.resolve_chain(kind=subject.kind, accounts=subject.accounts)
        if not plan.requires_approval and not rev.escalated:
            _draft_transition(draft, DraftState.IN_REVIEW, actor=actor, why="submitted")
            _draft_transition(
                draft,
                DraftState.APPROVED,
                actor=actor,
                why="replies on this account need no approval",
            )
            _queue(draft, rev, None)
            return draft
        notes = ""
        if rev.override_by_id is not None:
            notes = (
                f"Screening blocked this text; {rev.override_by} overrode it on "
                f"{rev.override_at:%Y-%m-%d %H:%M} UTC: {rev.override_reason}"
            )
        _draft_transition(draft, DraftState.IN_REVIEW, actor=actor, why=f"revision {rev.number}")
        approvals.open_request(
            actor=actor, subject=subject, escalate=rev.escalated, notes_for_approvers=notes
        )
    return draft


def withdraw_draft(*, actor: Person, draft_id: int, reason: str = "") -> Draft:
    """The author withdraws the draft: its request is withdrawn and nothing queued goes out."""
    with transaction.atomic():
        draft = _locked_draft(actor, draft_id)
        if draft.author_id != actor.pk:
            raise Forbidden("Only the draft's author withdraws it.")
        if Publication.objects.filter(draft=draft, state=PublicationState.SENDING).exists():
            raise Conflict("The draft is being published right now.")
        for req in ApprovalRequest.objects.select_for_update().filter(
            subject_type=SUBJECT_TYPE,
            subject_group=f"draft:{draft.pk}",
            state__in=[RequestState.PENDING.value, RequestState.APPROVED.value],
        ):
            approvals.withdraw_request(actor=actor, request_id=req.pk, reason=reason)
        draft.refresh_from_db()
        _cancel_unsent(draft, actor=actor, why="withdrawn")
        if draft.state != DraftState.WITHDRAWN:
            _draft_transition(draft, DraftState.WITHDRAWN, actor=actor, why=reason or "withdrawn")
    return draft


def reschedule_draft(
    *, actor: Person, draft_id: int, scheduled_for: str | dt.datetime | None
) -> Draft:
    """Change when an approved post goes out (the approval covers the content, not the time)."""
    try:
        when = parse_schedule(scheduled_for, now=timezone.now())
    except ScheduleError as exc:
        raise ValidationFailed(str(exc), field="scheduled_for") from exc
    with transaction.atomic():
        draft = _locked_draft(actor, draft_id)
        if draft.author_id != actor.pk:
            raise Forbidden("Only the draft's author reschedules it.")
        if draft.state in (DraftState.PUBLISHED, DraftState.WITHDRAWN, DraftState.PUBLISHING):
            raise Conflict(f"The draft is {draft.draft_state.label.lower()}.")
        before = draft.scheduled_for
        draft.scheduled_for = when
        draft.save(update_fields=["scheduled_for"])
        record(
            action="publishing.draft.reschedule",
            actor=actor,
            obj=draft,
            before={"scheduled_for": before},
            after={"scheduled_for": when},
        )
        for pub in Publication.objects.select_for_update().filter(
            draft=draft, state=PublicationState.QUEUED
        ):
            pub.scheduled_for = when or timezone.now()
            pub.save(update_fields=["scheduled_for"])
            _enqueue(pub)
    return draft


# --- The approval engine's subject: draft revisions ----------------------------------------------


class DraftRevisionSubjects:
    """Plugs draft revisions into the approval engine."""

    def current_sha256(self, subject_id: int) -> str | None:
        rev = DraftRevision.objects.filter(pk=subject_id).select_related("draft").first()
        if rev is None:
            return None
        latest = _latest(rev.draft)
        # Only the latest revision of a draft can be approved.
        return rev.content_sha256 if latest.pk == rev.pk else None

    def may_decide(self, person: Person, request: ApprovalRequest, step: RequestStep) -> bool:
        if step.approver_ids:
            return True
        if step.role == "approver":
            accounts = list(request.accounts.all())
            return bool(accounts) and all(
                can_act_on(person, a, Capability.APPROVE) for a in accounts
            )
        return True

    def url(self, request: ApprovalRequest) -> str:
        return reverse("publishing:review", args=[request.pk])

    def on_closed(self, request: ApprovalRequest, *, actor: Person | None, comment: str) -> None:
        rev = DraftRevision.objects.select_related("draft").get(pk=request.subject_id)
        draft = Draft.objects.select_for_update().get(pk=rev.draft_id)
        state = RequestState(request.state)
        if state == RequestState.APPROVED:
            if draft.state == DraftState.IN_REVIEW:
                _draft_transition(draft, DraftState.APPROVED, actor=actor, why="approved")
                _queue(draft, rev, request)
        elif state == RequestState.REJECTED:
            draft.last_error = ""
            draft.save(update_fields=["last_error"])
            if draft.state == DraftState.IN_REVIEW:
                _draft_transition(draft, DraftState.REJECTED, actor=actor, why=comment)
        elif state == RequestState.EXPIRED:
            _cancel_unsent(draft, actor=None, why="the approval expired")
            if draft.state in (DraftState.APPROVED, DraftState.SCHEDULED, DraftState.FROZEN):
                _draft_transition(
                    draft, DraftState.EDITING, actor=None, why="the approval expired; resubmit"
                )


approvals.register_subject(SUBJECT_TYPE, DraftRevisionSubjects())


# --- Queueing and freeze -------------------------------------------------------------------------


def active_freezes() -> list[Freeze]:
    return list(Freeze.objects.filter(lifted_at__isnull=True).prefetch_related("accounts"))


def freeze_for(account_id: int) -> Freeze | None:
    return (
        Freeze.objects.filter(lifted_at__isnull=True)
        .filter(Q(all_accounts=True) | Q(accounts__id=account_id))
        .order_by("started_at")
        .first()
    )


def _pub_transition(
    pub: Publication, target: PublicationState, *, actor: Person | None, why: str, **changes: Any
) -> None:
    try:
        check_publication(pub.state, target)
    except IllegalTransition as exc:
        raise Conflict(
            f"The publication is {pub.publication_state.label.lower()}; it cannot become "
            f"{target.label.lower()}."
        ) from exc
    before = {"state": pub.state, "attempts": pub.attempts}
    pub.state = target.value
    for k, v in changes.items():
        setattr(pub, k, v)
    pub.save()
    record(
        action=f"publishing.publication.{target.value}",
        actor=actor,
        actor_name="" if actor else "publishing",
        obj=pub,
        before=before,
        after={
            "state": pub.state,
            "attempts": pub.attempts,
            "remote_id": pub.remote_id,
            "why": why[:500],
        },
    )


def _enqueue(pub: Publication) -> None:
    pub_id, when = pub.pk, pub.scheduled_for

    def go() -> None:
        from vetline.publishing.tasks import publish_task

        if when <= timezone.now():
            publish_task(pub_id)
        else:
            publish_task.schedule((pub_id,), eta=when)

    transaction.on_commit(go)


def _queue(draft: Draft, rev: DraftRevision, request: ApprovalRequest | None) -> None:
    """Create one publication per target (call inside the approving transaction)."""
    when = draft.scheduled_for or timezone.now()
    for target in rev.targets.select_related("account"):
        text = target.effective_text
        pub = Publication.objects.create(
            draft=draft,
            revision=rev,
            account=target.account,
            request=request,
            text=text,
            content_sha256=rev.content_sha256,
            scheduled_for=when,
        )
        record(
            action="publishing.publication.create",
            actor=None,
            actor_name="publishing",
            obj=pub,
            after={"state": pub.state, "scheduled_for": when, "request": request and request.pk},
        )
        freeze = freeze_for(target.account_id)
        if freeze is not None:
            _hold(pub, freeze)
        else:
            _enqueue(pub)
    _draft_transition(draft, DraftState.SCHEDULED, actor=None, why="queued for publishing")
    if Publication.objects.filter(draft=draft, state=PublicationState.FROZEN).exists():
        _draft_transition(draft, DraftState.FROZEN, actor=None, why="a freeze is in force")


def _hold(pub: Publication, freeze: Freeze) -> None:
    _pub_transition(pub, PublicationState.FROZEN, actor=None, why=f"freeze {freeze.pk}")
    HeldItem.objects.get_or_create(freeze=freeze, publication=pub)


def start_freeze(*, actor: Person, reason: str, account_ids: Sequence[int] = ()) -> Freeze:
    """Emergency freeze: every queued publication on the chosen accounts (all when none are
    chosen) is held; nothing publishes there until the freeze is lifted."""
    require(actor, Perm.PUBLISHING_FREEZE)
    reason = (reason or "").strip()
    if len(reason) < 5 or len(reason) > 2000:
        raise ValidationFailed(
            "Give the reason for the freeze (5 to 2,000 characters).", field="reason"
        )
    ids = list(dict.fromkeys(int(i) for i in account_ids))
    accounts = list(SocialAccount.objects.filter(pk__in=ids))
    if len(accounts) != len(ids):
        raise ValidationFailed("An account chosen does not exist.", field="accounts")
    with transaction.atomic():
        freeze = Freeze.objects.create(reason=reason, all_accounts=not ids, started_by=actor)
        freeze.accounts.set(accounts)
        held = 0
        pubs = Publication.objects.select_for_update().filter(state=PublicationState.QUEUED)
        if ids:
            pubs = pubs.filter(account_id__in=ids)
        drafts = set()
        for pub in pubs:
            _hold(pub, freeze)
            drafts.add(pub.draft_id)
            held += 1
        # Items an earlier freeze still holds are held by this one too, so lifting the earlier
        # one alone never lets them out.
        already = Publication.objects.select_for_update().filter(state=PublicationState.FROZEN)
        if ids:
            already = already.filter(account_id__in=ids)
        for pub in already:
            if HeldItem.objects.get_or_create(freeze=freeze, publication=pub)[1]:
                held += 1
        for draft in Draft.objects.select_for_update().filter(pk__in=drafts):
            if draft.state in (DraftState.SCHEDULED, DraftState.APPROVED):
                _draft_transition(draft, DraftState.FROZEN, actor=actor, why=f"freeze {freeze.pk}")
        record(
            action="publishing.freeze.start",
            actor=actor,
            obj=freeze,
            after={"reason": reason, "accounts": ids or "all", "held": held},
        )
        scope_text = "all accounts" if not ids else f"{len(ids)} accounts"
        _notify_freeze(
            freeze,
            title=f"Publishing frozen: {reason[:120]}",
            body=(
                f"{actor} froze publishing on {scope_text}. {held} queued items are held; "
                "each must be re-confirmed or withdrawn before it can go out."
            ),
        )
    return freeze


def _notify_freeze(freeze: Freeze, *, title: str, body: str) -> None:
    from vetline.accounts.models import Assignment
    from vetline.identity.models import RoleGrant

    publishers = Person.objects.filter(
        is_active=True,
        pk__in=Assignment.objects.filter(capability=Capability.PUBLISH.value).values("person_id"),
    )
    officers = Person.objects.filter(
        is_active=True,
        pk__in=RoleGrant.objects.filter(role="compliance_officer").values("person_id"),
    )
    notify(
        people=[*publishers, *officers],
        title=title,
        body=body,
        url=reverse("publishing:freeze", args=[freeze.pk]),
    )


def resolve_held(
    *, actor: Person, freeze_id: int, publication_id: int, decision: HeldResolution | str
) -> HeldItem:
    """Re-confirm or withdraw one item a freeze holds (before or after the lift). A re-confirmed
    item goes back to the queue only once no freeze applies to its account."""
    require(actor, Perm.PUBLISHING_FREEZE)
    try:
        decision = HeldResolution(decision)
    except ValueError:
        raise ValidationFailed("Re-confirm or withdraw.", field="decision") from None
    if decision == HeldResolution.PENDING:
        raise ValidationFailed("Re-confirm or withdraw.", field="decision")
    with transaction.atomic():
        item = (
            HeldItem.objects.select_for_update()
            .filter(freeze_id=freeze_id, publication_id=publication_id)
            .first()
        )
        if item is None:
            raise NotFound("No such held item.")
        if item.resolution != HeldResolution.PENDING:
            raise Conflict("This item has already been decided.")
        pub = Publication.objects.select_for_update().get(pk=publication_id)
        item.resolution = decision.value
        item.resolved_by = actor
        item.resolved_at = timezone.now()
        item.save(update_fields=["resolution", "resolved_by", "resolved_at"])
        record(
            action=f"publishing.freeze.{decision.value}",
            actor=actor,
            obj=item.freeze,
            after={"publication_id": pub.pk},
        )
        draft = Draft.objects.select_for_update().get(pk=pub.draft_id)
        if decision == HeldResolution.WITHDRAWN:
            if pub.state == PublicationState.FROZEN:
                _pub_transition(pub, PublicationState.CANCELLED, actor=actor, why="withdrawn")
            if not Publication.objects.filter(
                draft=draft,
                state__in=[PublicationState.QUEUED, PublicationState.FROZEN],
            ).exists() and draft.state in (DraftState.FROZEN, DraftState.SCHEDULED):
                published = Publication.objects.filter(
                    draft=draft, state=PublicationState.PUBLISHED
                ).exists()
                if not published:
                    _draft_transition(
                        draft, DraftState.WITHDRAWN, actor=actor, why="withdrawn during a freeze"
                    )
            notify(
                people=[draft.author],
                title=f"Withdrawn during the freeze: draft {draft.pk}",
                url=reverse("publishing:draft", args=[draft.pk]),
            )
        else:
            _release_if_clear(pub, draft, actor=actor)
    return item


def _release_if_clear(pub: Publication, draft: Draft, *, actor: Person | None) -> None:
    if pub.state != PublicationState.FROZEN:
        return
    if freeze_for(pub.account_id) is not None:
        return
    if HeldItem.objects.filter(publication=pub, resolution=HeldResolution.PENDING).exists():
        return
    if HeldItem.objects.filter(publication=pub, resolution=HeldResolution.WITHDRAWN).exists():
        return
    _pub_transition(pub, PublicationState.QUEUED, actor=actor, why="re-confirmed after a freeze")
    if pub.scheduled_for < timezone.now():
        pub.scheduled_for = timezone.now()
        pub.save(update_fields=["scheduled_for"])
    if (
        draft.state == DraftState.FROZEN
        and not Publication.objects.filter(draft=draft, state=PublicationState.FROZEN).exists()
    ):
        _draft_transition(draft, DraftState.SCHEDULED, actor=actor, why="re-confirmed")
    _enqueue(pub)


def lift_freeze(*, actor: Person, freeze_id: int, reason: str = "") -> Freeze:
    """Lift a freeze. Every held item must first be re-confirmed or withdrawn."""
    require(actor, Perm.PUBLISHING_FREEZE)
    with transaction.atomic():
        freeze = Freeze.objects.select_for_update().filter(pk=freeze_id).first()
        if freeze is None:
            raise NotFound("No such freeze.")
        if freeze.lifted_at is not None:
            raise Conflict("This freeze has already been lifted.")
        pending = freeze.held.filter(resolution=HeldResolution.PENDING).count()
        if pending:
            raise Conflict(
                f"{pending} held items still need a decision: re-confirm or withdraw each one "
                "before lifting the freeze.",
                code="held_items_pending",
            )
        freeze.lifted_at = timezone.now()
        freeze.lifted_by = actor
        freeze.lift_reason = (reason or "").strip()[:2000]
        freeze.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        record(
            action="publishing.freeze.lift",
            actor=actor,
            obj=freeze,
            after={"reason": freeze.lift_reason},
        )
        for item in freeze.held.filter(resolution=HeldResolution.RECONFIRMED).select_related(
            "publication"
        ):
            pub = Publication.objects.select_for_update().get(pk=item.publication_id)
            draft = Draft.objects.select_for_update().get(pk=pub.draft_id)
            _release_if_clear(pub, draft, actor=actor)
        _notify_freeze(freeze, title="Publishing freeze lifted", body=freeze.lift_reason)
    return freeze


# --- Publishing, exactly once --------------------------------------------------------------------


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=BACKOFF_BASE_SECONDS * (2 ** max(0, attempts - 1)))


def _fail(pub_id: int, message: str, *, retry: bool, retry_after: float | None = None) -> str:
    """Record a failed send that certainly did not publish: back to the queue with backoff, or
    failed for good (visible on the draft, alerting its author and the account's people)."""
    with transaction.atomic():
        pub = Publication.objects.select_for_update().select_related("account").get(pk=pub_id)
        if pub.state != PublicationState.SENDING:
            return pub.state
        if retry and pub.attempts < MAX_ATTEMPTS:
            delay = _backoff(pub.attempts)
            if retry_after is not None:
                delay = max(delay, dt.timedelta(seconds=retry_after))
            _pub_transition(
                pub,
                PublicationState.QUEUED,
                actor=None,
                why=f"attempt {pub.attempts} failed: {message}",
                last_error=message[:1000],
                next_attempt_at=timezone.now() + delay,
                intent_at=None,
                intent_token="",
            )
            return "retrying"
        _fail_locked(pub, message)
    return "failed"


def _fail_locked(pub: Publication, message: str) -> None:
    """Fail a locked publication for good (call inside a transaction)."""
    _pub_transition(
        pub, PublicationState.FAILED, actor=None, why=message, last_error=message[:1000]
    )
    draft = Draft.objects.select_for_update().get(pk=pub.draft_id)
    draft.last_error = f"{pub.account}: {message}"[:1000]
    draft.save(update_fields=["last_error"])
    if draft.state == DraftState.SCHEDULED:
        _draft_transition(draft, DraftState.PUBLISHING, actor=None, why="sending")
    if draft.state == DraftState.PUBLISHING:
        _draft_transition(draft, DraftState.FAILED, actor=None, why=message)
    _alert_failure(pub, draft, message)


def _alert_failure(pub: Publication, draft: Draft, message: str) -> None:
    from vetline.connectors.actions import raise_alert
    from vetline.connectors.models import AlertRecipient, AlertSeverity

    alert = raise_alert(
        code=f"{ALERT_PUBLISH_FAILED}:{pub.pk}",
        severity=AlertSeverity.WARNING,
        account=pub.account,
        title=f"Publishing to {pub.account} failed",
        body=f"Draft {draft.pk} could not be published: {message}",
    )
    if alert is not None:
        AlertRecipient.objects.get_or_create(alert=alert, person=draft.author)
    notify(
        people=[draft.author],
        title=f"Publishing failed: draft {draft.pk}",
        body=message,
        url=reverse("publishing:draft", args=[draft.pk]),
    )


def _claim(pub_id: int, now: dt.datetime) -> tuple[str, str]:
    """Phase 1: check and write the intent. Returns (outcome, token); token is set only when
    this caller now owns the send."""
    with transaction.atomic():
        pub = (
            Publication.objects.select_for_update(of=("self",))
            .select_related("request", "revision", "account")
            .filter(pk=pub_id)
            .first()
        )
        if pub is None:
            return "missing", ""
        if pub.state == PublicationState.SENDING:
            return "in_flight", ""
        if pub.state != PublicationState.QUEUED:
            return pub.state, ""
        if pub.scheduled_for > now:
            return "not_due", ""
        if pub.next_attempt_at is not None and pub.next_attempt_at > now:
            return "backoff", ""
        freeze = freeze_for(pub.account_id)
        if freeze is not None:
            _hold(pub, freeze)
            draft = Draft.objects.select_for_update().get(pk=pub.draft_id)
            if draft.state in (DraftState.SCHEDULED, DraftState.APPROVED):
                _draft_transition(draft, DraftState.FROZEN, actor=None, why=f"freeze {freeze.pk}")
            return "frozen", ""
        problem = ""
        if pub.revision.content_sha256 != pub.content_sha256:
            problem = "the content differs from what was approved"
        elif pub.request is not None and not approval_ok(pub, now):
            problem = "the approval is no longer valid (expired, withdrawn or superseded)"
        if problem:
            _fail_locked(pub, f"not published: {problem}")
            return "refused", ""
        token = secrets.token_hex(16)
        _pub_transition(
            pub,
            PublicationState.SENDING,
            actor=None,
            why="intent: sending to the network",
            intent_at=now,
            intent_token=token,
            attempts=pub.attempts + 1,
        )
        draft = Draft.objects.select_for_update().get(pk=pub.draft_id)
        if draft.state == DraftState.SCHEDULED:
            _draft_transition(draft, DraftState.PUBLISHING, actor=None, why="sending")
    return "claimed", token


def approval_ok(pub: Publication, now: dt.datetime) -> bool:
    return approvals.approval_is_valid(pub.request, sha256=pub.content_sha256, now=now)


def _media_of(pub: Publication) -> tuple[Any, ...]:
    from vetline.connectors.base import Media

    return tuple(
        Media(content=bytes(m.content), mime_type=m.mime_type, alt_text=m.alt_text)
        for m in pub.revision.media.order_by("position")
    )


def publish_publication(*, publication_id: int, now: dt.datetime | None = None) -> str:
    """Publish one queued publication exactly once (system; the publish task calls this).

    1. Under the row lock: check it is due, not frozen, approved in exactly this form and not
       expired, then write the intent (``sending``) and commit.
    2. Call the network.
    3. Under the row lock: record the result (only if our intent still stands).

    A crash between 2 and 3 leaves ``sending``; :func:`reconcile_publication` settles it from
    what the network shows, never by sending blindly again.
    """
    from vetline.connectors.actions import account_tokens
    from vetline.connectors.base import (
        AuthExpired,
        AuthRevoked,
        ConnectorError,
        PermanentError,
        PublishRequest,
        RateLimited,
        TransientError,
    )

    now = now or timezone.now()
    outcome, token = _claim(publication_id, now)
    if outcome != "claimed":
        return outcome
    pub = Publication.objects.select_related("account", "revision", "draft").get(pk=publication_id)
    try:
        connector, tokens = account_tokens(pub.account)
    except ValidationFailed as exc:
        return _fail(publication_id, exc.message, retry=True)
    except (AuthExpired, AuthRevoked) as exc:
        return _fail(publication_id, f"access to the account was lost: {exc.message}", retry=False)
    request = PublishRequest(
        text=pub.text,
        reply_to_remote_id=pub.draft.reply_to_remote_id,
        media=_media_of(pub),
    )
    try:
        result = connector.publish(tokens=tokens, request=request)
    except RateLimited as exc:
        return _fail(publication_id, exc.message, retry=True, retry_after=exc.retry_after)
    except (AuthExpired, AuthRevoked) as exc:
        return _fail(publication_id, f"access to the account was lost: {exc.message}", retry=False)
    except PermanentError as exc:
        return _fail(publication_id, exc.message, retry=False)
    except (TransientError, ConnectorError) as exc:
        # The network may or may not have published it (a timeout after it accepted the post):
        # leave the intent in place and let reconciliation find out before any new send.
        logger.warning(
            "publishing.send.uncertain", extra={"publication": publication_id, "error": exc.message}
        )
        Publication.objects.filter(pk=publication_id, intent_token=token).update(
            last_error=f"uncertain: {exc.message}"[:1000]
        )
        return "uncertain"
    return record_published(
        publication_id=publication_id, token=token, remote_id=result.remote_id, url=result.url
    )


def record_published(*, publication_id: int, token: str, remote_id: str, url: str) -> str:
    """Phase 3: the network accepted the post. Idempotent."""
    if not remote_id:
        return _fail(publication_id, "the network returned no id for the post", retry=False)
    with transaction.atomic():
        pub = (
            Publication.objects.select_for_update().select_related("account").get(pk=publication_id)
        )
        if pub.state == PublicationState.PUBLISHED:
            return "published" if pub.remote_id == remote_id else "published_elsewhere"
        if pub.state != PublicationState.SENDING or (token and pub.intent_token != token):
            logger.error(
                "publishing.record.lost_intent",
                extra={"publication": pub.pk, "remote_id": remote_id, "state": pub.state},
            )
            return "lost_intent"
        _mark_published(pub, remote_id=remote_id[:300], url=url[:1000], published_at=timezone.now())
    _archive_approval_record(publication_id)
    _kick_capture(pub.account_id)
    return "published"


def _mark_published(
    pub: Publication,
    *,
    remote_id: str,
    url: str,
    published_at: dt.datetime,
    actor: Person | None = None,
    why: str = "published",
) -> None:
    from vetline.archive.models import ArchivedRecord

    linked = (
        ArchivedRecord.objects.filter(account_id=pub.account_id, remote_id=remote_id, version=1)
        .values_list("pk", flat=True)
        .first()
    )
    _pub_transition(
        pub,
        PublicationState.PUBLISHED,
        actor=actor,
        why=why,
        remote_id=remote_id,
        url=url,
        published_at=published_at,
        last_error="",
        archived_record_id=linked,
    )
    draft = Draft.objects.select_for_update().get(pk=pub.draft_id)
    remaining = Publication.objects.filter(draft=draft).exclude(
        state__in=[PublicationState.PUBLISHED, PublicationState.CANCELLED]
    )
    if not remaining.exists():
        if draft.state == DraftState.SCHEDULED:
            _draft_transition(draft, DraftState.PUBLISHING, actor=None, why="sending")
        if draft.state == DraftState.PUBLISHING:
            _draft_transition(draft, DraftState.PUBLISHED, actor=None, why="published")
    notify(
        people=[draft.author],
        title=f"Published on {pub.account}",
        body=pub.text[:300],
        url=reverse("publishing:draft", args=[draft.pk]),
    )


def approval_record(pub: Publication) -> dict[str, Any]:
    """The FINRA 2210 record of a published item: the communication, its approving principals
    and dates, and its first and last use."""
    req = pub.request
    approvers = []
    if req is not None:
        for a in req.approvals.select_related("approver", "on_behalf_of", "step"):
            approvers.append(
                {
                    "name": a.approver.full_name,
                    "email": a.approver.email,
                    "on_behalf_of": a.on_behalf_of.full_name if a.on_behalf_of else None,
                    "step": a.step.name,
                    "decision": a.decision,
                    "decided_at": a.decided_at.isoformat(),
                    "comment": a.comment,
                }
            )
    rev = pub.revision
    return {
        "publication_id": pub.pk,
        "draft_id": pub.draft_id,
        "revision": rev.number,
        "content_sha256": pub.content_sha256,
        "account": str(pub.account),
        "remote_id": pub.remote_id,
        "url": pub.url,
        "author": {"name": pub.draft.author.full_name, "email": pub.draft.author.email},
        "approval_request_id": req.pk if req else None,
        "approved_at": req.decided_at.isoformat() if req and req.decided_at else None,
        "approvers": approvers,
        "screening": {"verdict": rev.verdict, "override_reason": rev.override_reason or None},
        "first_use": pub.published_at.isoformat() if pub.published_at else None,
        "last_use": pub.last_used_at.isoformat() if pub.last_used_at else None,
    }


def _store_media_blobs(pub: Publication) -> list[str]:
    """The published revision's media put in the archive's blob store (content-addressed:
    their names are the SHA-256 the revision's approval is pinned to), kept as long as an
    approval record is."""
    from vetline.archive.blobs import default_store, retain_until_for

    media = list(pub.revision.media.order_by("position"))
    if not media:
        return []
    store = default_store()
    retain = retain_until_for(
        captured_at=pub.published_at or timezone.now(), record_class="approval_record"
    )
    return [store.put(bytes(m.content), retain_until=retain) for m in media]


def _archive_approval_record(publication_id: int) -> None:
    """Archive the approval record of a published item (idempotent: the archive recognises a
    re-sent identical item as a duplicate)."""
    import json

    from vetline.archive.actions import ingest_batch

    pub = Publication.objects.select_related("account", "revision", "draft__author", "request").get(
        pk=publication_id
    )
    if pub.approval_record_id is not None:
        return
    body = approval_record(pub)
    body.pop("last_use")
    attachments = _store_media_blobs(pub)
    item = {
        "remote_id": f"vetline-approval:{pub.pk}",
        "kind": "reply" if pub.draft.kind == DraftKind.REPLY else "post",
        "direction": "outbound",
        "author": pub.account.handle,
        "text": pub.text,
        "parent_remote_id": pub.remote_id,
        "network_timestamp": pub.published_at.isoformat() if pub.published_at else None,
        "record_class": "approval_record",
        "approval_ref": pub.approval_ref,
        "attachments": attachments,
        "raw": json.loads(json.dumps(body, default=str)),
    }
    try:
        report = ingest_batch(items=[item], account=pub.account, source="publishing", actor=None)
    except Exception:  # the reconcile job retries; publishing itself has succeeded
        logger.exception("publishing.approval_record.failed", extra={"publication": pub.pk})
        return
    result = report.items[0] if report.items else None
    if result is not None and result.record_id is not None:
        Publication.objects.filter(pk=pub.pk, approval_record_id__isnull=True).update(
            approval_record_id=result.record_id
        )


def _kick_capture(account_id: int) -> None:
    def go() -> None:
        try:
            from vetline.connectors.tasks import capture_account_task

            capture_account_task(account_id)
        except Exception:  # capture also runs on its own schedule
            logger.exception("publishing.capture_kick.failed", extra={"account": account_id})

    if getattr(settings, "VETLINE_PUBLISH_CAPTURE_AFTER", True):
        transaction.on_commit(go)


def reconcile_publication(*, publication_id: int, now: dt.datetime | None = None) -> str:
    """Settle a publication left in ``sending`` (a crash or a timeout between sending and
    recording): capture the account and look for the post among what the network shows since
    the intent. Found: it is recorded as published (never sent again). Not found: it goes back
    to the queue for another attempt. Capture impossible: it stays, and people are alerted
    until a compliance officer settles it (:func:`settle_publication`)."""
    from vetline.archive.models import ArchivedRecord
    from vetline.connectors.actions import capture_account

    now = now or timezone.now()
    pub = Publication.objects.select_related("account", "draft").filter(pk=publication_id).first()
    if pub is None or pub.state != PublicationState.SENDING or pub.intent_at is None:
        return pub.state if pub else "missing"
    if now - pub.intent_at < SEND_STALE:
        return "in_flight"
    outcome = capture_account(account_id=pub.account_id)
    if outcome.status not in ("captured", "superseded"):
        with transaction.atomic():
            locked = Publication.objects.select_for_update().get(pk=pub.pk)
            if locked.state == PublicationState.SENDING:
                from vetline.connectors.actions import raise_alert
                from vetline.connectors.models import AlertSeverity

                raise_alert(
                    code=f"{ALERT_PUBLISH_UNKNOWN}:{pub.pk}",
                    severity=AlertSeverity.CRITICAL,
                    account=pub.account,
                    title=f"Cannot tell whether draft {pub.draft_id} was published",
                    body=(
                        f"Publishing to {pub.account} was interrupted and the account cannot be "
                        f"captured to check ({outcome.error}). It will not be sent again until "
                        "a compliance officer who has looked at the account settles it."
                    ),
                    link=reverse("publishing:unsettled"),
                )
        return "unknown"
    taken = Publication.objects.filter(account_id=pub.account_id).exclude(remote_id="")
    candidates = (
        ArchivedRecord.objects.filter(
            account_id=pub.account_id,
            direction="outbound",
            kind__in=list(PUBLISHED_KINDS),
            text=pub.text,
            approval_ref__isnull=True,
            network_timestamp__gte=pub.intent_at - dt.timedelta(minutes=1),
        )
        .exclude(remote_id__in=taken.values("remote_id"))
        .order_by("network_timestamp", "id")
    )
    found = candidates.first()
    with transaction.atomic():
        locked = Publication.objects.select_for_update().select_related("account").get(pk=pub.pk)
        if locked.state != PublicationState.SENDING:
            return locked.state
        if found is not None:
            _mark_published(
                locked,
                remote_id=found.remote_id,
                url="",
                published_at=found.network_timestamp or found.captured_at,
            )
            record(
                action="publishing.publication.reconcile",
                actor=None,
                actor_name="publishing",
                obj=locked,
                after={"found": found.remote_id, "record_id": found.pk},
            )
            result = "reconciled_published"
        else:
            _pub_transition(
                locked,
                PublicationState.QUEUED,
                actor=None,
                why="reconciled: the network does not show it; sending again",
                intent_at=None,
                intent_token="",
                next_attempt_at=None,
            )
            draft = Draft.objects.select_for_update().get(pk=locked.draft_id)
            if draft.state == DraftState.PUBLISHING:
                _draft_transition(draft, DraftState.SCHEDULED, actor=None, why="retry")
            _enqueue(locked)
            result = "reconciled_requeued"
    if result == "reconciled_published":
        _archive_approval_record(pub.pk)
    return result


def settle_publication(
    *,
    actor: Person,
    publication_id: int,
    outcome: SettleOutcome | str,
    remote_id: str = "",
    url: str = "",
    reason: str,
    now: dt.datetime | None = None,
) -> Publication:
    """A person settles a publication whose fate reconciliation could not establish (the
    account cannot be captured), having looked at the network themselves.

    Only a publication still ``sending`` whose intent is older than :data:`SEND_STALE` (never
    one a worker may still be sending). ``published``: recorded exactly as reconciliation
    records a post it found (archive link, approval record, first use); ``not_published``: it
    fails, and its author re-sends it (Retry) or withdraws it. Either way it leaves ``sending``
    under the row lock, so the reconcile job and a second person find nothing left to settle.
    Resolves the ``publish_unknown:<id>`` alert."""
    from vetline.archive.models import ArchivedRecord
    from vetline.connectors.actions import resolve_alerts

    require(actor, Perm.SCREENING_OVERRIDE)
    try:
        outcome = SettleOutcome(outcome)
    except ValueError:
        raise ValidationFailed(
            "Say whether the post is on the network or not.", field="outcome"
        ) from None
    reason = (reason or "").strip()
    if len(reason) < 5 or len(reason) > MAX_REASON_CHARS:
        raise ValidationFailed(
            "Say how you established it (5 to 2,000 characters).", field="reason"
        )
    remote_id = (remote_id or "").strip()
    url = (url or "").strip()
    if outcome == SettleOutcome.PUBLISHED:
        if not remote_id:
            raise ValidationFailed(
                "Give the post's id on the network (from its address or the network's app).",
                field="remote_id",
            )
        if len(remote_id) > MAX_REMOTE_ID_CHARS:
            raise ValidationFailed("That network id is too long.", field="remote_id")
        if url and (len(url) > MAX_URL_CHARS or not url.startswith(("https://", "http://"))):
            raise ValidationFailed("Give the post's web address (https://…).", field="url")
    elif remote_id or url:
        raise ValidationFailed(
            "A post that is not on the network has no network id or address.", field="remote_id"
        )
    now = now or timezone.now()
    with transaction.atomic():
        pub = (
            Publication.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(pk=publication_id)
            .first()
        )
        if pub is None or not visible_drafts(actor).filter(pk=pub.draft_id).exists():
            raise NotFound("No such publication.")
        try:
            target = settle_target(pub.state, outcome)
        except IllegalTransition:
            raise Conflict(
                f"The publication is {pub.publication_state.label.lower()}: only one whose "
                "sending was interrupted, and whose fate is unknown, is settled by hand.",
                code="not_settleable",
            ) from None
        if pub.intent_at is None or now - pub.intent_at < SEND_STALE:
            raise Conflict(
                "It is being sent right now. If it is still unsettled "
                f"{int(SEND_STALE.total_seconds() // 60)} minutes after it started, "
                "reconciliation checks the network first; settle it only if that fails.",
                code="in_flight",
            )
        before = {"state": pub.state, "remote_id": pub.remote_id, "intent_at": pub.intent_at}
        if target == PublicationState.PUBLISHED:
            if (
                Publication.objects.filter(account_id=pub.account_id, remote_id=remote_id)
                .exclude(pk=pub.pk)
                .exists()
            ):
                raise Conflict(
                    "That network id is already recorded for another publication on this account.",
                    field="remote_id",
                    code="remote_id_taken",
                )
            found = (
                ArchivedRecord.objects.filter(
                    account_id=pub.account_id, remote_id=remote_id, version=1
                )
                .only("network_timestamp", "captured_at")
                .first()
            )
            # First use: the network's time when the post is archived, else the intent (the
            # send cannot have happened before it).
            published_at = (
                (found.network_timestamp or found.captured_at) if found else pub.intent_at
            )
            _mark_published(
                pub,
                remote_id=remote_id,
                url=url,
                published_at=published_at,
                actor=actor,
                why=f"settled by hand: found on the network ({reason})",
            )
        else:
            message = f"not published: {actor} found it is not on the network ({reason})"
            _pub_transition(
                pub,
                PublicationState.FAILED,
                actor=actor,
                why=message,
                last_error=message[:1000],
                intent_token="",
                next_attempt_at=None,
            )
            draft = Draft.objects.select_for_update().get(pk=pub.draft_id)
            draft.last_error = f"{pub.account}: {message}"[:1000]
            draft.save(update_fields=["last_error"])
            if draft.state == DraftState.SCHEDULED:
                _draft_transition(draft, DraftState.PUBLISHING, actor=actor, why="sending")
            if draft.state == DraftState.PUBLISHING:
                _draft_transition(draft, DraftState.FAILED, actor=actor, why=message)
            notify(
                people=[draft.author],
                title=f"Not published on {pub.account}: draft {draft.pk}",
                body=(
                    f"{message}. Retry to send it now (its approval must still be valid), or "
                    "withdraw it."
                ),
                url=reverse("publishing:draft", args=[draft.pk]),
            )
        record(
            action="publishing.publication.settle",
            actor=actor,
            obj=pub,
            before=before,
            after={
                "state": pub.state,
                "outcome": outcome.value,
                "remote_id": pub.remote_id,
                "url": pub.url,
                "published_at": pub.published_at,
                "reason": reason,
            },
        )
        resolve_alerts(
            account=pub.account,
            codes=(f"{ALERT_PUBLISH_UNKNOWN}:{pub.pk}",),
            reason=f"settled by {actor}: {outcome.label.lower()}",
        )
    if target == PublicationState.PUBLISHED:
        _archive_approval_record(pub.pk)
    pub.refresh_from_db()
    return pub


def awaiting_settlement(person: Person, now: dt.datetime | None = None) -> Any:
    """Publications whose sending was interrupted long enough ago that reconciliation has had
    its turn, among the drafts the person sees (oldest first)."""
    now = now or timezone.now()
    return (
        Publication.objects.filter(
            state=PublicationState.SENDING,
            intent_at__lte=now - SEND_STALE,
            draft__in=visible_drafts(person),
        )
        .select_related("account", "draft__author")
        .order_by("intent_at", "id")
    )


def retry_publication(*, actor: Person, publication_id: int) -> Publication:
    """The author sends a failed publication again (its approval must still be valid)."""
    with transaction.atomic():
        pub = Publication.objects.select_for_update().filter(pk=publication_id).first()
        if pub is None:
            raise NotFound("No such publication.")
        draft = _locked_draft(actor, pub.draft_id)
        if draft.author_id != actor.pk:
            raise Forbidden("Only the draft's author retries it.")
        if pub.request is not None and not approval_ok(pub, timezone.now()):
            raise Conflict("The approval is no longer valid: edit and submit the draft again.")
        _pub_transition(
            pub,
            PublicationState.QUEUED,
            actor=actor,
            why="retry",
            attempts=0,
            next_attempt_at=None,
            scheduled_for=timezone.now(),
        )
        if draft.state == DraftState.FAILED:
            _draft_transition(draft, DraftState.SCHEDULED, actor=actor, why="retry")
        freeze = freeze_for(pub.account_id)
        if freeze is not None:
            _hold(pub, freeze)
        else:
            _enqueue(pub)
    return pub


def due_publication_ids(now: dt.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        Publication.objects.filter(state=PublicationState.QUEUED, scheduled_for__lte=now)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("pk", flat=True)[:500]
    )


def stale_sending_ids(now: dt.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        Publication.objects.filter(
            state=PublicationState.SENDING, intent_at__lte=now - SEND_STALE
        ).values_list("pk", flat=True)[:100]
    )


# --- Rogue posts and first/last use ------------------------------------------------------------


def follow_archive(*, limit: int = ROGUE_BATCH) -> int:
    """Look at archived records past the cursor (system): link captured copies of published
    items, note their last use (edited or deleted on the network), and raise the rogue-post
    alarm for posts on corporate accounts that did not come through Vetline. The cursor moves
    in the same transaction as what it found, so a crash repeats nothing and skips nothing.
    Returns the number of records looked at."""
    from vetline.archive.models import ArchivedRecord

    with transaction.atomic():
        cursor, _ = RogueCursor.objects.select_for_update().get_or_create(pk=1)
        ids = list(
            ArchivedRecord.objects.filter(pk__gt=cursor.last_record_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return 0
        # Only outbound posts, replies, edits and deletions on corporate accounts matter; the
        # database picks them out of the window (the payloads are not read).
        watched = (
            ArchivedRecord.objects.filter(
                pk__gt=cursor.last_record_id,
                pk__lte=ids[-1],
                direction="outbound",
                kind__in=sorted(WATCHED_KINDS),
                approval_ref__isnull=True,
                account__kind=AccountKind.CORPORATE,
            )
            # History from before the connection, and imports, are not alarms (_historical).
            .exclude(source__startswith="import")
            .exclude(network_timestamp__lt=F("account__connection__connected_at"))
            .select_related("account")
            .defer("raw_payload")
            .order_by("pk")
        )
        connected: dict[int, dt.datetime | None] = {}
        for rec in watched:
            _look_at(rec, connected)
        cursor.last_record_id = ids[-1]
        cursor.updated_at = timezone.now()
        cursor.save(update_fields=["last_record_id", "updated_at"])
    return len(ids)


def _look_at(rec: Any, connected: dict[int, dt.datetime | None]) -> None:
    if rec.direction != "outbound" or rec.account.kind != AccountKind.CORPORATE:
        return
    if rec.kind not in WATCHED_KINDS:
        return
    if rec.approval_ref:
        return  # our own approval record
    if _historical(rec, connected):
        return
    pub = (
        Publication.objects.select_for_update()
        .filter(account_id=rec.account_id, remote_id=rec.remote_id)
        .first()
    )
    if pub is not None:
        if rec.kind in PUBLISHED_KINDS:
            if pub.archived_record_id is None:
                pub.archived_record_id = rec.pk
                pub.save(update_fields=["archived_record_id"])
                record(
                    action="publishing.publication.captured",
                    actor=None,
                    actor_name="publishing",
                    obj=pub,
                    after={"record_id": rec.pk},
                )
            return
        # An edit or a deletion on the network: the approved form is no longer in use.
        if pub.last_used_at is None:
            pub.last_used_at = rec.network_timestamp or rec.captured_at
            pub.last_use_reason = "deleted" if rec.kind == "deletion" else "edited"
            pub.save(update_fields=["last_used_at", "last_use_reason"])
            record(
                action="publishing.publication.last_use",
                actor=None,
                actor_name="publishing",
                obj=pub,
                after={"record_id": rec.pk, "reason": pub.last_use_reason},
            )
        if rec.kind == "deletion":
            return
        # An edit made outside Vetline is content nobody approved: it is a rogue post too.
    elif rec.kind == "deletion":
        return
    elif (
        rec.kind in PUBLISHED_KINDS
        and Publication.objects.filter(
            account_id=rec.account_id, state=PublicationState.SENDING, text=rec.text
        ).exists()
    ):
        return  # ours, being recorded right now (record_published links it by remote id)
    _raise_rogue(rec, edited=pub is not None)


def _historical(rec: Any, connected: dict[int, dt.datetime | None]) -> bool:
    """Posts from before Vetline held the account (the history captured when it was connected,
    or imported from a platform export) are archived, not alarms."""
    from vetline.connectors.models import Connection

    if str(rec.source or "").startswith("import"):
        return True
    if rec.network_timestamp is None:
        return False
    if rec.account_id not in connected:
        connected[rec.account_id] = (
            Connection.objects.filter(account_id=rec.account_id)
            .values_list("connected_at", flat=True)
            .first()
        )
    connected_at = connected[rec.account_id]
    return connected_at is not None and rec.network_timestamp < connected_at


def _raise_rogue(rec: Any, *, edited: bool) -> None:
    from vetline.archive.models import ScreeningVerdict
    from vetline.connectors.actions import raise_alert
    from vetline.connectors.models import AlertSeverity

    if RoguePost.objects.filter(record_id=rec.pk).exists():
        return
    verdict = ScreeningVerdict.objects.filter(record_id=rec.pk).first()
    if verdict is not None and verdict.verdict != "error":
        screened = {"verdict": verdict.verdict, "hits": verdict.hits}
    else:
        screened = _screen(rec.text, reply=rec.kind == "reply")
    what = "An edit" if edited else "A post"
    alert = raise_alert(
        code=f"{ALERT_ROGUE}:{rec.pk}"[:60],
        severity=AlertSeverity.CRITICAL,
        account=rec.account,
        title=f"{what} on {rec.account} did not come through Vetline",
        body=(
            f"{what} appeared on the corporate account {rec.account} without approval "
            f"(network id {rec.remote_id}, screening: {screened['verdict']}):\n\n{rec.text[:1000]}"
        ),
    )
    rogue = RoguePost.objects.create(
        record_id=rec.pk,
        account=rec.account,
        remote_id=rec.remote_id,
        text=rec.text,
        verdict=str(screened["verdict"])[:10],
        hits=screened.get("hits") or [],
        alert_id=alert.pk if alert else None,
        note="edited outside Vetline" if edited else "",
    )
    record(
        action="publishing.rogue.detect",
        actor=None,
        actor_name="publishing",
        obj=rogue,
        after={
            "record_id": rec.pk,
            "account_id": rec.account_id,
            "verdict": rogue.verdict,
            "alert_id": rogue.alert_id,
        },
    )


def acknowledge_rogue(*, actor: Person, rogue_id: int, note: str = "") -> RoguePost:
    """The account's owner or compliance acknowledges a rogue post (the review itself happens
    in supervision)."""
    with transaction.atomic():
        rogue = (
            RoguePost.objects.select_for_update()
            .select_related("account")
            .filter(pk=rogue_id)
            .first()
        )
        if rogue is None or not (
            rogue.account.owner_id == actor.pk or actor.can(Perm.SCREENING_OVERRIDE)
        ):
            raise NotFound("No such rogue post.")
        if rogue.status == RogueStatus.ACKNOWLEDGED:
            raise Conflict("Already acknowledged.")
        if len(note) > 5000:
            raise ValidationFailed("The note is too long.", field="note")
        rogue.status = RogueStatus.ACKNOWLEDGED
        rogue.acknowledged_by = actor
        rogue.acknowledged_at = timezone.now()
        rogue.note = (rogue.note + "\n" + note.strip()).strip()
        rogue.save(update_fields=["status", "acknowledged_by", "acknowledged_at", "note"])
        record(
            action="publishing.rogue.acknowledge",
            actor=actor,
            obj=rogue,
            before={"status": RogueStatus.OPEN.value},
            after={"status": rogue.status, "note": note[:1000]},
        )
    return rogue
