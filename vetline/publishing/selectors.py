"""Reads of publishing shared by pages and the API: highlighted screening, revision diffs, a
draft's history timeline, the queue and the calendar."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from vetline.identity.models import Person
from vetline.publishing.models import (
    Approval,
    ApprovalRequest,
    Draft,
    DraftRevision,
    Freeze,
    Notification,
    Publication,
    RoguePost,
)
from vetline.publishing.rules import highlight, word_diff
from vetline.publishing.states import PublicationState

SUBJECT_TYPE = "draft_revision"


@dataclass(frozen=True)
class Highlighted:
    account_id: int | None
    account: str
    text: str
    verdict: str
    pieces: list[tuple[str, str]]
    hits: list[dict[str, Any]]


def highlighted(screening: dict[str, Any], text: str, account: str = "") -> Highlighted:
    hits = list(screening.get("hits") or [])
    spans = [(int(h["start"]), int(h["end"]), str(h["severity"])) for h in hits]
    return Highlighted(
        account_id=screening.get("account_id"),
        account=account,
        text=text,
        verdict=str(screening.get("verdict", "pass")),
        pieces=highlight(text, spans),
        hits=hits,
    )


def revision_highlights(rev: DraftRevision) -> list[Highlighted]:
    names = {t.account_id: str(t.account) for t in rev.targets.select_related("account")}
    return [
        highlighted(s, s.get("text", rev.text), names.get(s.get("account_id"), ""))
        for s in rev.screening or []
    ]


def previous_revision(rev: DraftRevision) -> DraftRevision | None:
    return (
        DraftRevision.objects.filter(draft_id=rev.draft_id, number__lt=rev.number)
        .order_by("-number")
        .first()
    )


def revision_diff(old: DraftRevision | None, new: DraftRevision) -> list[tuple[str, str]]:
    return word_diff(old.text if old else "", new.text)


def requests_of(draft: Draft) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(
        subject_type=SUBJECT_TYPE, subject_group=f"draft:{draft.pk}"
    ).order_by("created_at")


def latest_request(draft: Draft) -> ApprovalRequest | None:
    return requests_of(draft).order_by("-created_at").first()


def timeline(draft: Draft) -> list[dict[str, Any]]:
    """Everything that happened to a draft, oldest first."""
    events: list[dict[str, Any]] = []
    for rev in draft.revisions.select_related("author", "override_by"):
        events.append(
            {
                "at": rev.created_at,
                "kind": "revision",
                "text": f"Revision {rev.number} saved by {rev.author} (screening: {rev.verdict})",
            }
        )
        if rev.override_at:
            events.append(
                {
                    "at": rev.override_at,
                    "kind": "override",
                    "text": f"{rev.override_by} overrode the block on revision {rev.number}: "
                    f"{rev.override_reason}",
                }
            )
    reqs = list(requests_of(draft))
    for req in reqs:
        events.append(
            {"at": req.created_at, "kind": "submitted", "text": f"Submitted: {req.title}"}
        )
        for a in Approval.objects.filter(request=req).select_related(
            "approver", "on_behalf_of", "step"
        ):
            who = f"{a.approver}" + (f" (for {a.on_behalf_of})" if a.on_behalf_of else "")
            text = f"{who} {a.get_decision_display().lower()} “{a.step.name}”"
            if a.comment:
                text += f": {a.comment}"
            events.append({"at": a.decided_at, "kind": a.decision, "text": text})
        if req.state not in ("pending", "approved") and req.closed_reason:
            events.append(
                {
                    "at": req.decided_at or req.created_at,
                    "kind": req.state,
                    "text": f"Request {req.request_state.label.lower()}: {req.closed_reason}",
                }
            )
        elif req.state == "approved" and req.decided_at:
            events.append(
                {
                    "at": req.decided_at,
                    "kind": "approved",
                    "text": f"Approved (valid until {req.expires_at:%Y-%m-%d %H:%M} UTC)",
                }
            )
    for pub in Publication.objects.filter(draft=draft).select_related("account"):
        if pub.published_at:
            events.append(
                {
                    "at": pub.published_at,
                    "kind": "published",
                    "text": f"Published on {pub.account} ({pub.remote_id})",
                }
            )
        if pub.last_used_at:
            events.append(
                {
                    "at": pub.last_used_at,
                    "kind": "last_use",
                    "text": f"Last use on {pub.account}: {pub.last_use_reason} on the network",
                }
            )
        if pub.state == PublicationState.FAILED:
            events.append(
                {"at": pub.created_at, "kind": "failed", "text": f"Failed: {pub.last_error}"}
            )
    events.sort(key=lambda e: e["at"])
    return events


def calendar_weeks(
    person: Person, *, start: dt.date | None = None, weeks: int = 5
) -> list[list[dict[str, Any]]]:
    """Weeks (Monday first) of days with the publications scheduled on each, for the drafts
    the person may see."""
    from vetline.publishing.actions import visible_drafts

    today = timezone.now().date()
    start = start or today
    first = start - dt.timedelta(days=start.weekday())
    last = first + dt.timedelta(days=7 * weeks)
    pubs = (
        Publication.objects.filter(
            draft__in=visible_drafts(person),
            scheduled_for__date__gte=first,
            scheduled_for__date__lt=last,
        )
        .exclude(state=PublicationState.CANCELLED)
        .select_related("account")
        .order_by("scheduled_for")
    )
    by_day: dict[dt.date, list[Publication]] = {}
    for p in pubs:
        by_day.setdefault(p.scheduled_for.date(), []).append(p)
    out = []
    for w in range(weeks):
        week = []
        for d in range(7):
            day = first + dt.timedelta(days=7 * w + d)
            week.append({"date": day, "today": day == today, "items": by_day.get(day, [])})
        out.append(week)
    return out


def active_freeze() -> Freeze | None:
    return Freeze.objects.filter(lifted_at__isnull=True).order_by("-started_at").first()


def unread_notifications(person: Person) -> int:
    return Notification.objects.filter(person=person, read_at__isnull=True).count()


def visible_rogue_posts(person: Person) -> QuerySet[RoguePost]:
    from vetline.identity.roles import Perm

    qs = RoguePost.objects.select_related("account")
    if person.can(Perm.SCREENING_OVERRIDE) or person.can(Perm.ACCOUNTS_VIEW_ALL):
        return qs
    return qs.filter(account__owner=person)
