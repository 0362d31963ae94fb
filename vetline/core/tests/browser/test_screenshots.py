"""Screenshots of the main screens over the demo organisation, for the docs.

Signs in as the demo administrator through the real form and captures, at 1280x800, the account
list, an account's page and the audit log. Every run checks that these pages (and the same pages
at tablet width) do not overflow sideways. The PNGs are written to ``docs/img/`` only when
``VETLINE_UPDATE_SCREENSHOTS=1`` is set, so an ordinary test run leaves the tree clean:

    VETLINE_UPDATE_SCREENSHOTS=1 VETLINE_ENV=test .venv/bin/python -m pytest \\
        vetline/core/tests/browser/test_screenshots.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from vetline.core.tests.browser_support import sign_in

pytestmark = pytest.mark.browser

DOCS_IMG = Path(__file__).resolve().parents[4] / "docs" / "img"
TABLET = {"width": 820, "height": 1180}


def _no_sideways_overflow(page) -> None:  # type: ignore[no-untyped-def]
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the window"


def test_screenshots_of_accounts_account_detail_and_audit_log(
    server: str,
    page,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from vetline.accounts.models import SocialAccount
    from vetline.core.demo import DEMO_PASSWORD, PEOPLE, load_demo

    load_demo()
    admin = PEOPLE[0]
    account = SocialAccount.objects.get(handle="@HarborPointSec")
    out = DOCS_IMG if os.environ.get("VETLINE_UPDATE_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)

    sign_in(page, server, admin.email, DEMO_PASSWORD, admin.totp_secret)
    shots = [
        ("/accounts/", "accounts.png", page.get_by_role("heading", name="Social accounts")),
        (
            f"/accounts/{account.pk}/",
            "account-detail.png",
            page.get_by_role("heading", name="People assigned"),
        ),
        ("/audit/", "audit.png", page.get_by_role("heading", name="Audit log")),
    ]
    for path, filename, landmark in shots:
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"{server}{path}")
        expect(landmark).to_be_visible()
        _no_sideways_overflow(page)
        page.screenshot(path=str(out / filename))  # the viewport: 1280x800
        assert (out / filename).stat().st_size > 10_000
        page.set_viewport_size(TABLET)
        _no_sideways_overflow(page)
