"""Fixtures of the end-to-end stories: an organizer in the admin and an attendee on the public pages, in
Debian's Chromium, against the live server, a real Celery worker, a real gate and a real
webhook receiver (all on 127.0.0.1).

The browser fixtures (``browser``, ``site``, ``page``, ``new_page``, ``shot``) are the ones
of ``tests/browser/conftest.py``, imported here so both folders share one implementation.
Every test in this folder is marked ``browser`` too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import (  # noqa: F401 (fixtures and the hook that saves failure screenshots)
    browser,
    new_page,
    page,
    pytest_runtest_makereport,
    shot,
    site,
)
from tests.conftest import make_organizer

from .actors import ORGANIZER_PASSWORD, ORGANIZER_USERNAME

E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def organizer(organization):
    """Ana, staff, member of ``organization`` only."""
    return make_organizer(organization, ORGANIZER_USERNAME, ORGANIZER_PASSWORD)

