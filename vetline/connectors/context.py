"""What every page shows about alerts: the number of open alerts the person has not read, beside
the Alerts link of the navigation."""

from __future__ import annotations

from typing import Any

from django.urls import reverse


def alerts_context(user: Any) -> dict[str, Any]:
    from vetline.connectors.selectors import unread_alert_count

    return {"unread_alerts": unread_alert_count(user), "alerts_url": reverse("connectors:alerts")}
