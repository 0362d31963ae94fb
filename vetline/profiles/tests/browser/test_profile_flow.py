"""Profile vetting through the real UI, in Debian's chromium: an employee proposes the profile
of their (training sandbox) account, sees the live screening block a phrase, fixes it, adds a
photo and submits; a compliance officer approves it from the vetting inbox with one click; the
employee then changes the live profile on the network, capture archives it, and the drift page
shows the difference field by field."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from vetline.conftest import PASSWORD, totp_secret_for
from vetline.core.tests.browser_support import assert_fields_labelled, sign_in
from vetline.identity.roles import Role
from vetline.profiles.tests.conftest import CALLBACK, PROFILE_POLICY

pytestmark = pytest.mark.browser


def _no_sideways_overflow(page: Any) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    culprits = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
              .filter(el => el.getBoundingClientRect().right
                            > document.documentElement.clientWidth)
              .slice(0, 5).map(el => `${el.tagName}.${el.className}`)"""
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the window: {culprits}"


def _connected_sandbox_account(owner: Any, admin: Any) -> Any:
    from urllib.parse import parse_qs, urlsplit

    from vetline.accounts.models import AccountKind, Network, SocialAccount
    from vetline.connectors.actions import (
        complete_connection,
        create_consent_link,
        redeem_consent_link,
    )

    account = SocialAccount.objects.create(
        network=Network.SANDBOX,
        handle="jane-browser-training",
        kind=AccountKind.EMPLOYEE,
        owner=owner,
    )
    issued = create_consent_link(actor=admin, account=account)
    start = redeem_consent_link(actor=owner, token=issued.token, redirect_uri=CALLBACK)
    query = parse_qs(urlsplit(start.url).query)
    complete_connection(
        actor=owner, state=query["state"][0], code=query["code"][0], redirect_uri=CALLBACK
    )
    return account


def test_employee_submits_compliance_approves_and_drift_is_shown(
    server: str,
    new_page: Any,
    make_person: Any,
    tmp_path: Path,
) -> None:
    from vetline.connectors.actions import capture_account
    from vetline.connectors.sandbox import network as sandbox
    from vetline.connectors.sandbox.models import SandboxAccount
    from vetline.policy.actions import create_policy
    from vetline.profiles.models import ProfileDrift, ProfileProposal
    from vetline.profiles.photos import tiny_png

    employee = make_person(Role.EMPLOYEE, "jane@example.com", full_name="Jane Advisor")
    officer = make_person(Role.COMPLIANCE_OFFICER, "olive@example.com", full_name="Olive Officer")
    admin = make_person(Role.ADMINISTRATOR, "ada@example.com", full_name="Ada Admin")
    create_policy(actor=officer, spec_yaml=PROFILE_POLICY)
    account = _connected_sandbox_account(employee, admin)
    photo = tmp_path / "jane.png"
    photo.write_bytes(tiny_png(96, 96))

    # The employee proposes a profile; live screening flags a blocked phrase as they type.
    page = new_page()
    sign_in(page, server, employee.email, PASSWORD, totp_secret_for(employee.email))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profiles").click()
    page.get_by_role("row", name=re.compile(account.handle)).get_by_role(
        "link", name="Propose"
    ).click()
    assert_fields_labelled(page)
    page.get_by_label("Display name").fill("Jane Advisor")
    page.get_by_label("Title").fill("Senior Advisor")
    page.get_by_label("Headline / bio").fill("Guaranteed returns for every client.")
    expect(page.locator("#verdict")).to_have_text("block")
    expect(page.locator("#screening mark.sev-block")).to_contain_text("Guaranteed returns")
    page.get_by_label("Headline / bio").fill("Financial advisor at Harbor Point.")
    expect(page.locator("#verdict")).to_have_text("pass")
    page.get_by_label("Links").fill("https://harborpoint.example/jane")
    page.get_by_label("Photo", exact=True).set_input_files(str(photo))
    _no_sideways_overflow(page)
    page.screenshot(path=str(tmp_path / "edit.png"), full_page=True)
    page.get_by_role("button", name="Save and submit").click()
    expect(page.get_by_role("status").first).to_contain_text("submitted to compliance")
    expect(page.locator("#proposal-status")).to_have_text("Waiting for compliance")
    proposal = ProfileProposal.objects.get(account=account)
    assert proposal.status == "submitted"
    assert proposal.current_revision is not None and proposal.current_revision.photo_sha256

    # Compliance approves it from the inbox in one click, with a comment.
    review = new_page()
    sign_in(review, server, officer.email, PASSWORD, totp_secret_for(officer.email))
    review.get_by_role("navigation", name="Main").get_by_role("link", name="Profiles").click()
    review.get_by_role("link", name=re.compile("Vetting inbox")).click()
    card = review.get_by_role("region", name=re.compile(account.handle))
    expect(card.get_by_role("img")).to_be_visible()
    _no_sideways_overflow(review)
    review.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)
    card.get_by_label("Comment").fill("Looks right.")
    card.get_by_role("button", name="Approve").click()
    expect(review.get_by_role("status").first).to_contain_text("Approved the profile")
    proposal.refresh_from_db()
    assert proposal.status == "approved" and proposal.approved_revision is not None

    # The employee changes the live profile on the network; capture archives it, and the
    # drift detector (kicked by the archive) raises the review item.
    timeline = SandboxAccount.objects.get(handle=account.handle)
    sandbox.update_profile(
        account=timeline, display_name="Jane Advisor", bio="DM me for hot crypto tips!"
    )
    assert capture_account(account_id=account.pk).status == "captured"
    drift = ProfileDrift.objects.get(account=account)

    review.goto(f"{server}/profiles/drift/")
    review.get_by_role("link", name=re.compile(r"\d{4}")).first.click()
    expect(review).to_have_url(f"{server}/profiles/drift/{drift.pk}/")
    row = review.locator('tr[data-field="bio"]')
    expect(row).to_contain_text("Financial advisor at Harbor Point.")
    expect(row).to_contain_text("DM me for hot crypto tips!")
    expect(review.locator("#drift-status")).to_have_text("Open")
    _no_sideways_overflow(review)
    review.screenshot(path=str(tmp_path / "drift.png"), full_page=True)
    review.set_viewport_size({"width": 820, "height": 1180})
    _no_sideways_overflow(review)
    if os.environ.get("C2_SHOTS"):
        import shutil

        for name in ("edit.png", "inbox.png", "drift.png"):
            shutil.copy(tmp_path / name, Path(os.environ["C2_SHOTS"]) / name)
