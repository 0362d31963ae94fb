"""Pages: connecting accounts (OAuth start and callback, consent links), capture now, alerts,
and the sandbox timeline browser."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from vetline.accounts.selectors import get_visible_account, visible_accounts
from vetline.connectors import actions, selectors
from vetline.connectors.forms import AppPasswordForm
from vetline.connectors.sandbox.models import SandboxAccount, SandboxPost
from vetline.core.errors import DomainError, NotFound
from vetline.core.views_support import run_for_form
from vetline.identity.models import Person


def _user(request: HttpRequest) -> Person:
    return request.user  # type: ignore[return-value]


def _callback_uri(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("connectors:oauth_callback"))


@login_required
@require_POST
def connect_start(request: HttpRequest, account_id: int) -> HttpResponse:
    user = _user(request)
    account = get_visible_account(user, account_id)
    if selectors.connects_with_app_password(account):
        return redirect("connectors:connect_app_password", account.pk)
    start = actions.start_connection(
        actor=user, account=account, redirect_uri=_callback_uri(request)
    )
    return redirect(start.url)


@login_required
@require_http_methods(["GET", "POST"])
def connect_app_password(request: HttpRequest, account_id: int) -> HttpResponse:
    """Connect an account by signing in with an app password (Bluesky; the sandbox for
    practice): an administrator for a corporate account, the owner for their own."""
    user = _user(request)
    account = get_visible_account(user, account_id)
    actions.may_connect_with_app_password(actor=user, account=account)
    summary = selectors.account_connection(account)
    if not summary.capabilities.get("app_password"):
        raise NotFound("This account's network is not connected with an app password.")
    form = AppPasswordForm(request.POST or None, initial={"identifier": account.handle})
    if request.method == "POST" and form.is_valid():
        connection = run_for_form(
            request,
            lambda: actions.connect_with_app_password(
                actor=user,
                account=account,
                identifier=form.cleaned_data["identifier"],
                app_password=form.cleaned_data["app_password"],
            ),
            form=form,
            success=f"{account} is connected. Capture starts shortly.",
        )
        if connection is not None:
            return redirect("accounts:detail", account.pk)
    return render(
        request,
        "connectors/app_password.html",
        {"form": form, "account": account, "summary": summary},
        status=422 if form.errors else 200,
    )


@login_required
@require_POST
def check_access(request: HttpRequest, account_id: int) -> HttpResponse:
    """Check again what the connection's granted access allows (the capability probe)."""
    user = _user(request)
    account = get_visible_account(user, account_id)
    actions.request_probe(actor=user, account=account)
    messages.success(request, f"Checking what the access to {account} allows.")
    return redirect(reverse("accounts:detail", args=[account.pk]) + "#connection")


@login_required
def oauth_callback(request: HttpRequest) -> HttpResponse:
    """Where the network sends the account holder back. Only the person who started the flow
    can finish it."""
    user = _user(request)
    if error := request.GET.get("error"):
        messages.error(request, f"The network did not grant access ({error[:100]}).")
        return redirect("home")
    connection = actions.complete_connection(
        actor=user,
        state=request.GET.get("state", ""),
        code=request.GET.get("code", ""),
        redirect_uri=_callback_uri(request),
    )
    messages.success(request, f"{connection.account} is connected. Capture starts shortly.")
    if visible_accounts(user).filter(pk=connection.account_id).exists():
        return redirect("accounts:detail", connection.account_id)
    return redirect("home")


@login_required
@require_POST
def consent_link_create(request: HttpRequest, account_id: int) -> HttpResponse:
    user = _user(request)
    account = get_visible_account(user, account_id)
    issued = actions.create_consent_link(actor=user, account=account)
    messages.success(
        request,
        f"A consent link was e-mailed to {issued.link.person}. It works once, for them only, "
        f"until {issued.link.expires_at:%d %b %Y %H:%M}.",
    )
    return redirect("accounts:detail", account.pk)


@login_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest, token: str) -> HttpResponse:
    """The employee's side of a consent link: what will happen, then off to the network."""
    user = _user(request)
    if request.method == "POST":
        start = actions.redeem_consent_link(
            actor=user, token=token, redirect_uri=_callback_uri(request)
        )
        return redirect(start.url)
    try:
        link = actions.read_consent_link(actor=user, token=token)
    except NotFound:
        raise
    except DomainError as exc:
        return render(request, "connectors/consent.html", {"problem": exc.message}, status=410)
    return render(
        request,
        "connectors/consent.html",
        {"link": link, "summary": selectors.account_connection(link.account)},
    )


@login_required
@require_POST
def disconnect(request: HttpRequest, account_id: int) -> HttpResponse:
    user = _user(request)
    account = get_visible_account(user, account_id)
    actions.disconnect_account(actor=user, account=account)
    messages.success(request, f"{account} is disconnected; its tokens were wiped.")
    return redirect("accounts:detail", account.pk)


@login_required
@require_POST
def capture_now(request: HttpRequest, account_id: int) -> HttpResponse:
    user = _user(request)
    account = get_visible_account(user, account_id)
    actions.request_capture(actor=user, account=account)
    messages.success(request, f"Capture of {account} requested.")
    return redirect("accounts:detail", account.pk)


@login_required
def alerts(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    page = Paginator(selectors.alerts_for(user), 50).get_page(request.GET.get("page"))
    return render(request, "connectors/alerts.html", {"page_obj": page})


@login_required
@require_POST
def alert_read(request: HttpRequest, alert_id: int) -> HttpResponse:
    actions.mark_alert_read(actor=_user(request), alert_id=alert_id)
    return redirect("connectors:alerts")


@login_required
def sandbox_timeline(request: HttpRequest, account_id: int) -> HttpResponse:
    """Browse a sandbox (training) timeline: our posts, customers' replies and DMs."""
    user = _user(request)
    account = get_visible_account(user, account_id)
    if account.network != selectors.SANDBOX:
        raise NotFound("No such sandbox account.")
    timeline = SandboxAccount.objects.filter(handle=account.handle).first()
    posts = (
        SandboxPost.objects.filter(timeline=timeline)
        .select_related("author", "in_reply_to")
        .order_by("-created_at", "-id")
        if timeline
        else SandboxPost.objects.none()
    )
    page = Paginator(posts, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "sandbox/timeline.html",
        {"account": account, "timeline": timeline, "page_obj": page},
    )


@login_required
def sandbox_post(request: HttpRequest, remote_id: str) -> HttpResponse:
    post = SandboxPost.objects.filter(remote_id=remote_id).select_related("timeline").first()
    if post is None:
        raise NotFound("No such sandbox post.")
    account = (
        visible_accounts(_user(request))
        .filter(network=selectors.SANDBOX, handle=post.timeline.handle)
        .first()
    )
    if account is None:
        raise NotFound("No such sandbox post.")
    return redirect(
        reverse("connectors:sandbox_timeline", args=[account.pk]) + f"#post-{post.remote_id}"
    )
