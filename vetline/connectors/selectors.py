"""Reads of the connector layer: an account's connection and capture health, a person's
alerts, the installed connectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from vetline.accounts.models import SocialAccount
from vetline.connectors.base import CAPABILITY_LABELS
from vetline.connectors.models import AlertRecipient, CaptureState, Connection
from vetline.connectors.registry import installed
from vetline.connectors.states import ConnectionState, StreamState
from vetline.identity.models import Person

SANDBOX = "sandbox"


@dataclass
class AccountConnection:
    """What the account page and the API show about an account's connection and capture."""

    account_id: int
    connector_installed: bool
    connector_label: str
    training_only: bool
    capabilities: dict[str, Any]
    status: str
    status_label: str
    status_reason: str
    capture_stopped: bool
    scopes: list[str]
    token_expires_at: Any
    connected_at: Any
    connected_by: str
    last_attempt_at: Any
    last_success_at: Any
    lag_seconds: int | None
    items_captured: int
    items_quarantined: int
    last_error: str
    last_error_at: Any
    consecutive_failures: int
    capability_report: dict[str, Any]
    capability_checked_at: Any
    # Streaming capture (``vetline stream``): "" when the account is not streamed
    stream_status: str = ""
    stream_status_label: str = ""
    stream_status_changed_at: Any = None
    stream_last_event_at: Any = None
    stream_heartbeat_at: Any = None
    stream_error: str = ""
    stream_stale: bool = False  # says streaming, but no supervisor heartbeat for a while

    @property
    def capability_list(self) -> list[tuple[str, bool]]:
        return [(label, bool(self.capabilities.get(k))) for k, label in CAPABILITY_LABELS.items()]

    @property
    def access_report(self) -> list[tuple[str, bool, str]]:
        """The capability probe, for people: (capability, allowed, why not), allowed first."""
        report = self.capability_report
        allowed = set(report.get("allowed") or [])
        missing = report.get("missing") or {}
        rows = [
            (label, key in allowed, str(missing.get(key, "")))
            for key, label in CAPABILITY_LABELS.items()
            if key in allowed or key in missing
        ]
        return sorted(rows, key=lambda r: not r[1])

    @property
    def app_password_only(self) -> bool:
        return bool(self.capabilities.get("app_password")) and not self.capabilities.get("oauth2")

    @property
    def token_expired(self) -> bool:
        return self.token_expires_at is not None and self.token_expires_at <= timezone.now()


def account_connection(account: SocialAccount) -> AccountConnection:
    plugin = installed().get(account.network)
    connection = Connection.objects.filter(account=account).select_related("connected_by").first()
    state = CaptureState.objects.filter(account=account).first()
    status = connection.state if connection else None
    return AccountConnection(
        account_id=account.pk,
        connector_installed=plugin is not None,
        connector_label=plugin.cls.label if plugin else "",
        training_only=bool(plugin and plugin.cls.training_only) or account.network == SANDBOX,
        capabilities=plugin.cls.capabilities.as_dict() if plugin else {},
        status=status.value if status else "not_connected",
        status_label=status.label if status else "Not connected",
        status_reason=connection.status_reason if connection else "",
        capture_stopped=bool(status and status.capture_stopped),
        scopes=list(connection.scopes or []) if connection else [],
        token_expires_at=connection.token_expires_at if connection else None,
        connected_at=connection.connected_at if connection else None,
        connected_by=str(connection.connected_by) if connection and connection.connected_by else "",
        last_attempt_at=state.last_attempt_at if state else None,
        last_success_at=state.last_success_at if state else None,
        lag_seconds=state.lag_seconds() if state else None,
        items_captured=state.items_captured if state else 0,
        items_quarantined=state.items_quarantined if state else 0,
        last_error=state.last_error if state else "",
        last_error_at=state.last_error_at if state else None,
        consecutive_failures=state.consecutive_failures if state else 0,
        capability_report=dict(connection.capability_report or {}) if connection else {},
        capability_checked_at=connection.capability_checked_at if connection else None,
        **_stream_health(state),
    )


def _stream_health(state: CaptureState | None) -> dict[str, Any]:
    if state is None or not state.stream_status:
        return {}
    status = StreamState(state.stream_status)
    return {
        "stream_status": status.value,
        "stream_status_label": status.label,
        "stream_status_changed_at": state.stream_status_changed_at,
        "stream_last_event_at": state.stream_last_event_at,
        "stream_heartbeat_at": state.stream_heartbeat_at,
        "stream_error": state.stream_error,
        "stream_stale": status == StreamState.STREAMING and not state.streaming_now(),
    }


def connects_with_app_password(account: SocialAccount) -> bool:
    """Whether the account's network is connected only with an app password (no OAuth)."""
    plugin = installed().get(account.network)
    caps = plugin.cls.capabilities if plugin else None
    return bool(caps and caps.app_password and not caps.oauth2)


def alerts_for(person: Person) -> QuerySet[AlertRecipient]:
    return (
        AlertRecipient.objects.filter(person=person)
        .select_related("alert", "alert__account")
        .order_by("-alert__created_at")
    )


def unread_alert_count(person: Person) -> int:
    return AlertRecipient.objects.filter(
        person=person, read_at__isnull=True, alert__resolved_at__isnull=True
    ).count()


def connected_states() -> list[str]:
    return [ConnectionState.CONNECTED.value, ConnectionState.ERROR.value]
