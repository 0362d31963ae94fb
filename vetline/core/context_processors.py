from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from vetline import __version__
from vetline.connectors.context import alerts_context
from vetline.identity.roles import Perm
from vetline.publishing.context import publishing_context


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    perm: Perm | None  # None: everyone signed in

    def visible_to(self, user: Any) -> bool:
        return self.perm is None or user.can(self.perm)


# Navigation by role: an entry shows only to people who may use the page behind it.
NAVIGATION: tuple[NavItem, ...] = (
    NavItem("Dashboard", "home", None),
    NavItem("Accounts", "accounts:list", None),
    NavItem("Publishing", "publishing:queue", Perm.PUBLISH),
    NavItem("Approvals", "publishing:inbox", Perm.APPROVE),
    NavItem("Profiles", "profiles:mine", None),
    NavItem("People", "identity:people", Perm.PEOPLE_VIEW),
    NavItem("Policies", "policy:list", Perm.POLICY_VIEW),
    NavItem("Archive", "archive:list", Perm.ARCHIVE_VIEW),
    NavItem("Audit log", "audit:list", Perm.AUDIT_VIEW),
    NavItem("Alerts", "connectors:alerts", None),
    NavItem("Supervision", "supervision:queue", Perm.SUPERVISE),
    NavItem("Inspection", "supervision:inspect", Perm.INSPECT),
    NavItem("Settings", "accounts:org_settings", Perm.ORG_MANAGE),
)


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    context: dict[str, Any] = {"vetline_version": __version__}
    if user is None or not user.is_authenticated:
        return context
    items = []
    for item in NAVIGATION:
        if item.visible_to(user):
            url = reverse(item.url_name)
            active = request.path == url if url == "/" else request.path.startswith(url)
            items.append({"label": item.label, "url": url, "active": active})
    context["nav_items"] = items
    context["user_role_labels"] = [r.label for r in sorted(user.roles)]
    context.update(publishing_context(user))  # the freeze banner and unread notifications
    context.update(alerts_context(user))  # the unread count beside "Alerts"
    return context
