"""Pages of profile vetting: the employee's profiles and the proposal form (with live screening
over HTMX), compliance's vetting inbox and review page with one-click approve or reject, and the
drift list and field-by-field drift page. Thin: every write is an action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from vetline.archive.blobs import BlobError, check_name, default_store
from vetline.core.errors import NotFound
from vetline.core.forms import errors_as_text
from vetline.core.views_support import run_and_flash, run_for_form
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.profiles import actions, approval, selectors
from vetline.profiles.forms import DecisionForm, DriftActionForm, ProposalForm
from vetline.profiles.models import ProfileDrift, ProfileRevision
from vetline.profiles.screening import field_texts, screen_profile
from vetline.profiles.states import DriftState, ProposalState


def _user(request: HttpRequest) -> Person:
    return request.user  # type: ignore[return-value]


@login_required
@require_GET
def my_profiles(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    rows = []
    for account in selectors.own_accounts(user):
        rows.append({"account": account, "proposal": selectors.proposal_for_account(account)})
    return render(
        request,
        "profiles/mine.html",
        {
            "rows": rows,
            "can_vet": selectors.can_vet(user),
            "inbox_count": selectors.vetting_inbox(user).count(),
            "drift_count": selectors.active_drifts(user).count(),
        },
    )


def _initial(revision: ProfileRevision | None) -> dict[str, Any]:
    if revision is None:
        return {}
    return {
        "display_name": revision.display_name,
        "title": revision.title,
        "bio": revision.bio,
        "links": "\n".join(revision.links or []),
    }


@login_required
@require_http_methods(["GET", "POST"])
def edit_profile(request: HttpRequest, account_id: int) -> HttpResponse:
    user = _user(request)
    account = selectors.get_own_account(user, account_id)
    proposal = selectors.proposal_for_account(account)
    current = proposal.current_revision if proposal else None
    if request.method == "POST":
        form = ProposalForm(request.POST, request.FILES)
        if form.is_valid():
            revision = run_for_form(
                request,
                lambda: actions.save_proposal(
                    actor=user,
                    account=account,
                    display_name=form.cleaned_data["display_name"],
                    bio=form.cleaned_data["bio"],
                    title=form.cleaned_data["title"],
                    links=form.link_list(),
                    photo=form.photo_bytes(),
                    remove_photo=form.cleaned_data["remove_photo"],
                    submit="submit" in request.POST,
                ),
                form=form,
                success=lambda r: (
                    f"Revision {r.number} saved"
                    + (
                        " and submitted to compliance."
                        if r.proposal.status == ProposalState.SUBMITTED
                        else "."
                    )
                ),
            )
            if revision is not None:
                return redirect("profiles:edit", account.pk)
    else:
        form = ProposalForm(initial=_initial(current))
    return render(
        request,
        "profiles/edit.html",
        {
            "account": account,
            "proposal": proposal,
            "current": current,
            "fields": selectors.highlighted_fields(current) if current else [],
            "form": form,
            "history": approval.requests_for(proposal) if proposal else [],
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def screen_preview(request: HttpRequest, account_id: int) -> HttpResponse:
    """Live screening while typing (HTMX): the highlights of the form as it stands, unsaved."""
    user = _user(request)
    selectors.get_own_account(user, account_id)
    form = ProposalForm(request.POST)
    form.is_valid()
    data = form.cleaned_data
    texts = field_texts(
        display_name=data.get("display_name", "")[:200],
        bio=data.get("bio", "")[:4000],
        title=data.get("title", "")[:300],
        links=[line.strip() for line in data.get("links", "").splitlines()][:20],
    )
    screening = screen_profile(texts)
    preview = ProfileRevision(
        display_name=texts["display_name"],
        bio=texts["bio"],
        title=texts["title"],
        links=[line for line in texts["links"].splitlines() if line],
        screening=screening,
        verdict=screening["verdict"],
    )
    return render(
        request,
        "profiles/_screening.html",
        {"fields": selectors.highlighted_fields(preview), "verdict": preview.verdict},
    )


@login_required
@require_POST
def submit_profile(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    proposal = selectors.get_visible_proposal(user, pk)
    run_and_flash(
        request,
        lambda: actions.submit_proposal(actor=user, proposal=proposal),
        success="Submitted to compliance.",
    )
    return redirect("profiles:edit", proposal.account_id)


@login_required
@require_POST
def withdraw_profile(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    proposal = selectors.get_visible_proposal(user, pk)
    run_and_flash(
        request,
        lambda: actions.withdraw_proposal(actor=user, proposal=proposal),
        success="Withdrawn: the profile is a draft again.",
        # Withdrawing the request is refused to anyone but whoever submitted it (the owner at
        # the time): news for this page, not a 403.
        propagate=(NotFound,),
    )
    return redirect("profiles:edit", proposal.account_id)


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.PROFILES_VET)
    items = []
    for proposal in selectors.vetting_inbox(user)[:100]:
        revision = proposal.current_revision
        if revision is None:
            continue
        items.append(
            {
                "proposal": proposal,
                "revision": revision,
                "fields": selectors.highlighted_fields(revision),
                "changes": selectors.revision_changes(proposal.approved_revision, revision)
                if proposal.approved_revision
                else [],
                "own": proposal.account.owner_id == user.pk,
            }
        )
    return render(request, "profiles/inbox.html", {"items": items})


@login_required
@require_GET
def review(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    proposal = selectors.get_visible_proposal(user, pk)
    revision = proposal.current_revision
    can_decide = bool(
        revision is not None
        and proposal.status == ProposalState.SUBMITTED
        and selectors.can_vet(user)
        and proposal.account.owner_id != user.pk
        and revision.created_by_id != user.pk
    )
    return render(
        request,
        "profiles/review.html",
        {
            "proposal": proposal,
            "revision": revision,
            "fields": selectors.highlighted_fields(revision) if revision else [],
            "changes": selectors.revision_changes(proposal.approved_revision, revision)
            if revision and proposal.approved_revision
            else [],
            "can_decide": can_decide,
            "history": approval.requests_for(proposal),
            "revisions": proposal.revisions.select_related("created_by").order_by("-number"),
            "drifts": selectors.visible_drifts(user).filter(account=proposal.account)[:20],
        },
    )


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.PROFILES_VET)
    proposal = selectors.get_visible_proposal(user, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_as_text(form))
        return redirect("profiles:review", proposal.pk)
    data = form.cleaned_data
    if data["decision"] == "approve":
        decided = run_and_flash(
            request,
            lambda: actions.approve_proposal(
                actor=user,
                proposal=proposal,
                revision_number=data["revision"],
                comment=data["comment"],
            ),
            success=f"Approved the profile of {proposal.account}.",
        )
    else:
        decided = run_and_flash(
            request,
            lambda: actions.reject_proposal(
                actor=user,
                proposal=proposal,
                revision_number=data["revision"],
                comment=data["comment"],
            ),
            success=f"Returned the profile of {proposal.account} with comments.",
        )
    if decided is None:
        return redirect("profiles:review", proposal.pk)
    if request.POST.get("next") == "inbox":
        return redirect("profiles:inbox")
    return redirect("profiles:review", proposal.pk)


@login_required
@require_GET
def revision_detail(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    user = _user(request)
    proposal = selectors.get_visible_proposal(user, pk)
    revision = selectors.get_revision(proposal, number)
    previous = proposal.revisions.filter(number__lt=number).order_by("-number").first()
    return render(
        request,
        "profiles/revision.html",
        {
            "proposal": proposal,
            "revision": revision,
            "fields": selectors.highlighted_fields(revision),
            "changes": selectors.revision_changes(previous, revision),
            "previous": previous,
        },
    )


@login_required
@require_GET
def photo(request: HttpRequest, sha256: str) -> HttpResponse:
    user = _user(request)
    try:
        check_name(sha256)
    except BlobError as exc:
        raise NotFound("No such photo.") from exc
    if not selectors.can_see_photo(user, sha256):
        raise NotFound("No such photo.")
    revision = ProfileRevision.objects.filter(photo_sha256=sha256).first()
    assert revision is not None
    try:
        data = default_store().get(sha256)
    except BlobError as exc:
        raise NotFound("The photo's bytes are missing or damaged.") from exc
    response = HttpResponse(data, content_type=revision.photo_mime_type or "image/png")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600, immutable"
    return response


@login_required
@require_GET
def drift_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    show = request.GET.get("status", "active")
    qs = selectors.visible_drifts(user)
    if show == "active":
        qs = qs.filter(status__in=[DriftState.OPEN.value, DriftState.ACKNOWLEDGED.value])
    elif show in {s.value for s in DriftState}:
        qs = qs.filter(status=show)
    page = Paginator(qs.order_by("-detected_at", "-pk"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "profiles/drift_list.html",
        {
            "page_obj": page,
            "show": show,
            "states": list(DriftState),
            "querystring_base": f"status={show}&",
        },
    )


@login_required
@require_GET
def drift_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    drift = selectors.get_visible_drift(user, pk)
    return render(
        request,
        "profiles/drift_detail.html",
        {
            "drift": drift,
            "rows": selectors.drift_rows(drift),
            "can_act": selectors.can_vet(user) and drift.status != DriftState.RESOLVED,
            "form": DriftActionForm(),
        },
    )


def _drift_action(
    request: HttpRequest,
    pk: int,
    act: Callable[[Person, ProfileDrift, str], ProfileDrift],
    done: str,
) -> HttpResponse:
    user = _user(request)
    drift = selectors.get_visible_drift(user, pk)
    form = DriftActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_as_text(form))
    else:
        run_and_flash(request, lambda: act(user, drift, form.cleaned_data["comment"]), success=done)
    return redirect("profiles:drift", drift.pk)


@login_required
@require_POST
def drift_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    return _drift_action(
        request,
        pk,
        lambda u, d, comment: actions.acknowledge_drift(actor=u, drift=d, comment=comment),
        "Drift acknowledged.",
    )


@login_required
@require_POST
def drift_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    return _drift_action(
        request,
        pk,
        lambda u, d, comment: actions.resolve_drift(actor=u, drift=d, resolution=comment),
        "Drift resolved.",
    )
