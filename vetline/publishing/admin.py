"""Publishing in the Django admin: read-only. Every change goes through the actions (which check
permissions, four-eyes and write audit events), so the admin can look but never add, change or
delete: four-eyes cannot be bypassed here."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from vetline.publishing.models import (
    Approval,
    ApprovalChain,
    ApprovalRequest,
    Delegation,
    Draft,
    DraftRevision,
    Freeze,
    Publication,
    RoguePost,
)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ("decided_at", "request", "approver", "on_behalf_of", "decision")


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "title", "author", "state", "current_position")
    list_filter = ("state", "subject_kind")


@admin.register(ApprovalChain)
class ApprovalChainAdmin(ReadOnlyAdmin):
    list_display = ("name", "subject_kind", "account", "group", "is_active")


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyAdmin):
    list_display = ("delegator", "delegate", "starts_at", "ends_at", "revoked_at")


@admin.register(Draft)
class DraftAdmin(ReadOnlyAdmin):
    list_display = ("pk", "kind", "author", "state", "scheduled_for")


@admin.register(DraftRevision)
class DraftRevisionAdmin(ReadOnlyAdmin):
    list_display = ("draft", "number", "author", "verdict", "created_at")


@admin.register(Publication)
class PublicationAdmin(ReadOnlyAdmin):
    list_display = ("pk", "account", "state", "scheduled_for", "published_at", "remote_id")


@admin.register(Freeze)
class FreezeAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "reason", "all_accounts", "lifted_at")


@admin.register(RoguePost)
class RoguePostAdmin(ReadOnlyAdmin):
    list_display = ("detected_at", "account", "remote_id", "verdict", "status")
