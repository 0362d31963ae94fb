"""The browser fixtures of the foundation (Debian's chromium through Playwright)."""

from vetline.core.tests.browser.conftest import (  # noqa: F401
    browser,
    isolated_cache,
    new_page,
    page,
    server,
)
