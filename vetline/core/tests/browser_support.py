"""Playwright against Debian's chromium, pointed at pytest-django's live server.

The fixtures are registered once, in ``vetline/conftest.py``: the session-scoped ``browser``
must exist once per test run (a second sync Playwright in the same thread fails with "using
Playwright Sync API inside the asyncio loop"), so no browser test directory re-exports them.

No browser is downloaded: ``/usr/bin/chromium`` must exist (CI installs the ``chromium``
package). Missing chromium is a failure, not a skip, so a CI image without it cannot pass
silently.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000  # a page that takes longer than this is a failure, not something to wait for


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing. The browser tests drive Debian's chromium: install it with "
            "`apt-get install chromium` (never `playwright install`).",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives each run a fresh temporary profile and removes it on close.
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def isolated_cache(settings: object) -> None:
    """A private in-memory cache for this test, shared with the live server's thread.

    allauth remembers used TOTP codes in the cache, keyed by user id, for 30 seconds. User ids
    repeat between test databases, so a cache that outlives one test (a file under ``var/``, or
    a process-wide LocMemCache) could refuse a code as "already used".
    """
    settings.CACHES = {  # type: ignore[attr-defined]
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"vetline-browser-{uuid.uuid4().hex}",
        },
    }


@pytest.fixture
def server(live_server: object, transactional_db: None, isolated_cache: None) -> str:
    """Base URL of a live server over a database the browser and the test both see.

    (The flush that empties the database after each such test is let past the append-only audit
    triggers by ``_let_test_flushes_clear_the_audit_table`` in ``vetline/conftest.py``.)
    """
    return str(live_server.url)  # type: ignore[attr-defined]


@pytest.fixture
def new_page(browser: object) -> Iterator[Callable[[], object]]:
    """new_page() -> a Page in its own browser context (own cookies), 1280x800."""
    contexts: list[object] = []

    def _new() -> object:
        context = browser.new_context(viewport=VIEWPORT, locale="en-GB")  # type: ignore[attr-defined]
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield _new
    for context in contexts:
        context.close()  # type: ignore[attr-defined]


@pytest.fixture
def page(new_page: Callable[[], object]) -> object:
    return new_page()


def fresh_totp(secret: str) -> str:
    """The current TOTP code, waiting for the next 30-second step if this one is about to end
    (allauth accepts only the current step), so a slow round trip cannot make the test flaky."""
    from vetline.conftest import totp_now

    remaining = 30 - time.time() % 30
    if remaining < 3:
        time.sleep(remaining + 0.2)
    return totp_now(secret)


def assert_fields_labelled(page: object) -> None:
    """Every visible form control on the page has a <label> (or an aria-label)."""
    unlabelled = page.evaluate(  # type: ignore[attr-defined]
        """() => [...document.querySelectorAll('input, select, textarea')]
              .filter(el => el.type !== 'hidden' && el.offsetParent !== null)
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !el.getAttribute('aria-labelledby'))
              .map(el => el.outerHTML)"""
    )
    assert not unlabelled, f"form controls without a label: {unlabelled}"


def sign_in(page: object, base: str, email: str, password: str, totp_secret: str | None) -> None:
    """Sign in through the real form; answer allauth's TOTP step when a secret is given.

    The password is submitted with Enter, which also checks the form works from the keyboard.
    """
    from playwright.sync_api import expect

    page.goto(f"{base}/auth/login/")  # type: ignore[attr-defined]
    assert_fields_labelled(page)
    page.get_by_label(re.compile(r"^e-?mail", re.I)).fill(email)  # type: ignore[attr-defined]
    password_field = page.get_by_label(re.compile(r"^password", re.I))  # type: ignore[attr-defined]
    password_field.fill(password)
    password_field.press("Enter")
    if totp_secret is not None:
        expect(page).to_have_url(f"{base}/auth/2fa/authenticate/")
        code = page.get_by_label(re.compile(r"code", re.I))  # type: ignore[attr-defined]
        assert_fields_labelled(page)
        code.fill(fresh_totp(totp_secret))
        code.press("Enter")
    expect(page).not_to_have_url(re.compile(r"/auth/(login|2fa/authenticate)/"))
