"""Playwright against Debian's chromium, pointed at pytest-django's live server.

No browser is downloaded: ``/usr/bin/chromium`` must exist (CI installs the ``chromium``
package). Missing chromium is a failure, not a skip, so a CI image without it cannot pass
silently.
"""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
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
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                    "LOCATION": f"vetline-browser-{uuid.uuid4().hex}"},
    }


def _audit_trigger_sql(direction: str) -> list[str]:
    from django.db import connection

    migration = importlib.import_module("vetline.audit.migrations.0003_append_only_triggers")
    return list(getattr(migration, f"{connection.vendor.upper()}_{direction}", []))


def _execute(statements: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


@pytest.fixture
def _audit_triggers_restored(django_db_blocker: object) -> Iterator[None]:
    """Re-create the append-only audit triggers once the database has been flushed.

    Requested before ``transactional_db`` so that it is torn down after the flush.
    """
    yield
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        _execute(_audit_trigger_sql("UP"))


@pytest.fixture
def server(_audit_triggers_restored: None, live_server: object, transactional_db: None,
           isolated_cache: None) -> Iterator[str]:
    """Base URL of a live server over a database the browser and the test both see.

    The live server needs real commits, so the test database is flushed afterwards, and the
    database itself refuses to delete audit events (migration audit 0003). The triggers are
    dropped just for the flush and re-created straight after it, so tests that follow still
    run against an append-only audit table.
    """
    yield str(live_server.url)  # type: ignore[attr-defined]
    _execute(_audit_trigger_sql("DOWN"))


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


def sign_in(page: object, base: str, email: str, password: str, totp_secret: str | None) -> None:
    """Sign in through the real form; answer allauth's TOTP step when a secret is given.

    The password is submitted with Enter, which also checks the form works from the keyboard.
    """
    from playwright.sync_api import expect

    from vetline.conftest import totp_now

    page.goto(f"{base}/auth/login/")  # type: ignore[attr-defined]
    page.get_by_label(re.compile(r"^e-?mail", re.I)).fill(email)  # type: ignore[attr-defined]
    password_field = page.get_by_label(re.compile(r"^password", re.I))  # type: ignore[attr-defined]
    password_field.fill(password)
    password_field.press("Enter")
    if totp_secret is not None:
        expect(page).to_have_url(f"{base}/auth/2fa/authenticate/")
        code = page.get_by_label(re.compile(r"code", re.I))  # type: ignore[attr-defined]
        code.fill(totp_now(totp_secret))
        code.press("Enter")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()  # type: ignore[attr-defined]
