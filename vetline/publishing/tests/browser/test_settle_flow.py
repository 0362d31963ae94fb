"""Settling by hand, through the real UI in Debian's chromium: a compliance officer opens the
list the ``publish_unknown`` alert points to, finds the post is not on the network, and
settles it; the author then sees it failed, with the officer's words, and can retry it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from vetline.conftest import PASSWORD, totp_secret_for
from vetline.core.tests.browser_support import assert_fields_labelled, sign_in
from vetline.publishing.tests.conftest import stuck_publication

pytestmark = pytest.mark.browser


def test_officer_settles_a_post_whose_fate_is_unknown(
    server: str, new_page: Any, pw: Any, monkeypatch: Any
) -> None:
    from vetline.connectors.models import Alert
    from vetline.publishing.models import Publication

    pub = stuck_publication(pw, monkeypatch, "Did this go out?", sent=False)
    alert = Alert.objects.get(code=f"publish_unknown:{pub.pk}")
    assert alert.link == "/publishing/unsettled/"
    page = new_page()
    sign_in(page, server, pw.officer.email, PASSWORD, totp_secret_for(pw.officer.email))
    page.goto(f"{server}{alert.link}")
    row = page.get_by_test_id("unsettled")
    expect(row).to_contain_text("Did this go out?")
    row.get_by_test_id("settle").locator("summary").click()
    assert_fields_labelled(page)
    row.get_by_label("It is not on the network").check()
    row.get_by_label("How you established it").fill("Checked the sandbox timeline at 10:05.")
    row.get_by_role("button", name="Settle").click()
    expect(page).to_have_url(f"{server}/publishing/unsettled/")
    expect(page.locator(".messages")).to_contain_text("Settled: not published")
    expect(page.get_by_text("Nothing awaits settlement.")).to_be_visible()
    assert Publication.objects.get(pk=pub.pk).state == "failed"
    alert.refresh_from_db()
    assert alert.resolved_at is not None

    author = new_page()
    sign_in(author, server, pw.publisher.email, PASSWORD, totp_secret_for(pw.publisher.email))
    author.goto(f"{server}/publishing/drafts/{pub.draft_id}/")
    expect(author.get_by_test_id("publication")).to_contain_text("Checked the sandbox timeline")
    expect(author.get_by_role("button", name="Retry")).to_be_visible()
