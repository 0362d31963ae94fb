"""Connecting an account with an app password through the real UI, in Debian's chromium (the
sandbox takes app passwords for practice, as Bluesky does): the account page's button, the
form, a refusal for another account's identity, the connection, what the access allows, and
the Alerts link with its unread count."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from vetline.conftest import PASSWORD, totp_secret_for
from vetline.core.tests.browser_support import assert_fields_labelled, sign_in
from vetline.identity.roles import Role

pytestmark = pytest.mark.browser


def test_admin_connects_with_an_app_password_and_sees_what_the_access_allows(
    server: str,
    page,
    make_person,  # type: ignore[no-untyped-def]
) -> None:
    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.connectors.models import Alert, AlertRecipient, Connection

    admin = make_person(Role.ADMINISTRATOR, "admin@example.com", full_name="Ada Admin")
    owner = make_person(Role.COMPLIANCE_OFFICER, "owner@example.com", full_name="Olive Owner")
    account = SocialAccount.objects.create(
        network=Network.SANDBOX, handle="acme-training", kind=AccountKind.CORPORATE, owner=owner
    )
    alert = Alert.objects.create(code="t", severity="warning", title="Capture is lagging")
    AlertRecipient.objects.create(alert=alert, person=admin)

    sign_in(page, server, admin.email, PASSWORD, totp_secret_for(admin.email))
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Alerts 1 unread")).to_be_visible()

    page.goto(f"{server}/accounts/{account.pk}/")
    page.get_by_role("link", name="Connect with an app password").click()
    expect(page.get_by_role("heading", name="Connect acme-training")).to_be_visible()
    assert_fields_labelled(page)
    expect(page.get_by_label("Handle or e-mail")).to_have_value("acme-training")

    # Signing in as someone else is refused, and the password is not shown back.
    page.get_by_label("Handle or e-mail").fill("someone-else")
    page.get_by_label("App password").fill("abcd-efgh-ijkl")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("You signed in as someone-else")).to_be_visible()
    expect(page.get_by_label("App password")).to_have_value("")

    page.get_by_label("Handle or e-mail").fill("acme-training")
    page.get_by_label("App password").fill("abcd-efgh-ijkl")
    page.get_by_role("button", name="Connect").click()
    expect(page).to_have_url(f"{server}/accounts/{account.pk}/")
    expect(page.get_by_text("acme-training is connected")).to_be_visible()
    report = page.locator("#access-report")
    expect(report).to_contain_text("capture direct messages")
    expect(report).to_contain_text("publish posts")
    assert Connection.objects.get(account=account).status == "connected"

    # The alert is read from the Alerts page: the count goes.
    nav.get_by_role("link", name="Alerts 1 unread").click()
    page.get_by_role("button", name="Mark read").click()
    expect(nav.get_by_role("link", name="Alerts", exact=True)).to_be_visible()
