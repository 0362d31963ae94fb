"""The supervision desk through the real UI, in Debian's chromium: a supervisor works a flagged
item (escalating it) and a sampled item (no issue) to dispositions; a compliance officer takes
the escalated item at the top of the chain and closes it; the supervision report shows them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from vetline.conftest import PASSWORD, totp_secret_for
from vetline.core.tests.browser_support import sign_in

pytestmark = pytest.mark.browser


def test_reviewer_works_flagged_and_sampled_items_and_the_report_shows_them(
    server: str, desk: Any, new_page: Any
) -> None:
    from vetline.supervision import actions
    from vetline.supervision.models import ReviewItem

    plan = actions.create_sampling_plan(
        actor=desk.co,
        name="Daily spot-check",
        population=desk.pop_a,
        queue=desk.queue_a,
        period="daily",
        method="fixed_rate",
        fixed_rate_percent="100",
    )
    actions.run_sampling_plan(actor=desk.co, plan=plan, day=timezone.now().date())
    flagged = ReviewItem.objects.get(record_id=desk.records["a1"])
    sampled = ReviewItem.objects.get(record_id=desk.records["a3"], source="sample")

    sup = new_page()
    sign_in(sup, server, desk.sup.email, PASSWORD, totp_secret_for(desk.sup.email))
    sup.get_by_role("link", name="Supervision").click()
    expect(sup.locator("#queue-table")).to_contain_text("We guarantee 10% returns!")
    expect(sup.locator("#queue-table")).not_to_contain_text("Guaranteed gains")  # queue B

    # The flagged item: hits highlighted and explained, in its conversation; escalated.
    sup.get_by_role("link", name=f"#{flagged.pk}", exact=True).click()
    expect(sup.locator("#highlighted mark")).to_have_text(re.compile("guarantee"))
    expect(sup.locator("#hits")).to_contain_text("Promises of returns are not allowed.")
    expect(sup.locator("#conversation")).to_contain_text("Nice lunch today")
    sup.get_by_role("button", name="Claim and review").click()
    sup.get_by_label("Disposition").select_option("violation_escalated")
    sup.get_by_role("button", name="Record disposition").click()
    expect(sup.locator(".flash")).to_contain_text("comment")  # a comment is required
    sup.get_by_label("Disposition").select_option("violation_escalated")
    sup.get_by_label("Comment").fill("Promises returns to a customer; compliance to decide.")
    sup.get_by_role("button", name="Record disposition").click()
    # Escalated to the compliance queue: no longer this reviewer's to see.
    expect(sup).to_have_url(re.compile(r"/supervision/$"))

    # The sampled item: reviewed in full, no issue (no comment needed).
    sup.goto(f"{server}/supervision/items/{sampled.pk}/")
    expect(sup.locator("body")).to_contain_text("Drawn at random by a sampling plan")
    sup.get_by_role("button", name="Claim and review").click()
    sup.get_by_label("Disposition").select_option("no_issue")
    sup.get_by_role("button", name="Record disposition").click()
    expect(sup.locator("#item-state")).to_have_text("Closed")
    expect(sup.locator("#evidence")).to_contain_text("Disposition: No issue")

    # The compliance officer, at the top of the escalation chain, closes the escalated item.
    co = new_page()
    sign_in(co, server, desk.co.email, PASSWORD, totp_secret_for(desk.co.email))
    co.goto(f"{server}/supervision/?queue={desk.compliance.pk}")
    co.get_by_role("link", name=f"#{flagged.pk}", exact=True).click()
    expect(co.locator("#evidence")).to_contain_text("Violation — escalated")
    co.get_by_role("button", name="Claim and review").click()
    co.get_by_label("Disposition").select_option("violation_coached")
    co.get_by_label("Comment").fill("Advisor coached; client sent a corrected message.")
    co.get_by_role("button", name="Record disposition").click()
    expect(co.locator("#item-state")).to_have_text("Closed")

    # The report shows both, with their outcomes and the sample's statistics.
    co.goto(f"{server}/supervision/reports/")
    co.get_by_role("button", name="Generate and archive").click()
    items = co.locator("#report-items")
    expect(items.locator("tr", has_text=f"#{flagged.pk}")).to_contain_text("violation_coached")
    expect(items.locator("tr", has_text=f"#{flagged.pk}")).to_contain_text("Compliance")
    expect(items.locator("tr", has_text=f"#{sampled.pk}")).to_contain_text("no_issue")
    expect(co.locator("#report-sampling")).to_contain_text("Daily spot-check")
    expect(co.locator("#report-summary")).to_contain_text("Flagged")
    expect(co.get_by_role("link", name=re.compile(r"record \d+"))).to_be_visible()
