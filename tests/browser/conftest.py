"""Browser tests: Playwright (sync API) driving Debian's Chromium against a live server.

Browsers cannot be downloaded here, so Playwright launches the system Chromium
(``/usr/bin/chromium``, or ``CHROMIUM_PATH``). Without it the tests are skipped with a
reason; with ``REQUIRE_SERVICES=1`` (CI, where ``.ci/run`` installs it) they fail instead.

Every test in ``tests/browser/`` is marked ``browser`` automatically; run only them with
``pytest -m browser``, or leave them out with ``-m "not browser"``.

Fixtures
--------
``browser``      one Chromium per test module.
``site``         the live server's base URL (pytest-django's ``live_server``, a real
                 threaded HTTP server on the test database). While it runs,
                 ``settings.PUBLIC_BASE_URL`` points at it, so provider return URLs,
                 emails and API ``url`` fields lead back to the server under test.
``page``         a fresh page (own context: cookies, storage) at a desktop viewport.
``mobile_page``  the same at 375×740 (an iPhone-sized phone), touch enabled.
``new_page``     factory for more pages/viewports: ``new_page(width=..., height=...)``.
``shot``         ``shot("review")`` saves a full-page screenshot of ``page`` (or of the page
                 passed as ``shot("name", some_page)``) as
                 ``test-artifacts/<test name>/NN-review.png``, NN counting up per test.
                 When a test fails, each of its open pages is saved as ``NN-failure.png``.

Example::

    pytestmark = pytest.mark.django_db(transaction=True)

    def test_event_page_shows_the_ticket_types(page, site, shot, event):
        page.goto(site + event.get_absolute_url())
        shot("event")
        expect(page.get_by_text("General")).to_be_visible()

The ORM can be used from the test body: Playwright's sync API runs an asyncio loop in this
thread, which would make Django refuse synchronous queries, so ``DJANGO_ALLOW_ASYNC_UNSAFE``
is set while the browser runs (the queries really are synchronous; nothing else awaits),
and removed again when the module's browser closes.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root in a container, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls home, no surprises in offline CI
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 375, "height": 740}
BROWSER_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if BROWSER_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the item so fixtures can tell, at teardown, that the
    # test failed and save what the browser showed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _chromium_or_skip() -> str:
    path = shutil.which(CHROMIUM_PATH) or (CHROMIUM_PATH if os.access(CHROMIUM_PATH, os.X_OK) else None)
    if path:
        return path
    reason = f"Chromium not found at {CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)"
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module.

    Playwright's sync API keeps an asyncio loop "running" in this thread for as long as
    it is started, and Django refuses synchronous ORM calls while a loop runs. So the
    browser lives per module, and ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set only while it
    does: tests outside this folder (and the subprocesses they start) never see either.
    """
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


@pytest.fixture
def site(live_server, settings) -> str:
    """The live server's base URL, with PUBLIC_BASE_URL pointing at it for the test."""
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server.url


def _artifact_dir(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    return ARTIFACTS_DIR / name


class Screenshots:
    """Numbered full-page screenshots for one test, in the order they were taken."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.count = 0
        self.default_page = None
        self.pages = []
        if directory.exists():  # a re-run replaces the previous run's pictures
            shutil.rmtree(directory)

    def __call__(self, name: str, page=None) -> Path:
        page = page or self.default_page
        if page is None:
            raise RuntimeError("shot() needs a page: request the `page` fixture or pass one")
        self.count += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "shot"
        path = self.directory / f"{self.count:02d}-{safe}.png"
        self.directory.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shot(request) -> Screenshots:
    return Screenshots(_artifact_dir(request))


def _save_failure_screenshots(request, screenshots: Screenshots) -> None:
    failed = any(getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call"))
    if not failed:
        return
    for page in screenshots.pages:
        if not page.is_closed():
            try:
                screenshots("failure", page)
            except Exception:  # a failed screenshot must not hide the real failure
                pass


@pytest.fixture
def new_page(request, browser, site, shot):
    """Factory: ``new_page(width=375, height=740, **context_options)`` → a page in a fresh context."""
    contexts = []

    def make(width: int = DESKTOP["width"], height: int = DESKTOP["height"], **options):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=site, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        shot.pages.append(page)
        if shot.default_page is None:
            shot.default_page = page
        return page

    yield make
    _save_failure_screenshots(request, shot)  # before the contexts close
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page(**DESKTOP)


@pytest.fixture
def mobile_page(new_page):
    return new_page(**MOBILE, is_mobile=True, has_touch=True, device_scale_factor=2)
