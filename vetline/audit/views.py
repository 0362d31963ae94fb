from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from vetline.audit.api import stream_export
from vetline.audit.forms import AuditFilterForm
from vetline.audit.selectors import filter_events
from vetline.core.errors import ValidationFailed
from vetline.core.forms import errors_as_text
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm


@login_required
def event_list(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    require(user, Perm.AUDIT_VIEW)
    form = AuditFilterForm(request.GET or None)
    events = filter_events(form.to_filter())
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "audit/list.html",
        {
            "form": form,
            "page_obj": page,
            "querystring_base": params.urlencode() + "&" if params else "",
            "export_query": params.urlencode(),
            "can_export": user.can(Perm.AUDIT_EXPORT),
        },
        status=422 if form.errors else 200,
    )


@login_required
def event_export(request: HttpRequest) -> StreamingHttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    fmt = request.GET.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise ValidationFailed("Export format must be csv or json.")
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        raise ValidationFailed("The filter is not valid: " + errors_as_text(form))
    return stream_export(actor=user, f=form.to_filter(), fmt=fmt)
