"""The operator's tests: `make run`, `check --deploy`, the README's production commands.

The browser is the browser tests' own fixture (Debian's Chromium through Playwright,
skipped or failed per REQUIRE_SERVICES when it is missing).
"""

from tests.browser.conftest import browser  # noqa: F401 (a fixture, used by name)
