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
from vetline.archive.export.selection import RecordSelection
from vetline.core.errors import DomainError
from vetline.core.forms import form_error
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm


class ExportForm(forms.Form):
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
            return [int(p) for p in raw.replace(",", " ").split()]
        except ValueError as exc:
            raise forms.ValidationError("Record ids are whole numbers.") from exc

    def selection(self) -> RecordSelection:
        data: dict[str, Any] = self.cleaned_data
        account = data.get("account")
        return RecordSelection.from_dict(
            {
                "account_id": account.pk if account else None,
                "date_from": data.get("date_from"),
                "date_to": data.get("date_to"),
                "conversation_id": data.get("conversation_id"),
                "record_ids": data.get("record_ids") or [],
            }
        )


@login_required
@require_http_methods(["GET", "POST"])
def export_new(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    require(user, Perm.ARCHIVE_EXPORT)
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = actions.start_export(actor=user, selection=form.selection())
        except DomainError as exc:
            if exc.status >= 403 and exc.status != 422:
                raise
            form_error(form, exc)
        else:
            return redirect("archive:export_detail", export_id=job.id)
    return render(request, "archive/export/new.html", {"form": form})


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
