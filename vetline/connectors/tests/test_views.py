"""Pages: the account page's connection and capture health, the consent flow in a browser
session, alerts, and the API's health."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from vetline.connectors import actions
from vetline.connectors.models import Connection
from vetline.identity.roles import Role

pytestmark = pytest.mark.django_db


def test_account_page_shows_connection_and_health(world: Any, connected: Any, login: Any) -> None:
    actions.capture_account(account_id=connected.pk)
    client = login(world.people[Role.ADMINISTRATOR])
    page = client.get(f"/accounts/{connected.pk}/").content.decode()
    assert "Connection and capture" in page and ">Sandbox<" in page
    for text in ("Connected", "direct_messages", "Token expires", "Last successful capture", "Lag"):
        assert text in page
    assert "Capture now" in page and "Disconnect" in page


def test_account_page_without_connector(world: Any, login: Any) -> None:
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    internal = SocialAccount.objects.create(
        network=Network.INTERNAL,
        handle="#all",
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
    )
    page = login(world.people[Role.ADMINISTRATOR]).get(f"/accounts/{internal.pk}/")
    assert "No connector is installed for this network yet" in page.content.decode()


def test_admin_connects_through_pages(world: Any, sandbox_account: Any, login: Any) -> None:
    client = login(world.people[Role.ADMINISTRATOR])
    start = client.post(f"/connectors/accounts/{sandbox_account.pk}/connect/")
    assert start.status_code == 302 and "/connectors/oauth/callback/?" in start["Location"]
    back = client.get(start["Location"])
    assert back.status_code == 302 and back["Location"] == f"/accounts/{sandbox_account.pk}/"
    assert Connection.objects.get(account=sandbox_account).status == "connected"


def test_employee_consent_flow_through_pages(
    world: Any, employee_sandbox: Any, client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(world.people[Role.ADMINISTRATOR])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/connectors/accounts/{employee_sandbox.pk}/consent-link/")
    url = next(w for w in mail.outbox[0].body.split() if "/connectors/consent/" in w)
    path = url[url.index("/connectors/") :]
    # The administrator cannot use it.
    assert client.get(path).status_code == 404
    client.force_login(world.people[Role.EMPLOYEE])
    page = client.get(path)
    assert page.status_code == 200 and "never sees your password" in page.content.decode()
    go = client.post(path)
    assert go.status_code == 302
    assert client.get(go["Location"]).status_code == 302
    assert (
        Connection.objects.get(account=employee_sandbox).connected_by == world.people[Role.EMPLOYEE]
    )
    used = client.get(path)
    assert used.status_code == 410 and "already been used" in used.content.decode()


def test_alerts_page_and_api(world: Any, connected: Any, login: Any) -> None:
    from vetline.connectors.sandbox import network
    from vetline.connectors.sandbox.models import SandboxAccount

    network.revoke_grant(SandboxAccount.objects.get(handle=connected.handle))
    actions.capture_account(account_id=connected.pk)
    client = login(world.people[Role.COMPLIANCE_OFFICER])
    assert "has stopped" in client.get("/connectors/alerts/").content.decode()
    alerts = client.get("/api/connectors/alerts").json()
    assert alerts[0]["code"] == "access_lost" and alerts[0]["read_at"] is None
    health = client.get(f"/api/connectors/connections/{connected.pk}").json()
    assert health["status"] == "revoked" and health["capture_stopped"] is True
    client.post(f"/connectors/alerts/{alerts[0]['id']}/read/")
    assert client.get("/api/connectors/alerts").json()[0]["read_at"] is not None
