"""Pages of archive search: the search page (query, filters, highlighted results, keyset
pages, saved searches) and the conversation view."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from vetline.accounts.models import AccountKind, Network, SocialAccount
from vetline.archive import search_actions
from vetline.archive.models import Direction, RecordKind
from vetline.archive.search import QueryError, highlight
from vetline.core.errors import DomainError
from vetline.core.views_support import run_and_flash
from vetline.identity.models import Person
from vetline.identity.permissions import require
from vetline.identity.roles import Perm

PARAM_KEYS = ("q", *search_actions.FILTER_KEYS)


def _params(source: dict[str, str]) -> dict[str, str]:
    return {k: source[k].strip() for k in PARAM_KEYS if source.get(k, "").strip()}


@login_required
@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    require(user, Perm.ARCHIVE_VIEW)
    params = _params(request.GET.dict())
    context: dict[str, object] = {
        "params": params,
        "accounts": SocialAccount.objects.order_by("network", "handle"),
        "people": Person.objects.filter(owned_accounts__kind=AccountKind.EMPLOYEE)
        .distinct()
        .order_by("full_name", "id"),
        "networks": Network.choices,
        "kinds": RecordKind.choices,
        "directions": Direction.choices,
        "verdicts": search_actions.VERDICTS,
        "saved": search_actions.saved_searches(user),
        "can_export": user.can(Perm.ARCHIVE_EXPORT),
        "hits": None,
        "error": "",
    }
    status = 200
    if params:
        try:
            filters = search_actions.parse_filters(params)
            result = search_actions.run_search(
                actor=user,
                query=params.get("q", ""),
                filters=filters,
                after=request.GET.get("after", "").strip(),
            )
        except (QueryError, DomainError) as exc:
            context["error"] = exc.message if isinstance(exc, DomainError) else str(exc)
            status = 422
        else:
            context["hits"] = [(r, highlight(r.text, result.node)) for r in result.page.items]
            context["partial"] = result.page.partial
            if result.page.next_cursor is not None:
                context["next_query"] = urlencode(
                    {**params, "after": result.page.next_cursor.encode()}
                )
            context["first_page"] = not request.GET.get("after")
            context["this_query"] = urlencode(params)
    return render(request, "archive/search/search.html", context, status=status)


@login_required
@require_POST
def search_save(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    params = _params(request.POST.dict())
    filters = {k: v for k, v in params.items() if k != "q"}
    run_and_flash(
        request,
        lambda: search_actions.save_search(
            actor=user,
            name=request.POST.get("name", ""),
            query=params.get("q", ""),
            filters=filters,
        ),
        success=lambda saved: f"Saved the search “{saved.name}”.",
    )
    return redirect(f"{reverse('archive:search')}?{urlencode(params)}")


@login_required
@require_POST
def search_saved_delete(request: HttpRequest, saved_id: int) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    search_actions.delete_saved_search(actor=user, saved_id=saved_id)
    messages.success(request, "Saved search deleted.")
    return redirect("archive:search")


@login_required
@require_GET
def conversation(request: HttpRequest, account_id: int) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    conversation_id = request.GET.get("c", "")[:300]
    thread_id = request.GET.get("thread", "")[:300]
    items = search_actions.view_conversation(
        actor=user, account_id=account_id, conversation_id=conversation_id, thread_id=thread_id
    )
    return render(
        request,
        "archive/search/conversation.html",
        {
            "items": items,
            "account": items[0].first.account,
            "conversation_id": conversation_id,
            "thread_id": thread_id,
        },
    )
