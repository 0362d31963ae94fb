"""Pages of publishing: compose (with live screening), the queue and calendar, a draft's history,
the approver's inbox and review, freezes, chains and delegations, rogue posts, notifications.
Thin: parse, fetch through access functions, call an action, render."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from vetline.accounts.models import AccountKind, Assignment, SocialAccount
from vetline.core.errors import NotFound
from vetline.core.forms import errors_as_text
from vetline.core.views_support import ACCESS_ERRORS, run_and_flash, run_for_form
from vetline.identity.models import Person
from vetline.identity.permissions import require, require_any
from vetline.identity.roles import Capability, Perm
from vetline.publishing import actions, approvals, selectors
from vetline.publishing.forms import (
    ChainForm,
    ComposeForm,
    DecisionForm,
    DelegationForm,
    FreezeForm,
    GroupForm,
    ReasonForm,
    SettleForm,
)
from vetline.publishing.models import (
    AccountGroup,
    ApprovalChain,
    Delegation,
    DraftRevision,
    Freeze,
    HeldResolution,
    Notification,
    Publication,
)
from vetline.publishing.notifications import mark_read
from vetline.publishing.states import DraftState

VIEWERS = (
    Perm.PUBLISH,
    Perm.REPLY,
    Perm.APPROVE,
    Perm.SCREENING_OVERRIDE,
    Perm.PUBLISHING_FREEZE,
    Perm.APPROVAL_CHAINS_MANAGE,
)


def _user(request: HttpRequest) -> Person:
    return request.user  # type: ignore[return-value]


def _publishable_accounts(person: Person) -> Any:
    ids = Assignment.objects.filter(
        person=person, capability__in=[Capability.PUBLISH.value, Capability.REPLY.value]
    ).values("account_id")
    return SocialAccount.objects.filter(
        pk__in=ids, kind=AccountKind.CORPORATE, is_active=True
    ).order_by("network", "handle")


# --- Queue and calendar ---------------------------------------------------------------------------


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require_any(user, *VIEWERS)
    state = request.GET.get("state", "")
    drafts = actions.visible_drafts(user).select_related("author").order_by("-updated_at")
    if state in {s.value for s in DraftState}:
        drafts = drafts.filter(state=state)
    page = Paginator(drafts, 25).get_page(request.GET.get("page"))
    rows = []
    for d in page:
        rev = d.latest_revision
        rows.append({"draft": d, "rev": rev})
    return render(
        request,
        "publishing/queue.html",
        {
            "page_obj": page,
            "rows": rows,
            "state": state,
            "states": list(DraftState),
            "can_compose": user.can(Perm.PUBLISH) or user.can(Perm.REPLY),
        },
    )


@login_required
def calendar(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require_any(user, *VIEWERS)
    start = None
    if raw := request.GET.get("start", ""):
        try:
            start = dt.date.fromisoformat(raw[:10])
        except ValueError:
            start = None
    weeks = selectors.calendar_weeks(user, start=start)
    first = weeks[0][0]["date"]
    return render(
        request,
        "publishing/calendar.html",
        {
            "weeks": weeks,
            "prev": (first - dt.timedelta(days=28)).isoformat(),
            "next": (first + dt.timedelta(days=28)).isoformat(),
        },
    )


# --- Compose --------------------------------------------------------------------------------------


def _draft_input(form: ComposeForm, *, keep_media_from: int | None = None) -> actions.DraftInput:
    cd = form.cleaned_data
    files = cd.get("attachments") or []
    uploads = [
        actions.MediaUpload(
            content=f.read(),
            declared_type=getattr(f, "content_type", "") or "",
            alt_text=cd.get("alt_text") or "",
            filename=f.name or "",
        )
        for f in files
    ]
    variants = {}
    for account in cd["accounts"]:
        text = cd.get(f"variant_{account.pk}") or ""
        if text.strip():
            variants[account.pk] = text
    return actions.DraftInput(
        text=cd.get("text") or "",
        account_ids=[a.pk for a in cd["accounts"]],
        variants=variants,
        links=[ln for ln in (cd.get("links") or "").splitlines() if ln.strip()],
        media=uploads,
        reply_to_record_id=cd.get("reply_to_record_id"),
        scheduled_for=cd.get("scheduled_for") or None,
        keep_media_from=keep_media_from,
    )


@login_required
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require_any(user, Perm.PUBLISH, Perm.REPLY)
    accounts = _publishable_accounts(user)
    initial: dict[str, Any] = {}
    reply_to = None
    if raw := request.GET.get("reply_to", ""):
        from vetline.archive.models import ArchivedRecord

        if raw.isdigit() and int(raw) < 2**63:
            reply_to = ArchivedRecord.objects.filter(pk=int(raw), account__in=accounts).first()
        if reply_to is None:
            raise NotFound("No such message to reply to.")
        initial = {"reply_to_record_id": reply_to.pk, "accounts": [reply_to.account_id]}
    form = ComposeForm(
        request.POST or None, request.FILES or None, accounts=accounts, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        draft = run_for_form(
            request,
            lambda: actions.create_draft(actor=user, data=_draft_input(form)),
            form=form,
            success="Draft saved and screened.",
        )
        if draft is not None:
            return redirect("publishing:draft", draft.pk)
    return render(
        request,
        "publishing/compose.html",
        {"form": form, "draft": None, "reply_to": reply_to},
        status=422 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, draft_id: int) -> HttpResponse:
    user = _user(request)
    draft = actions.get_draft(user, draft_id)
    if draft.author_id != user.pk:
        raise NotFound("No such draft.")
    rev = draft.latest_revision
    assert rev is not None
    accounts = _publishable_accounts(user)
    initial: dict[str, Any] = {
        "text": rev.text,
        "accounts": [t.account_id for t in rev.targets.all()],
        "links": "\n".join(rev.links or []),
        "scheduled_for": draft.scheduled_for.isoformat() if draft.scheduled_for else "",
        "reply_to_record_id": draft.reply_to_record_id,
    }
    for t in rev.targets.all():
        initial[f"variant_{t.account_id}"] = t.variant_text
    form = ComposeForm(
        request.POST or None, request.FILES or None, accounts=accounts, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        saved = run_for_form(
            request,
            lambda: actions.save_draft(
                actor=user, draft_id=draft.pk, data=_draft_input(form, keep_media_from=rev.pk)
            ),
            form=form,
            success="Saved as a new revision and screened.",
        )
        if saved is not None:
            return redirect("publishing:draft", draft.pk)
    return render(
        request,
        "publishing/compose.html",
        {"form": form, "draft": draft, "rev": rev, "reply_to": None},
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def screen(request: HttpRequest) -> HttpResponse:
    """Live screening while composing (HTMX): the text with the hits highlighted."""
    user = _user(request)
    text = request.POST.get("text", "")[: actions.MAX_TEXT_CHARS + 1]
    result = actions.preview_screening(
        actor=user, text=text, reply=bool(request.POST.get("reply_to_record_id"))
    )
    item = selectors.highlighted(result, text)
    return render(request, "publishing/_screening.html", {"items": [item], "live": True})


# --- Draft ----------------------------------------------------------------------------------------


@login_required
def draft_detail(request: HttpRequest, draft_id: int) -> HttpResponse:
    user = _user(request)
    draft = actions.get_draft(user, draft_id)
    revisions = list(draft.revisions.select_related("author", "override_by").order_by("number"))
    rev = revisions[-1]
    compare = None
    if raw := request.GET.get("compare", ""):
        older = next((r for r in revisions if str(r.number) == raw), None)
        if older is not None:
            compare = older
    old = compare or selectors.previous_revision(rev)
    req = selectors.latest_request(draft)
    return render(
        request,
        "publishing/draft.html",
        {
            "draft": draft,
            "rev": rev,
            "revisions": revisions,
            "old": old,
            "diff": selectors.revision_diff(old, rev) if old else None,
            "highlights": selectors.revision_highlights(rev),
            "req": req,
            "steps": list(req.steps.all()) if req else [],
            "publications": Publication.objects.filter(draft=draft).select_related("account"),
            "settle_ids": set(
                actions.awaiting_settlement(user).filter(draft=draft).values_list("pk", flat=True)
            ),
            "can_settle": user.can(Perm.SCREENING_OVERRIDE),
            "timeline": selectors.timeline(draft),
            "is_author": draft.author_id == user.pk,
            "can_override": user.can(Perm.SCREENING_OVERRIDE) and draft.author_id != user.pk,
            "media": list(rev.media.all()),
            "can_archive": user.can(Perm.ARCHIVE_VIEW),
        },
    )


def _back(draft_id: int) -> HttpResponse:
    return redirect("publishing:draft", draft_id)


@login_required
@require_POST
def submit(request: HttpRequest, draft_id: int) -> HttpResponse:
    user = _user(request)
    run_and_flash(
        request,
        lambda: actions.submit_draft(
            actor=user, draft_id=draft_id, revision_sha256=request.POST.get("sha256", "")[:64]
        ),
        success="Submitted for approval.",
    )
    return _back(draft_id)


@login_required
@require_POST
def withdraw(request: HttpRequest, draft_id: int) -> HttpResponse:
    user = _user(request)
    actions.withdraw_draft(
        actor=user, draft_id=draft_id, reason=request.POST.get("reason", "")[:1000]
    )
    messages.success(request, "Withdrawn.")
    return _back(draft_id)


@login_required
@require_POST
def override(request: HttpRequest, revision_id: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SCREENING_OVERRIDE)
    rev = DraftRevision.objects.filter(pk=revision_id).first()
    if rev is None or not actions.visible_drafts(user).filter(pk=rev.draft_id).exists():
        raise NotFound("No such revision.")
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_as_text(form))
        return _back(rev.draft_id)
    run_and_flash(
        request,
        lambda: actions.override_block(
            actor=user, revision_id=rev.pk, reason=form.cleaned_data["reason"]
        ),
        success="Override recorded; approvers will see your reason.",
    )
    return _back(rev.draft_id)


@login_required
@require_POST
def retry(request: HttpRequest, publication_id: int) -> HttpResponse:
    user = _user(request)
    pub = Publication.objects.filter(pk=publication_id).first()
    if pub is None:
        raise NotFound("No such publication.")
    run_and_flash(
        request,
        lambda: actions.retry_publication(actor=user, publication_id=pub.pk),
        success="Queued again.",
    )
    return _back(pub.draft_id)


@login_required
def unsettled(request: HttpRequest) -> HttpResponse:
    """Publications whose sending was interrupted and whose fate reconciliation could not
    establish (the ``publish_unknown`` alert points here)."""
    user = _user(request)
    require_any(user, *VIEWERS)
    page = Paginator(actions.awaiting_settlement(user), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "publishing/unsettled.html",
        {"page_obj": page, "can_settle": user.can(Perm.SCREENING_OVERRIDE)},
    )


@login_required
@require_POST
def settle(request: HttpRequest, publication_id: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SCREENING_OVERRIDE)
    pub = Publication.objects.filter(
        pk=publication_id, draft__in=actions.visible_drafts(user)
    ).first()
    if pub is None:
        raise NotFound("No such publication.")
    form = SettleForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_as_text(form))
    else:
        data = form.cleaned_data
        run_and_flash(
            request,
            lambda: actions.settle_publication(
                actor=user,
                publication_id=pub.pk,
                outcome=data["outcome"],
                remote_id=data["remote_id"],
                url=data["url"],
                reason=data["reason"],
            ),
            success=lambda p: (
                "Settled: recorded as published."
                if p.state == "published"
                else "Settled: not published. Its author can retry or withdraw it."
            ),
        )
    if request.POST.get("back") == "list":
        return redirect("publishing:unsettled")
    return _back(pub.draft_id)


# --- Approver inbox and review --------------------------------------------------------------------


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    pending = approvals.inbox(user)
    rows = []
    for req in pending:
        rows.append({"req": req, "step": approvals.current_step(req)})
    return render(request, "publishing/inbox.html", {"rows": rows})


def _review_context(user: Person, req: Any) -> dict[str, Any]:
    ctx: dict[str, Any] = {"req": req, "steps": list(req.steps.all())}
    ctx["approvals"] = list(req.approvals.select_related("approver", "on_behalf_of", "step"))
    step = approvals.current_step(req) if req.state == "pending" else None
    ctx["step"] = step
    ctx["capacities"] = approvals.acting_capacities(user, req, step) if step else []
    if req.subject_type == actions.SUBJECT_TYPE:
        rev = DraftRevision.objects.select_related("draft", "author").get(pk=req.subject_id)
        old = selectors.previous_revision(rev)
        ctx.update(
            rev=rev,
            draft=rev.draft,
            old=old,
            diff=selectors.revision_diff(old, rev) if old else None,
            highlights=selectors.revision_highlights(rev),
            media=list(rev.media.all()),
        )
    return ctx


@login_required
def review(request: HttpRequest, request_id: int) -> HttpResponse:
    user = _user(request)
    req = approvals.get_request(user, request_id)
    ctx = _review_context(user, req)
    ctx["form"] = DecisionForm(initial={"subject_sha256": req.subject_sha256})
    return render(request, "publishing/review.html", ctx)


@login_required
@require_POST
def decide(request: HttpRequest, request_id: int) -> HttpResponse:
    user = _user(request)
    req = approvals.get_request(user, request_id)
    form = DecisionForm(request.POST)
    if form.is_valid():
        run_for_form(
            request,
            lambda: approvals.decide(
                actor=user,
                request_id=req.pk,
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data.get("comment") or "",
                subject_sha256=form.cleaned_data["subject_sha256"],
                on_behalf_of_id=form.cleaned_data.get("on_behalf_of"),
                step_position=form.cleaned_data.get("step_position"),
            ),
            form=form,
            # Not the person's step, or four-eyes: the central 403, not a form error.
            propagate=ACCESS_ERRORS,
        )
    if form.errors:
        req.refresh_from_db()
        ctx = _review_context(user, req)
        ctx["form"] = form
        return render(request, "publishing/review.html", ctx, status=422)
    verb = "Approved" if form.cleaned_data["decision"] == "approve" else "Rejected"
    messages.success(request, f"{verb}: {req.title}")
    return redirect("publishing:inbox")


# --- Freeze ---------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def freezes(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.PUBLISHING_FREEZE)
    form = FreezeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        freeze = run_for_form(
            request,
            lambda: actions.start_freeze(
                actor=user,
                reason=form.cleaned_data["reason"],
                account_ids=[a.pk for a in form.cleaned_data["accounts"]],
            ),
            form=form,
        )
        if freeze is not None:
            messages.warning(request, "Publishing is frozen.")
            return redirect("publishing:freeze", freeze.pk)
    return render(
        request,
        "publishing/freezes.html",
        {"form": form, "freezes": Freeze.objects.select_related("started_by", "lifted_by")[:50]},
        status=422 if form.errors else 200,
    )


@login_required
def freeze_detail(request: HttpRequest, freeze_id: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.PUBLISHING_FREEZE)
    freeze = Freeze.objects.filter(pk=freeze_id).first()
    if freeze is None:
        raise NotFound("No such freeze.")
    held = freeze.held.select_related(
        "publication__account", "publication__draft", "resolved_by"
    ).order_by("publication__scheduled_for")
    return render(
        request,
        "publishing/freeze.html",
        {"freeze": freeze, "held": held, "pending": held.filter(resolution="pending").count()},
    )


@login_required
@require_POST
def freeze_resolve(request: HttpRequest, freeze_id: int, publication_id: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.PUBLISHING_FREEZE)
    decision = request.POST.get("decision", "")
    if decision not in (HeldResolution.RECONFIRMED, HeldResolution.WITHDRAWN):
        messages.error(request, "Re-confirm or withdraw.")
    else:
        run_and_flash(
            request,
            lambda: actions.resolve_held(
                actor=user, freeze_id=freeze_id, publication_id=publication_id, decision=decision
            ),
        )
    return redirect("publishing:freeze", freeze_id)


@login_required
@require_POST
def freeze_lift(request: HttpRequest, freeze_id: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.PUBLISHING_FREEZE)
    run_and_flash(
        request,
        lambda: actions.lift_freeze(
            actor=user, freeze_id=freeze_id, reason=request.POST.get("reason", "")[:2000]
        ),
        success="The freeze is lifted.",
    )
    return redirect("publishing:freeze", freeze_id)


# --- Chains and delegations -----------------------------------------------------------------------


def _parse_steps(raw: str) -> list[approvals.StepInput]:
    from vetline.core.errors import ValidationFailed

    steps = []
    for n, line in enumerate(ln for ln in raw.splitlines() if ln.strip()):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not parts[1].isdigit():
            raise ValidationFailed(
                f"Step {n + 1}: write “name | approvals | role or e-mails”.", field="steps"
            )
        who = parts[2]
        if "@" in who:
            emails = [e.strip().lower() for e in who.split(",") if e.strip()]
            ids = tuple(
                Person.objects.filter(email__in=emails, is_active=True).values_list("pk", flat=True)
            )
            if len(ids) != len(set(emails)):
                raise ValidationFailed(
                    f"Step {n + 1}: an e-mail address is unknown.", field="steps"
                )
            steps.append(approvals.StepInput(parts[0], int(parts[1][:3]), approver_ids=ids))
        else:
            steps.append(approvals.StepInput(parts[0], int(parts[1][:3]), role=who))
    return steps


@login_required
@require_http_methods(["GET", "POST"])
def chains(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.APPROVAL_CHAINS_MANAGE)
    is_group = request.POST.get("form") == "group"
    form = ChainForm(request.POST if request.method == "POST" and not is_group else None)
    group_form = GroupForm(request.POST if is_group else None, prefix="group")
    if request.method == "POST" and is_group and group_form.is_valid():
        group = run_for_form(
            request,
            lambda: approvals.save_group(
                actor=user,
                name=group_form.cleaned_data["name"],
                accounts=list(group_form.cleaned_data["members"]),
            ),
            form=group_form,
            success="Group saved: give it a chain below.",
        )
        if group is not None:
            return redirect("publishing:chains")
    if request.method == "POST" and not is_group and form.is_valid():
        cd = form.cleaned_data
        chain = run_for_form(
            request,
            lambda: approvals.save_chain(
                actor=user,
                name=cd["name"],
                subject_kind=cd["subject_kind"],
                steps=_parse_steps(cd.get("steps") or ""),
                account=cd.get("account"),
                group=cd.get("group"),
                requires_approval=bool(cd.get("requires_approval")),
                approval_valid_hours=cd["approval_valid_hours"],
            ),
            form=form,
            success="Chain saved. Requests already under way keep their steps.",
        )
        if chain is not None:
            return redirect("publishing:chains")
    active = (
        ApprovalChain.objects.filter(is_active=True)
        .select_related("account", "group")
        .prefetch_related("steps__approvers")
    )
    return render(
        request,
        "publishing/chains.html",
        {
            "form": form,
            "group_form": group_form,
            "chains": active,
            "groups": AccountGroup.objects.prefetch_related("accounts"),
        },
        status=422 if form.errors or group_form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def delegations(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require_any(user, Perm.APPROVE, Perm.PROFILES_VET, Perm.APPROVAL_CHAINS_MANAGE)
    form = DelegationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        cd = form.cleaned_data
        delegate = Person.objects.filter(email__iexact=cd["delegate"], is_active=True).first()
        starts, ends = cd["starts_at"], cd["ends_at"]
        if timezone.is_naive(starts):
            starts = timezone.make_aware(starts, dt.UTC)
        if timezone.is_naive(ends):
            ends = timezone.make_aware(ends, dt.UTC)
        if delegate is None:
            form.add_error("delegate", "Nobody active has that e-mail address.")
        else:
            delegation = run_for_form(
                request,
                lambda: approvals.create_delegation(
                    actor=user,
                    delegator=user,
                    delegate=delegate,
                    starts_at=starts,
                    ends_at=ends,
                    reason=cd["reason"],
                ),
                form=form,
                success=f"{delegate} stands in for you.",
            )
            if delegation is not None:
                return redirect("publishing:delegations")
    mine = Delegation.objects.filter(delegator=user) | Delegation.objects.filter(delegate=user)
    if user.can(Perm.APPROVAL_CHAINS_MANAGE):
        mine = Delegation.objects.all()
    return render(
        request,
        "publishing/delegations.html",
        {
            "form": form,
            "delegations": mine.select_related("delegator", "delegate")[:100],
            "now": timezone.now(),
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def delegation_revoke(request: HttpRequest, delegation_id: int) -> HttpResponse:
    user = _user(request)
    approvals.revoke_delegation(actor=user, delegation_id=delegation_id)
    messages.success(request, "Delegation revoked.")
    return redirect("publishing:delegations")


# --- Rogue posts and notifications ----------------------------------------------------------------


@login_required
def rogue_posts(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    qs = selectors.visible_rogue_posts(user)
    if (raw := request.GET.get("account", "")).isdigit() and int(raw) < 2**63:
        qs = qs.filter(account_id=int(raw))
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(request, "publishing/rogue.html", {"page_obj": page})


@login_required
@require_POST
def rogue_acknowledge(request: HttpRequest, rogue_id: int) -> HttpResponse:
    user = _user(request)
    run_and_flash(
        request,
        lambda: actions.acknowledge_rogue(
            actor=user, rogue_id=rogue_id, note=request.POST.get("note", "")[:5000]
        ),
    )
    return redirect(reverse("publishing:rogue"))


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    page = Paginator(Notification.objects.filter(person=user), 30).get_page(request.GET.get("page"))
    return render(request, "publishing/notifications.html", {"page_obj": page})


@login_required
@require_POST
def notification_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    note = mark_read(actor=_user(request), notification_id=notification_id)
    if note.url and request.POST.get("follow"):
        return redirect(note.url)
    return redirect("publishing:notifications")
