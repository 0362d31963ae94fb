"""What every page shows about publishing: the freeze banner and the unread notifications."""

from __future__ import annotations

from typing import Any


def publishing_context(user: Any) -> dict[str, Any]:
    from vetline.identity.roles import Perm
    from vetline.publishing.models import Freeze, Notification

    freeze = (
        Freeze.objects.filter(lifted_at__isnull=True)
        .order_by("-started_at")
        .only("pk", "reason", "started_at", "all_accounts")
        .first()
    )
    return {
        "publishing_freeze": freeze,
        "publishing_unread": Notification.objects.filter(person=user, read_at__isnull=True).count(),
        "perms_freeze": user.can(Perm.PUBLISHING_FREEZE),
    }
