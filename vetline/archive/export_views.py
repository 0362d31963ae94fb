"""Export pages: choose what to export, watch the progress (HTMX polling), download."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from vetline.accounts.models import SocialAccount
from vetline.archive.export import actions
from vetline.archive.export.selection import MAX_QUERY_CHARS, Selection, selection_from_input
from vetline.archive.models_retention import LegalHold
from vetline.archive.search_actions import FILTER_KEYS
from vetline.core.errors import Conflict, Forbidden, NotFound
from vetline.core.http import MAX_DB_ID
from vetline.core.views_support import run_for_form
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

#: The search page's filter parameters, carried to the export form when exporting a search.
SEARCH_FILTER_KEYS = FILTER_KEYS


class ExportForm(forms.Form):
    hold = forms.ModelChoiceField(
        queryset=LegalHold.objects.order_by("-placed_at"),
        required=False,
        label="Legal hold",
        help_text="Every record the hold covers (released holds included).",
    )
    query = forms.CharField(
        required=False,
        max_length=MAX_QUERY_CHARS,
        label="Search query",
        help_text="Everything this archive search finds, as on the search page.",
    )
    search_filters = forms.JSONField(required=False, widget=forms.HiddenInput)
    account = forms.ModelChoiceField(
        queryset=SocialAccount.objects.order_by("network", "handle"), required=False
    )
    date_from = forms.DateField(
        required=False, label="From (UTC)", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To (UTC, inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
    conversation_id = forms.CharField(required=False, max_length=300, label="Conversation id")
    record_ids = forms.CharField(
        required=False,
        label="Record ids",
        help_text="Comma- or space-separated archive record ids.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_record_ids(self) -> list[int]:
        raw = self.cleaned_data.get("record_ids") or ""
        try:
            ids = [int(p) for p in raw.replace(",", " ").split()]
        except ValueError as exc:
            raise forms.ValidationError("Record ids are whole numbers.") from exc
        if any(not 0 < i <= MAX_DB_ID for i in ids):
            raise forms.ValidationError("That is not a record id.")
        return ids

    def clean_search_filters(self) -> dict[str, Any]:
        value = self.cleaned_data.get("search_filters") or {}
        if not isinstance(value, dict) or set(value) - set(SEARCH_FILTER_KEYS):
            raise forms.ValidationError("Those are not search filters.")
        return value

    def selection(self) -> Selection:
        data: dict[str, Any] = self.cleaned_data
        account = data.get("account")
        hold = data.get("hold")
        return selection_from_input(
            {
                "hold_id": hold.pk if hold else None,
                "query": data.get("query"),
                "search_filters": data.get("search_filters") or {},
                "account_id": account.pk if account else None,
                "date_from": data.get("date_from"),
                "date_to": data.get("date_to"),
                "conversation_id": data.get("conversation_id"),
                "record_ids": data.get("record_ids") or [],
            }
        )


def _initial(request: HttpRequest) -> dict[str, Any]:
    """Pre-fill from a link: ``?hold=ID`` from a legal hold, or the search page's parameters."""
    initial: dict[str, Any] = {}
    hold = request.GET.get("hold", "")
    if hold.isdigit() and 0 < int(hold) <= MAX_DB_ID:
        initial["hold"] = int(hold)
    if request.GET.get("q"):
        initial["query"] = request.GET["q"][:MAX_QUERY_CHARS]
    filters = {k: request.GET[k][:300] for k in SEARCH_FILTER_KEYS if request.GET.get(k)}
    if filters:
        initial["search_filters"] = filters
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def export_new(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    require(user, Perm.ARCHIVE_EXPORT)
    form = ExportForm(request.POST or None, initial=_initial(request))
    if request.method == "POST" and form.is_valid():
        job = run_for_form(
            request,
            lambda: actions.start_export(actor=user, selection=form.selection()),
            form=form,
            propagate=(Forbidden, NotFound, Conflict),
        )
        if job is not None:
            return redirect("archive:export_detail", export_id=job.id)
    filters = form["search_filters"].value() if request.method == "POST" else None
    if not isinstance(filters, dict):
        filters = form.initial.get("search_filters") or {}
    return render(request, "archive/export/new.html", {"form": form, "search_filters": filters})


@login_required
def export_detail(request: HttpRequest, export_id: str) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    job = actions.get_export(actor=user, export_id=export_id)
    template = "archive/export/_progress.html" if request.htmx else "archive/export/detail.html"  # type: ignore[attr-defined]
    return render(request, template, {"job": job})


@login_required
def export_download(request: HttpRequest, export_id: str) -> FileResponse:
    user: Person = request.user  # type: ignore[assignment]
    path = actions.open_download(actor=user, export_id=export_id)
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
