"""The foundation flow through the real UI, in Debian's chromium.

Sign in with e-mail, password and TOTP; register a corporate account with a publisher cap of 2;
assign publishers up to the cap through the HTMX form and fail one past it with a message that
names the cap; then find the audit entries. And: a Publisher who has not enrolled in MFA is held
on the enrolment page until they enrol through it.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from vetline.conftest import PASSWORD, totp_secret_for
from vetline.core.tests.browser_support import assert_fields_labelled, fresh_totp, sign_in
from vetline.identity.roles import Role

pytestmark = pytest.mark.browser


def test_admin_registers_an_account_fills_its_publisher_seats_and_sees_the_audit_trail(
    server: str,
    page,
    make_person,  # type: ignore[no-untyped-def]
) -> None:
    from vetline.accounts.models import Assignment, SocialAccount
    from vetline.audit.models import AuditEvent

    admin = make_person(Role.ADMINISTRATOR, "admin@example.com", full_name="Ada Admin")
    owner = make_person(Role.COMPLIANCE_OFFICER, "owner@example.com", full_name="Olive Owner")
    publishers = [
        make_person(Role.PUBLISHER, f"pub{i}@example.com", full_name=name)
        for i, name in enumerate(("Paul Publisher", "Petra Publisher", "Pia Publisher"))
    ]

    # Sign in: e-mail and password (submitted with Enter), then the TOTP step.
    sign_in(page, server, admin.email, PASSWORD, totp_secret_for(admin.email))
    expect(page).to_have_url(f"{server}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ada")

    # Register a corporate account with a cap of 2.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    page.get_by_role("link", name="Register an account").click()
    expect(page.get_by_role("heading", name="Register an account")).to_be_visible()
    assert_fields_labelled(page)
    page.get_by_label("Network").select_option(label="LinkedIn")
    page.get_by_label("Handle").fill("harbor-test-desk")
    page.get_by_label("Display name").fill("Harbor Test Desk")
    page.get_by_label("Kind").select_option(label="Corporate")
    page.get_by_label("Owner").select_option(label=str(owner))
    page.get_by_label("Business unit").fill("Marketing")
    page.get_by_label("Publisher cap").fill("2")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("harbor-test-desk")
    expect(page.get_by_role("status").first).to_contain_text("registered")
    account = SocialAccount.objects.get(handle="harbor-test-desk")
    assert account.publisher_cap == 2 and account.is_corporate
    assert re.search(rf"/accounts/{account.pk}/$", page.url)

    assert_fields_labelled(page)
    seats = page.locator("#cap-status")
    expect(seats).to_have_text("0 of 2 publisher seats used.")

    # Fill both seats through the HTMX form (no full page load: the section is swapped).
    assignments = page.locator("#assignments")
    page.evaluate("window.__vetline_marker = 1")
    for used, person in enumerate(publishers[:2], start=1):
        assignments.get_by_label("Person").select_option(label=str(person))
        assignments.get_by_label("Capability").select_option("publish")
        assignments.get_by_role("button", name="Assign").click()
        expect(seats).to_have_text(f"{used} of 2 publisher seats used.")
        expect(assignments.get_by_role("status")).to_contain_text(f"{person} may now publish")
        expect(assignments.get_by_role("row", name=str(person))).to_be_visible()
    assert page.evaluate("window.__vetline_marker") == 1, "the page reloaded instead of swapping"

    # One past the cap: refused, with a message that names the cap.
    assignments.get_by_label("Person").select_option(label=str(publishers[2]))
    assignments.get_by_label("Capability").select_option("publish")
    assignments.get_by_role("button", name="Assign").click()
    error = assignments.get_by_role("alert")
    expect(error).to_contain_text("the cap of 2")
    expect(error).to_contain_text("already has 2 authorized publishers")
    expect(seats).to_have_text("2 of 2 publisher seats used.")
    expect(assignments.get_by_role("row", name=str(publishers[2]))).to_have_count(0)
    assert Assignment.objects.filter(account=account, capability="publish").count() == 2

    # The audit log, filtered by action through its form.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    filters = page.get_by_role("search", name="Filter audit events")
    filters.get_by_label("Action").fill("accounts.assignment")
    filters.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"action=accounts\.assignment"))
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.locator("td:nth-child(2)")).to_have_text(["accounts.assignment.add"] * 2)
    # Newest first; each row names who did it, on what, and (under "details") whom it added.
    for row, person in zip(rows.all(), reversed(publishers[:2]), strict=True):
        expect(row).to_contain_text(str(admin))
        expect(row).to_contain_text(str(account))
        row.get_by_text("details").click()
        expect(row.locator("pre.json")).to_be_visible()
        expect(row.locator("pre.json")).to_contain_text(str(person))
    assert AuditEvent.objects.filter(action="accounts.assignment.add").count() == 2

    filters = page.get_by_role("search", name="Filter audit events")
    filters.get_by_label("Action").fill("accounts.account.register")
    filters.get_by_label("Action").press("Enter")
    expect(page).to_have_url(re.compile(r"action=accounts\.account\.register"))
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("accounts.account.register")
    expect(rows.first).to_contain_text(str(account))
    expect(rows.first).to_contain_text(str(admin))


def test_a_publisher_without_mfa_must_enrol_before_reaching_the_registry(
    server: str,
    page,
    make_person,  # type: ignore[no-untyped-def]
) -> None:
    from vetline.audit.models import AuditEvent

    person = make_person(
        Role.PUBLISHER, "new.publisher@example.com", enrol=False, full_name="Nina Newcomer"
    )

    # No TOTP yet, so the password alone signs in, straight onto the enrolment page.
    sign_in(page, server, person.email, PASSWORD, totp_secret=None)
    expect(page).to_have_url(f"{server}/auth/2fa/totp/activate/")

    # Every other page sends them back.
    for path in ("/accounts/", "/", "/people/"):
        page.goto(f"{server}{path}")
        expect(page).to_have_url(f"{server}/auth/2fa/totp/activate/")

    # Enrol through the page: read the secret it shows, answer with a valid code.
    assert_fields_labelled(page)
    secret_field = page.get_by_label("Authenticator secret")
    secret = secret_field.input_value()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    code = page.get_by_label("Authenticator code")
    code.fill("000000")
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("Incorrect code")).to_be_visible()
    page.get_by_label("Authenticator code").fill(fresh_totp(secret))
    page.get_by_role("button", name="Activate").click()
    expect(page).not_to_have_url(f"{server}/auth/2fa/totp/activate/")
    assert AuditEvent.objects.filter(action="identity.mfa.add", actor_id=person.pk).exists()

    page.goto(f"{server}/accounts/")
    expect(page).to_have_url(f"{server}/accounts/")
    expect(page.get_by_role("heading", name="Social accounts")).to_be_visible()
