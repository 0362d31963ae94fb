from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from vetline.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: audit events can be looked at here, never added, changed or deleted."""

    list_display = ("occurred_at", "action", "actor_name", "object_type", "object_id", "ip")
    list_filter = ("action",)
    search_fields = ("action", "actor_name", "object_repr")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}
