from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from vetline.accounts import actions, selectors
from vetline.accounts.forms import (
    AccountEditForm,
    AccountFilterForm,
    AccountForm,
    AssignmentForm,
    CredentialForm,
    OrgSettingsForm,
)
from vetline.accounts.models import AccountKind, CredentialKind, Network, OrgSettings
from vetline.core.errors import NotFound
from vetline.core.views_support import run_for_form
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Capability, Perm


def _user(request: HttpRequest) -> Person:
    return request.user  # type: ignore[return-value]


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    filters = AccountFilterForm(request.GET or None)
    qs = selectors.accounts_with_counts(user).order_by("network", "handle")
    if filters.is_valid():
        if q := filters.cleaned_data["q"]:
            qs = qs.filter(Q(handle__icontains=q) | Q(display_name__icontains=q))
        if network := filters.cleaned_data["network"]:
            qs = qs.filter(network=network)
        if kind := filters.cleaned_data["kind"]:
            qs = qs.filter(kind=kind)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    org = OrgSettings.load()
    return render(
        request,
        "accounts/list.html",
        {
            "filters": filters,
            "page_obj": page,
            "org": org,
            "querystring_base": params.urlencode() + "&" if params else "",
            "can_manage": user.can(Perm.ACCOUNTS_MANAGE),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def account_create(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.ACCOUNTS_MANAGE)
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        account = run_for_form(
            request,
            lambda: actions.register_account(
                actor=user,
                network=Network(data["network"]),
                handle=data["handle"],
                kind=AccountKind(data["kind"]),
                owner=data["owner"],
                display_name=data["display_name"],
                business_unit=data["business_unit"],
                publisher_cap=data["publisher_cap"],
            ),
            form=form,
            success=lambda a: f"{a} registered.",
        )
        if account is not None:
            return redirect("accounts:detail", account.pk)
    return render(
        request,
        "accounts/form.html",
        {"form": form, "title": "Register an account"},
        status=422 if form.errors else 200,
    )


def _detail_context(user: Person, account: Any, **extra: Any) -> dict[str, Any]:
    can_manage = user.can(Perm.ACCOUNTS_MANAGE)
    assignments = account.assignments.select_related("person").order_by(
        "capability", "person__full_name"
    )
    publishers = sum(1 for a in assignments if a.capability == Capability.PUBLISH.value)
    context = {
        "account": account,
        "assignments": assignments,
        "publisher_count": publishers,
        "cap": account.effective_publisher_cap(),
        "can_manage": can_manage,
        "can_credentials": user.can(Perm.CREDENTIALS_MANAGE),
        "my_capabilities": [c.value for c in Capability if selectors.can_act_on(user, account, c)],
    }
    from vetline.connectors.selectors import account_connection

    context["conn"] = account_connection(account)
    if can_manage:
        context.setdefault("assignment_form", AssignmentForm())
    if context["can_credentials"]:
        context["credentials"] = account.credentials.select_related("set_by", "revoked_by")[:20]
        context.setdefault("credential_form", CredentialForm())
    context.update(extra)
    return context


@login_required
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    account = selectors.get_visible_account(user, pk)
    return render(request, "accounts/detail.html", _detail_context(user, account))


@login_required
@require_http_methods(["GET", "POST"])
def account_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    account = selectors.get_visible_account(user, pk)
    require(user, Perm.ACCOUNTS_MANAGE)
    initial = {
        "display_name": account.display_name,
        "owner": account.owner,
        "business_unit": account.business_unit,
        "publisher_cap": account.publisher_cap,
        "is_active": account.is_active,
    }
    form = AccountEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        updated = run_for_form(
            request,
            lambda: actions.update_account(
                actor=user,
                account=account,
                display_name=d["display_name"],
                business_unit=d["business_unit"],
                owner=d["owner"],
                publisher_cap=d["publisher_cap"],
                is_active=d["is_active"],
            ),
            form=form,
            success="Account updated.",
        )
        if updated is not None:
            return redirect("accounts:detail", account.pk)
    return render(
        request,
        "accounts/form.html",
        {"form": form, "title": f"Edit {account}", "account": account},
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def assignment_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    account = selectors.get_visible_account(user, pk)
    require(user, Perm.ACCOUNTS_MANAGE)
    form = AssignmentForm(request.POST)
    status = 200
    if form.is_valid():
        assigned = run_for_form(
            request,
            lambda: actions.assign_person(
                actor=user,
                account=account,
                person=form.cleaned_data["person"],
                capability=Capability(form.cleaned_data["capability"]),
            ),
            form=form,
            success=lambda a: f"{a.person} may now {a.capability} on {account}.",
        )
        if assigned is not None:
            if not request.htmx:  # type: ignore[attr-defined]
                return redirect("accounts:detail", account.pk)
            form = AssignmentForm()
    if form.errors:
        status = 422
    ctx = _detail_context(user, account, assignment_form=form)
    template = "accounts/_assignments.html" if request.htmx else "accounts/detail.html"  # type: ignore[attr-defined]
    # htmx swaps 4xx responses only when told to; the partial carries the field errors.
    response = render(request, template, ctx, status=200 if request.htmx else status)  # type: ignore[attr-defined]
    return response


@login_required
@require_POST
def assignment_remove(request: HttpRequest, pk: int, assignment_id: int) -> HttpResponse:
    user = _user(request)
    account = selectors.get_visible_account(user, pk)
    require(user, Perm.ACCOUNTS_MANAGE)
    assignment = account.assignments.filter(pk=assignment_id).select_related("person").first()
    if assignment is None:
        raise NotFound("That assignment no longer exists.")
    actions.remove_assignment(actor=user, assignment=assignment)
    messages.success(request, f"{assignment.person} may no longer {assignment.capability}.")
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "accounts/_assignments.html", _detail_context(user, account))
    return redirect("accounts:detail", account.pk)


@login_required
@require_POST
def credential_set(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    account = selectors.get_visible_account(user, pk)
    require(user, Perm.CREDENTIALS_MANAGE)
    form = CredentialForm(request.POST)
    if form.is_valid():
        credential = run_for_form(
            request,
            lambda: actions.set_credential(
                actor=user,
                account=account,
                kind=CredentialKind(form.cleaned_data["kind"]),
                secret=form.cleaned_data["secret"],
                expires_at=form.cleaned_data["expires_at"],
            ),
            form=form,
            success="Credential stored and encrypted. It will not be shown again.",
        )
        if credential is not None:
            return redirect("accounts:detail", account.pk)
    return render(
        request,
        "accounts/detail.html",
        _detail_context(user, account, credential_form=form),
        status=422,
    )


@login_required
@require_POST
def credential_revoke(request: HttpRequest, pk: int, credential_id: int) -> HttpResponse:
    user = _user(request)
    account = selectors.get_visible_account(user, pk)
    require(user, Perm.CREDENTIALS_MANAGE)
    credential = account.credentials.filter(pk=credential_id).first()
    if credential is None:
        raise NotFound("No such credential.")
    actions.revoke_credential(actor=user, credential=credential)
    messages.success(request, "Credential revoked. Vetline can no longer act with it.")
    return redirect("accounts:detail", account.pk)


@login_required
@require_http_methods(["GET", "POST"])
def org_settings(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.ORG_MANAGE)
    org = OrgSettings.load()
    form = OrgSettingsForm(
        request.POST or None, initial={"default_publisher_cap": org.default_publisher_cap}
    )
    if request.method == "POST" and form.is_valid():
        saved = run_for_form(
            request,
            lambda: actions.set_org_publisher_cap(
                actor=user, cap=form.cleaned_data["default_publisher_cap"]
            ),
            form=form,
            success="Settings saved.",
        )
        if saved is not None:
            return redirect("accounts:org_settings")
    return render(
        request,
        "accounts/org_settings.html",
        {"form": form, "org": org},
        status=422 if form.errors else 200,
    )
