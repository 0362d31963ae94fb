"""REST API of the connector layer: installed networks, connections (connect, consent link,
disconnect, capture now, health) and one's alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Router, Schema, Status

from vetline.accounts.selectors import get_visible_account, visible_accounts
from vetline.connectors import actions, selectors
from vetline.connectors.registry import installed
from vetline.core.http import DbId, api_actor

router = Router(tags=["connectors"])


class NetworkOut(Schema):
    network: str
    label: str
    training_only: bool
    distribution: str
    capabilities: dict[str, Any]


class HealthOut(Schema):
    account_id: int
    connector_installed: bool
    training_only: bool
    status: str
    status_label: str
    status_reason: str
    capture_stopped: bool
    scopes: list[str]
    token_expires_at: datetime | None
    connected_at: datetime | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    lag_seconds: int | None
    items_captured: int
    items_quarantined: int
    last_error: str
    consecutive_failures: int
    capability_report: dict[str, Any]
    capability_checked_at: datetime | None
    stream_status: str
    stream_last_event_at: datetime | None
    stream_heartbeat_at: datetime | None
    stream_error: str


class AppPasswordIn(Schema):
    identifier: str = Field(..., min_length=1, max_length=actions.MAX_APP_PASSWORD_CHARS)
    app_password: str = Field(..., min_length=1, max_length=actions.MAX_APP_PASSWORD_CHARS)


class ConnectOut(Schema):
    authorize_url: str


class ConsentLinkOut(Schema):
    link_id: int
    person_id: int
    expires_at: datetime


class AlertOut(Schema):
    id: int
    code: str
    severity: str
    account_id: int | None
    title: str
    body: str
    link: str = Field("", description="The path of the page where people act on it.")
    created_at: datetime
    resolved_at: datetime | None
    read_at: datetime | None


def _health(summary: selectors.AccountConnection) -> HealthOut:
    return HealthOut(**{k: getattr(summary, k) for k in HealthOut.model_fields})


def _callback(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("connectors:oauth_callback"))


@router.get("/networks", response=list[NetworkOut])
def list_networks(request: HttpRequest) -> list[NetworkOut]:
    """Installed connector plugins and what each network's API allows."""
    api_actor(request)
    return [
        NetworkOut(
            network=p.network,
            label=p.cls.label,
            training_only=p.cls.training_only,
            distribution=p.distribution,
            capabilities=p.cls.capabilities.as_dict(),
        )
        for p in installed().values()
    ]


@router.get("/connections", response=list[HealthOut])
def list_connections(request: HttpRequest) -> list[HealthOut]:
    """Connection and capture health of every account the caller may see."""
    user = api_actor(request)
    return [
        _health(selectors.account_connection(a))
        for a in visible_accounts(user).order_by("network", "handle")[:500]
    ]


@router.get("/connections/{account_id}", response=HealthOut)
def connection_health(request: HttpRequest, account_id: DbId) -> HealthOut:
    user = api_actor(request)
    return _health(selectors.account_connection(get_visible_account(user, account_id)))


@router.post("/connections/{account_id}/connect", response=ConnectOut)
def connect(request: HttpRequest, account_id: DbId) -> ConnectOut:
    """Start OAuth for a corporate account; send the browser to ``authorize_url``."""
    user = api_actor(request)
    account = get_visible_account(user, account_id)
    start = actions.start_connection(actor=user, account=account, redirect_uri=_callback(request))
    return ConnectOut(authorize_url=start.url)


@router.post("/connections/{account_id}/app-password", response=HealthOut)
def connect_app_password(
    request: HttpRequest, account_id: DbId, payload: AppPasswordIn
) -> HealthOut:
    """Connect an account by signing in with an app password (Bluesky): exchanged at once for
    tokens, never stored. An administrator connects a corporate account, the owner their own."""
    user = api_actor(request)
    account = get_visible_account(user, account_id)
    actions.connect_with_app_password(
        actor=user,
        account=account,
        identifier=payload.identifier,
        app_password=payload.app_password,
    )
    return _health(selectors.account_connection(account))


@router.post("/connections/{account_id}/check-access", response={202: HealthOut})
def check_access(request: HttpRequest, account_id: DbId) -> Status[HealthOut]:
    """Queue a capability probe: what the granted access allows, stored on the connection."""
    user = api_actor(request)
    account = get_visible_account(user, account_id)
    actions.request_probe(actor=user, account=account)
    return Status(202, _health(selectors.account_connection(account)))


@router.post("/connections/{account_id}/consent-link", response=ConsentLinkOut)
def consent_link(request: HttpRequest, account_id: DbId) -> ConsentLinkOut:
    """E-mail the owner of a personal-for-business account a single-use consent link."""
    user = api_actor(request)
    account = get_visible_account(user, account_id)
    link = actions.create_consent_link(actor=user, account=account).link
    return ConsentLinkOut(link_id=link.pk, person_id=link.person_id, expires_at=link.expires_at)


@router.post("/connections/{account_id}/revoke", response=HealthOut)
def revoke(request: HttpRequest, account_id: DbId) -> HealthOut:
    """Disconnect: Vetline's tokens for the account are wiped at once."""
    user = api_actor(request)
    account = get_visible_account(user, account_id)
    actions.disconnect_account(actor=user, account=account)
    return _health(selectors.account_connection(account))


@router.post("/connections/{account_id}/capture", response={202: HealthOut})
def capture(request: HttpRequest, account_id: DbId) -> Status[HealthOut]:
    """Queue a capture of the account now."""
    user = api_actor(request)
    account = get_visible_account(user, account_id)
    actions.request_capture(actor=user, account=account)
    return Status(202, _health(selectors.account_connection(account)))


@router.get("/alerts", response=list[AlertOut])
def my_alerts(request: HttpRequest) -> list[AlertOut]:
    user = api_actor(request)
    return [
        AlertOut(
            id=d.alert.pk,
            code=d.alert.code,
            severity=d.alert.severity,
            account_id=d.alert.account_id,
            title=d.alert.title,
            body=d.alert.body,
            link=d.alert.link,
            created_at=d.alert.created_at,
            resolved_at=d.alert.resolved_at,
            read_at=d.read_at,
        )
        for d in selectors.alerts_for(user)[:200]
    ]
