from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from vetline.accounts.models import SocialAccount
from vetline.archive import search_actions, selectors
from vetline.archive.models import QuarantineStatus
from vetline.identity.models import Person


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@login_required
def record_list(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    account_id = _int_or_none(request.GET.get("account"))
    records = selectors.records(user, account_id=account_id)
    page = Paginator(records, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "archive/list.html",
        {
            "page_obj": page,
            "accounts": SocialAccount.objects.order_by("network", "handle"),
            "account_id": account_id,
            "querystring_base": f"account={account_id}&" if account_id else "",
        },
    )


@login_required
def record_detail(request: HttpRequest, record_id: int) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    record = selectors.get_record(user, record_id)
    search_actions.audit_record_view(actor=user, record=record)
    return render(
        request,
        "archive/detail.html",
        {
            "record": record,
            "versions": selectors.versions_of(record),
            "verdicts": record.verdicts.all()[:5],
            "proof": selectors.inclusion_proof(record),
            "raw_preview": bytes(record.raw_payload)[:4000].decode("utf-8", errors="replace"),
        },
    )


@login_required
def quarantine_list(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    status = request.GET.get("status", QuarantineStatus.QUARANTINED)
    items = selectors.quarantined(user, status=status or None)
    page = Paginator(items, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "archive/quarantine.html",
        {"page_obj": page, "status": status, "querystring_base": f"status={status}&"},
    )
