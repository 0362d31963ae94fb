"""The line of authority through the real UI, in Debian's chromium: a publisher drafts a post
that trips a block rule (live screening shows it), fixes it and submits it; two approvers
approve it from their inbox; it publishes to the training sandbox network; and it appears in
the archive linked to its approvals."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from vetline.conftest import PASSWORD, totp_secret_for
from vetline.core.tests.browser_support import assert_fields_labelled, sign_in

pytestmark = pytest.mark.browser


def _sign_in(new_page: Any, server: str, person: Any) -> Any:
    page = new_page()
    sign_in(page, server, person.email, PASSWORD, totp_secret_for(person.email))
    return page


def _approve_from_inbox(page: Any, server: str, step: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    page.get_by_role("link", name=re.compile("Our new income fund is open")).click()
    expect(page.get_by_text(step)).to_be_visible()
    assert_fields_labelled(page)
    page.get_by_label("Comment").fill("Disclosure present; fine to go.")
    page.get_by_role("button", name="Approve").click()
    expect(page).to_have_url(f"{server}/publishing/inbox/")


def test_block_fix_submit_two_approvals_publish_and_archive(
    server: str, new_page: Any, pw: Any
) -> None:
    from vetline.archive.models import ArchivedRecord
    from vetline.connectors.sandbox.models import SandboxPost
    from vetline.publishing.models import Publication

    # The publisher drafts a post; live screening marks the promissory phrase as they type.
    page = _sign_in(new_page, server, pw.publisher)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Publishing").click()
    page.get_by_role("link", name="New draft").click()
    assert_fields_labelled(page)
    page.get_by_label("Text", exact=True).fill(
        "Our new income fund is open: guaranteed returns for savers!"
    )
    expect(page.locator("#live-screening mark.sev-block")).to_have_text(
        re.compile("guaranteed returns", re.I)
    )
    page.get_by_role("checkbox", name=str(pw.account)).check()
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_test_id("verdict")).to_have_text("block")
    expect(page.get_by_role("button", name="Submit for approval")).to_be_disabled()

    # They fix it and submit it.
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Text", exact=True).fill(
        "Our new income fund is open. Investing involves risk."
    )
    expect(page.locator("#live-screening [data-testid=verdict]")).to_have_text("pass")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_test_id("verdict")).to_have_text("pass")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator("#draft-state")).to_have_text("In review")
    draft_url = page.url

    # Two approvers approve it, one step each.
    _approve_from_inbox(_sign_in(new_page, server, pw.approver), server, "Step 1: Principal")
    _approve_from_inbox(
        _sign_in(new_page, server, pw.approver2), server, "Step 2: Senior principal"
    )

    # It is published to the sandbox, once, and the draft says so.
    page.goto(draft_url)
    expect(page.locator("#draft-state")).to_have_text("Published")
    pub = Publication.objects.get()
    assert pub.state == "published"
    post = SandboxPost.objects.get(text="Our new income fund is open. Investing involves risk.")
    assert post.remote_id == pub.remote_id
    expect(page.get_by_test_id("publication")).to_contain_text("Published")
    expect(page.locator("#timeline")).to_contain_text("Second Approver approved")

    # In the archive: the captured post, and the approval record linked to the approvals
    # (compliance looks; publishers do not read the archive).
    officer = _sign_in(new_page, server, pw.officer)
    officer.goto(draft_url)
    officer.get_by_role("link", name="approval record").click()
    expect(officer.get_by_text(pub.approval_ref)).to_be_visible()
    officer.get_by_text("raw payload (first").click()
    expect(officer.locator("pre.json")).to_contain_text("Second Approver")
    officer.goto(draft_url)
    officer.get_by_role("link", name="captured post").click()
    expect(officer.get_by_text(post.remote_id).first).to_be_visible()
    record = ArchivedRecord.objects.get(pk=pub.approval_record_id)
    assert record.approval_ref == pub.approval_ref
    body = json.loads(bytes(record.raw_payload))
    assert [a["name"] for a in body["approvers"]] == [pw.approver.full_name, "Second Approver"]
    captured = ArchivedRecord.objects.get(pk=pub.archived_record_id)
    assert captured.remote_id == post.remote_id
