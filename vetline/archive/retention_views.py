"""The retention page: record classes (periods editable by compliance officers), legal holds
with place and release forms, the last disposal runs and a dry-run preview."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from vetline.accounts.models import AccountKind, SocialAccount
from vetline.archive import retention_actions as actions
from vetline.archive import retention_selectors as selectors
from vetline.core.forms import errors_as_text
from vetline.core.views_support import run_for_form
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm


def _user(request: HttpRequest) -> Person:
    return request.user  # type: ignore[return-value]


class RecordClassForm(forms.Form):
    retention_days = forms.IntegerField(min_value=1, max_value=36500)
    easily_accessible_days = forms.IntegerField(min_value=0, max_value=36500)
    label = forms.CharField(max_length=120, required=False)


class ScopeForm(forms.Form):
    """What a hold covers: custodians, date range, query."""

    accounts = forms.ModelMultipleChoiceField(
        queryset=SocialAccount.objects.order_by("network", "handle"), required=False
    )
    people = forms.ModelMultipleChoiceField(
        queryset=Person.objects.filter(is_active=True).order_by("full_name"),
        required=False,
        help_text="Held through the personal-for-business accounts they own.",
    )
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    query = forms.CharField(max_length=500, required=False, help_text="Text contains (any case)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end of the date range is before its start.")
        return data

    @classmethod
    def of(cls, hold: Any) -> ScopeForm:
        return cls(
            initial={
                "accounts": list(hold.accounts.all()),
                "people": list(hold.people.all()),
                "date_from": hold.date_from,
                "date_to": hold.date_to,
                "query": hold.query,
            }
        )


class HoldForm(ScopeForm):
    matter_name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    field_order = ["matter_name", "description", "accounts", "people", "date_from", "date_to"]


class ReleaseForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)


def _context(user: Person, **extra: Any) -> dict[str, Any]:
    preview = actions.dispose_expired(now=timezone.now(), dry_run=True)
    return {
        "classes": selectors.record_classes(user),
        "active_holds": selectors.holds(user, active=True),
        "released_holds": selectors.holds(user, active=False)[:20],
        "runs": selectors.disposal_runs(user)[:10],
        "preview": preview,
        "can_manage": user.can(Perm.LEGAL_HOLD),
        "hold_form": extra.pop("hold_form", None) or HoldForm(),
        "employee_kind": AccountKind.EMPLOYEE,
        **extra,
    }


@login_required
def retention_index(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.ARCHIVE_VIEW)
    return render(request, "archive/retention/index.html", _context(user))


@login_required
@require_POST
def record_class_edit(request: HttpRequest, code: str) -> HttpResponse:
    user = _user(request)
    record_class = selectors.get_record_class(user, code)
    require(user, Perm.LEGAL_HOLD)
    form = RecordClassForm(request.POST)
    if form.is_valid():
        updated = run_for_form(
            request,
            lambda: actions.update_record_class(
                actor=user,
                record_class=record_class,
                retention_days=form.cleaned_data["retention_days"],
                easily_accessible_days=form.cleaned_data["easily_accessible_days"],
                label=form.cleaned_data["label"],
            ),
            form=form,
            success=f"Retention of {record_class.code} updated.",
        )
        if updated is not None:
            return redirect("archive:retention:index")
    return render(
        request,
        "archive/retention/index.html",
        _context(user, class_error=f"{record_class.code}: {errors_as_text(form)}"),
        status=422,
    )


@login_required
@require_POST
def hold_place(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.LEGAL_HOLD)
    form = HoldForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        hold = run_for_form(
            request,
            lambda: actions.place_legal_hold(
                actor=user,
                matter_name=data["matter_name"],
                description=data["description"],
                accounts=list(data["accounts"]),
                people=list(data["people"]),
                date_from=data["date_from"],
                date_to=data["date_to"],
                query=data["query"],
            ),
            form=form,
            success=lambda h: f"Legal hold “{h.matter_name}” placed.",
        )
        if hold is not None:
            return redirect("archive:retention:hold", hold.pk)
    return render(
        request, "archive/retention/index.html", _context(user, hold_form=form), status=422
    )


def _hold_page(
    request: HttpRequest, user: Person, hold: Any, *, status: int = 200, **forms_: Any
) -> HttpResponse:
    return render(
        request,
        "archive/retention/hold.html",
        {
            "hold": hold,
            "custodian_accounts": SocialAccount.objects.filter(
                pk__in=selectors.hold_custodian_accounts(hold)
            ).order_by("network", "handle"),
            "held_records": selectors.held_record_count(hold),
            "release_form": forms_.get("release_form") or ReleaseForm(),
            "scope_form": forms_.get("scope_form") or ScopeForm.of(hold),
            "can_manage": user.can(Perm.LEGAL_HOLD),
            "can_export": user.can(Perm.ARCHIVE_EXPORT),
        },
        status=status,
    )


@login_required
def hold_detail(request: HttpRequest, hold_id: int) -> HttpResponse:
    user = _user(request)
    return _hold_page(request, user, selectors.get_hold(user, hold_id))


@login_required
@require_POST
def hold_scope(request: HttpRequest, hold_id: int) -> HttpResponse:
    user = _user(request)
    hold = selectors.get_hold(user, hold_id)
    require(user, Perm.LEGAL_HOLD)
    form = ScopeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        updated = run_for_form(
            request,
            lambda: actions.update_legal_hold_scope(
                actor=user,
                hold=hold,
                accounts=list(data["accounts"]),
                people=list(data["people"]),
                date_from=data["date_from"],
                date_to=data["date_to"],
                query=data["query"],
            ),
            form=form,
            success=f"What legal hold “{hold.matter_name}” covers was changed.",
        )
        if updated is not None:
            return redirect("archive:retention:hold", hold.pk)
    hold.refresh_from_db()
    status = 409 if hold.released_at is not None else 422
    return _hold_page(request, user, hold, status=status, scope_form=form)


@login_required
@require_POST
def hold_release(request: HttpRequest, hold_id: int) -> HttpResponse:
    user = _user(request)
    hold = selectors.get_hold(user, hold_id)
    require(user, Perm.LEGAL_HOLD)
    form = ReleaseForm(request.POST)
    if form.is_valid():
        released = run_for_form(
            request,
            lambda: actions.release_legal_hold(
                actor=user, hold=hold, reason=form.cleaned_data["reason"]
            ),
            form=form,
            success=f"Legal hold “{hold.matter_name}” released.",
        )
        if released is not None:
            return redirect("archive:retention:hold", hold.pk)
    status = 409 if hold.released_at is not None else 422
    return _hold_page(request, user, hold, status=status, release_form=form)
