from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from vetline.accounts.models import AccountKind, Assignment, OrgSettings
from vetline.accounts.selectors import visible_accounts
from vetline.audit.models import AuditEvent
from vetline.core.errors import NotFound
from vetline.core.models import WorkerHeartbeat
from vetline.identity.models import Person
from vetline.identity.roles import Perm


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers. Reveals nothing else."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user: Person = request.user  # type: ignore[assignment]
    accounts = visible_accounts(user)
    hour = timezone.localtime().hour
    context = {
        "greeting": "morning" if hour < 12 else "afternoon" if hour < 18 else "evening",
        "org": OrgSettings.load(),
        "stats": {
            "accounts": accounts.count(),
            "corporate": accounts.filter(kind=AccountKind.CORPORATE).count(),
            "my_assignments": Assignment.objects.filter(person=user).count(),
            "people": Person.objects.filter(is_active=True).count()
            if user.can(Perm.PEOPLE_VIEW)
            else None,
        },
        "my_accounts": Assignment.objects.filter(person=user).select_related("account")[:20],
        "recent_events": AuditEvent.objects.all()[:10] if user.can(Perm.AUDIT_VIEW) else None,
        "worker": WorkerHeartbeat.objects.order_by("-last_seen_at").first()
        if user.can(Perm.ORG_MANAGE)
        else None,
        "show_worker": user.can(Perm.ORG_MANAGE),
        "worker_ok": WorkerHeartbeat.objects.filter(
            last_seen_at__gte=timezone.now() - timedelta(minutes=3)
        ).exists(),
    }
    return render(request, "core/home.html", context)


def not_available(request: HttpRequest) -> HttpResponse:
    raise NotFound("This page is not available: ask an administrator to change your e-mail.")
