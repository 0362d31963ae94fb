from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from vetline.audit.models import AuditEvent
from vetline.core.errors import NotFound
from vetline.core.views_support import run_and_flash, run_for_form
from vetline.identity import actions
from vetline.identity.forms import OffboardForm, PeopleFilterForm, PersonForm, RoleForm, TokenForm
from vetline.identity.models import ApiToken, Person, TokenScope
from vetline.identity.permissions import require
from vetline.identity.roles import Perm, Role


def _user(request: HttpRequest) -> Person:
    return request.user  # type: ignore[return-value]


def _person(actor: Person, pk: int) -> Person:
    require(actor, Perm.PEOPLE_VIEW)
    return get_object_or_404(Person, pk=pk)


@login_required
def people_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.PEOPLE_VIEW)
    filters = PeopleFilterForm(request.GET or None)
    qs = Person.objects.prefetch_related("role_grants").order_by("full_name", "id")
    status = "active"
    if filters.is_valid():
        if q := filters.cleaned_data["q"]:
            qs = qs.filter(Q(full_name__icontains=q) | Q(email__icontains=q))
        if role := filters.cleaned_data["role"]:
            qs = qs.filter(role_grants__role=role)
        status = filters.cleaned_data["status"] or "active"
    if status == "active":
        qs = qs.filter(is_active=True)
    elif status == "offboarded":
        qs = qs.filter(is_active=False)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "identity/people.html",
        {
            "filters": filters,
            "page_obj": page,
            "querystring_base": params.urlencode() + "&" if params else "",
            "can_manage": user.can(Perm.PEOPLE_MANAGE),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def person_create(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.PEOPLE_MANAGE)
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        person = run_for_form(
            request,
            lambda: actions.create_person(
                actor=user,
                email=d["email"],
                full_name=d["full_name"],
                title=d["title"],
                business_unit=d["business_unit"],
                roles=[Role(r) for r in d["roles"]],
            ),
            form=form,
            success=lambda p: (
                f"{p} added. They set their password through “Forgotten your password?” "
                "on the sign-in page."
            ),
        )
        if person is not None:
            return redirect("identity:person", person.pk)
    return render(
        request, "identity/person_form.html", {"form": form}, status=422 if form.errors else 200
    )


@login_required
def person_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    person = _person(user, pk)
    can_manage = user.can(Perm.PEOPLE_MANAGE)
    held = sorted(person.roles)
    return render(
        request,
        "identity/person.html",
        {
            "person": person,
            "roles": held,
            "role_form": RoleForm(),
            "assignments": person.assignments.select_related("account"),
            "owned": person.owned_accounts.all(),
            "tokens": person.api_tokens.all()[:20] if can_manage else [],
            "events": AuditEvent.objects.filter(
                object_type="identity.person", object_id=str(person.pk)
            )[:15]
            if user.can(Perm.AUDIT_VIEW)
            else None,
            "can_manage": can_manage,
            "mfa_enrolled": actions.has_totp(person),
        },
    )


@login_required
@require_POST
def role_grant(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    person = _person(user, pk)
    require(user, Perm.PEOPLE_MANAGE)
    form = RoleForm(request.POST)
    if form.is_valid():
        role = Role(form.cleaned_data["role"])
        run_and_flash(
            request,
            lambda: actions.grant_role(actor=user, person=person, role=role),
            success=f"{person} now holds the {role.label} role.",
        )
    else:
        messages.error(request, "Choose a role.")
    return redirect("identity:person", person.pk)


@login_required
@require_POST
def role_revoke(request: HttpRequest, pk: int, role: str) -> HttpResponse:
    user = _user(request)
    person = _person(user, pk)
    require(user, Perm.PEOPLE_MANAGE)
    if role not in Role._value2member_map_:
        raise NotFound("No such role.")
    run_and_flash(
        request,
        lambda: actions.revoke_role(actor=user, person=person, role=Role(role)),
        success=f"{Role(role).label} role removed from {person}.",
        # A second click finds the role gone: say so on the person's page, not as a 404.
        propagate=(),
    )
    return redirect("identity:person", person.pk)


@login_required
@require_http_methods(["GET", "POST"])
def offboard(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    person = _person(user, pk)
    require(user, Perm.PEOPLE_MANAGE)
    form = OffboardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        report = run_for_form(
            request,
            lambda: actions.offboard_person(
                actor=user, person=person, reason=form.cleaned_data["reason"]
            ),
            form=form,
        )
        if report is not None:
            return render(request, "identity/offboarded.html", {"person": person, "report": report})
    return render(
        request,
        "identity/offboard.html",
        {
            "person": person,
            "form": form,
            "assignments": person.assignments.select_related("account"),
            "tokens": person.api_tokens.filter(revoked_at__isnull=True),
            "roles": sorted(person.roles),
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def unlock(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    person = _person(user, pk)
    actions.unlock_person(actor=user, person=person)
    messages.success(request, f"{person} can sign in again.")
    return redirect("identity:person", person.pk)


@login_required
@require_POST
def person_signout(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    person = _person(user, pk)
    actions.sign_out_everywhere(actor=user, person=person)
    messages.success(request, f"Every session of {person} has been ended.")
    return redirect("identity:person", person.pk)


@login_required
@require_POST
def signout_everywhere(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    actions.sign_out_everywhere(actor=user, person=user)
    update_session_auth_hash(request, user)  # keep this browser signed in
    messages.success(request, "You have been signed out of every other session.")
    return redirect("home")


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = TokenForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        issued = run_for_form(
            request,
            lambda: actions.create_api_token(
                actor=user,
                name=d["name"],
                scope=TokenScope(d["scope"]),
                expires_in_days=d["expires_in_days"],
            ),
            form=form,
        )
        if issued is not None:
            form = TokenForm()
    return render(
        request,
        "identity/tokens.html",
        {
            "form": form,
            "issued": issued,
            "tokens": ApiToken.objects.filter(person=user),
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    user = _user(request)
    token = ApiToken.objects.filter(pk=token_id, person=user).first()
    if token is None:
        raise NotFound("No such token.")
    run_and_flash(
        request,
        lambda: actions.revoke_api_token(actor=user, token=token),
        success=f"Token “{token.name}” revoked.",
    )
    return redirect("identity:tokens")
