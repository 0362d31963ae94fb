"""Import pages: upload an export for an account, then watch the job (HTMX polling)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from vetline.accounts.models import SocialAccount
from vetline.accounts.selectors import visible_accounts
from vetline.core.errors import Conflict, Forbidden, NotFound
from vetline.core.views_support import run_for_form
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm
from vetline.importers import actions
from vetline.importers.formats import FORMATS


class ImportForm(forms.Form):
    format = forms.ChoiceField(choices=[(f.name, f.label) for f in FORMATS.values()])
    account: forms.ModelChoiceField[SocialAccount] = forms.ModelChoiceField(
        queryset=SocialAccount.objects.none(), help_text="The archive account it belongs to."
    )
    file = forms.FileField(help_text="The export as downloaded: zip, tar.gz, CSV or CAR.")

    def __init__(self, *args: object, person: Person, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["account"].queryset = visible_accounts(person).order_by(  # type: ignore[attr-defined]
            "network", "handle"
        )


@login_required
@require_http_methods(["GET", "POST"])
def import_new(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    require(user, Perm.ACCOUNTS_MANAGE)
    form = ImportForm(request.POST or None, request.FILES or None, person=user)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        job = run_for_form(
            request,
            lambda: actions.start_import(
                actor=user,
                account_id=form.cleaned_data["account"].pk,
                fmt=form.cleaned_data["format"],
                file_name=upload.name or "upload",
                chunks=upload.chunks(),
            ),
            form=form,
            propagate=(Forbidden, NotFound, Conflict),
        )
        if job is not None:
            return redirect("importers:detail", import_id=job.id)
    return render(request, "importers/new.html", {"form": form, "formats": FORMATS.values()})


@login_required
def import_detail(request: HttpRequest, import_id: str) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    job = actions.get_import(actor=user, import_id=import_id)
    template = "importers/_progress.html" if request.htmx else "importers/detail.html"  # type: ignore[attr-defined]
    return render(request, template, {"job": job, "format": FORMATS.get(job.format)})
