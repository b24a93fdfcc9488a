"""End-to-end stories: an organizer in the admin and an attendee on the public pages, in
Debian's Chromium, against the live server, a real Celery worker, a real gate and a real
webhook receiver (all on 127.0.0.1).

The browser fixtures (``browser``, ``site``, ``page``, ``new_page``, ``shot``) are the ones
of ``tests/browser/conftest.py``, imported here so both folders share one implementation.
Every test in this folder is marked ``browser`` too.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.browser.conftest import (  # noqa: F401 (fixtures and the hook that saves failure screenshots)
    browser,
    new_page,
    page,
    pytest_runtest_makereport,
    shot,
    site,
)
from tests.faults.stack import DedupReceiver
from tests.servers import LocalServer, Received, Reply

E2E_DIR = Path(__file__).resolve().parent
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def secret_in(text: str) -> str:
    """The one ``whsec_…`` secret in a message the admin showed (fails if none or several)."""
    found = SECRET.findall(text)
    assert len(found) == 1, f"expected one secret in {text!r}"
    return found[0]


class DomainGate(LocalServer):
    """The organizer's pre-payment gate: verifies our signature with ``standardwebhooks``,
    then allows only emails at ``domain``. The organizer gives it the secret (``secret``)
    once the admin has shown it; a call it cannot verify is answered 401 and kept in
    ``bad_signatures``."""

    def __init__(self, domain: str, message: str):
        self.domain = domain
        self.message = message
        self.secret = ""
        self.bad_signatures: list[str] = []
        self.decisions: list[tuple[str, str]] = []  # (email, "allow" | "deny")
        super().__init__(self._decide)

    def _decide(self, request: Received) -> Reply:
        try:
            payload = Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            self.bad_signatures.append(str(exc))
            return Reply(401, {"message": "bad signature"})
        email = payload["data"]["object"]["customer"]["email"]
        if email.lower().endswith("@" + self.domain):
            self.decisions.append((email, "allow"))
            return Reply(200, {"ok": True})
        self.decisions.append((email, "deny"))
        return Reply(403, {"message": self.message})


class FlakyReceiver(DedupReceiver):
    """A de-duplicating, verifying receiver (``tests/faults/stack.py``) whose own database is
    down for one event type: until ``recover()``, those events are answered 503 and not
    processed (``refused`` counts them)."""

    def __init__(self, failing_type: str):
        self.failing_type = failing_type
        self.down = True
        self.refused: Counter[str] = Counter()
        self._flaky = threading.Lock()
        super().__init__()

    def recover(self) -> None:
        self.down = False

    def _answer(self, request: Received) -> Reply:
        try:
            kind = json.loads(request.body).get("type")
        except (ValueError, AttributeError):
            kind = None
        if self.down and kind == self.failing_type:
            with self._flaky:
                self.refused[kind] += 1
            return Reply(503, {"error": "our database is down"})
        return super()._answer(request)


ORGANIZER_PASSWORD = "pw-organizer-e2e-51c7"


@pytest.fixture
def organizer(organization):
    """Ana, staff, in the Organizers group, member of ``organization`` only."""
    from ievents.management.commands.seed_demo import organizer_group
    from ievents.models import Membership

    user = get_user_model().objects.create_user("ana", password=ORGANIZER_PASSWORD, is_staff=True)
    user.groups.add(organizer_group())
    Membership.objects.create(user=user, organization=organization)
    return user
