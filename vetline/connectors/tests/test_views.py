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
    page = client.get("/connectors/alerts/").content.decode()
    assert "has stopped" in page and f'href="/accounts/{connected.pk}/">Open</a>' in page
    alerts = client.get("/api/connectors/alerts").json()
    assert alerts[0]["code"] == "access_lost" and alerts[0]["read_at"] is None
    assert alerts[0]["link"] == f"/accounts/{connected.pk}/"
    health = client.get(f"/api/connectors/connections/{connected.pk}").json()
    assert health["status"] == "revoked" and health["capture_stopped"] is True
    client.post(f"/connectors/alerts/{alerts[0]['id']}/read/")
    assert client.get("/api/connectors/alerts").json()[0]["read_at"] is not None


def test_connect_with_an_app_password_through_the_page(
    world: Any, sandbox_account: Any, login: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = login(world.people[Role.ADMINISTRATOR])
    account_page = client.get(f"/accounts/{sandbox_account.pk}/").content.decode()
    assert f"/connectors/accounts/{sandbox_account.pk}/app-password/" in account_page
    url = f"/connectors/accounts/{sandbox_account.pk}/app-password/"
    form = client.get(url)
    assert form.status_code == 200 and 'type="password"' in form.content.decode()
    assert 'value="acme-training"' in form.content.decode()  # the handle is prefilled
    wrong = client.post(url, {"identifier": "not-us", "app_password": "abcd-efgh"})
    assert wrong.status_code == 422
    body = wrong.content.decode()
    assert "You signed in as not-us" in body and "abcd-efgh" not in body
    assert client.post(url, {"identifier": "", "app_password": ""}).status_code == 422
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(url, {"identifier": "acme-training", "app_password": "abcd-efgh"})
    assert done.status_code == 302 and done["Location"] == f"/accounts/{sandbox_account.pk}/"
    page = client.get(done["Location"]).content.decode()
    assert "What the granted access allows" in page and "capture direct messages" in page
    assert "Check access" in page


def test_app_password_page_is_for_who_may_connect(
    world: Any, sandbox_account: Any, employee_sandbox: Any, login: Any
) -> None:
    url = f"/connectors/accounts/{sandbox_account.pk}/app-password/"
    assert login(world.people[Role.COMPLIANCE_OFFICER]).get(url).status_code in (403, 404)
    own = f"/connectors/accounts/{employee_sandbox.pk}/app-password/"
    assert login(world.people[Role.ADMINISTRATOR]).get(own).status_code in (403, 404)
    assert login(world.people[Role.EMPLOYEE]).get(own).status_code == 200


def test_bluesky_account_page_offers_the_app_password(world: Any, login: Any) -> None:
    """Bluesky has no OAuth in Vetline: its account page offers the app-password page, and the
    OAuth start sends there too (it used to end in an error)."""
    from vetline.accounts.models import AccountKind, Network, SocialAccount

    bsky = SocialAccount.objects.create(
        network=Network.BLUESKY,
        handle="acme.bsky.social",
        kind=AccountKind.CORPORATE,
        owner=world.people[Role.COMPLIANCE_OFFICER],
    )
    client = login(world.people[Role.ADMINISTRATOR])
    page = client.get(f"/accounts/{bsky.pk}/").content.decode()
    assert "Connect with an app password" in page
    assert f"/connectors/accounts/{bsky.pk}/connect/" not in page
    start = client.post(f"/connectors/accounts/{bsky.pk}/connect/")
    assert start.status_code == 302
    assert start["Location"] == f"/connectors/accounts/{bsky.pk}/app-password/"


def test_app_password_and_check_access_api(
    world: Any, sandbox_account: Any, login: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = login(world.people[Role.ADMINISTRATOR])
    url = f"/api/connectors/connections/{sandbox_account.pk}/app-password"
    refused = client.post(
        url, {"identifier": "nobody", "app_password": "x"}, content_type="application/json"
    )
    assert refused.status_code == 422 and "signed in as nobody" in refused.content.decode()
    too_long = client.post(
        url, {"identifier": "a", "app_password": "x" * 201}, content_type="application/json"
    )
    assert too_long.status_code == 422
    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(
            url,
            {"identifier": "acme-training", "app_password": "abcd"},
            content_type="application/json",
        )
    assert ok.status_code == 200 and ok.json()["status"] == "connected"
    with django_capture_on_commit_callbacks(execute=True):
        check = client.post(f"/api/connectors/connections/{sandbox_account.pk}/check-access")
    assert check.status_code == 202
    health = client.get(f"/api/connectors/connections/{sandbox_account.pk}").json()
    assert "capture_direct_messages" in health["capability_report"]["allowed"]
    assert health["capability_checked_at"] is not None


def test_navigation_links_alerts_with_the_unread_count(world: Any, login: Any) -> None:
    from vetline.connectors.models import Alert, AlertRecipient

    officer = world.people[Role.COMPLIANCE_OFFICER]
    client = login(officer)
    page = client.get("/").content.decode()
    assert 'href="/connectors/alerts/"' in page and " unread</span>" not in page
    alert = Alert.objects.create(code="t", severity="warning", title="Capture is failing")
    AlertRecipient.objects.create(alert=alert, person=officer)
    page = client.get("/").content.decode()
    assert '>1<span class="visually-hidden"> unread</span>' in page
    client.post(f"/connectors/alerts/{alert.pk}/read/")
    assert " unread</span>" not in client.get("/").content.decode()
