"""The people and systems around the checkout in the end-to-end stories: the organizer's
gate and webhook receiver (real HTTP servers on 127.0.0.1, from ``tests/servers.py``), and
the steps an organizer takes in the admin."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter

from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.faults.stack import DedupReceiver
from tests.servers import LocalServer, Received, Reply

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")
ORGANIZER_USERNAME = "ana"
ORGANIZER_PASSWORD = "pw-organizer-e2e-51c7"


def secret_in(text: str) -> str:
    """The one ``whsec_…`` secret in a message the admin showed (fails if none or several)."""
    found = SECRET.findall(text)
    assert len(found) == 1, f"expected one secret in {text!r}"
    return found[0]


class DomainGate(LocalServer):
    """The organizer's pre-payment gate: verifies our signature with ``standardwebhooks``,
    then allows only emails at ``domain``. The organizer gives it the secret (``secret``)
    once the admin has shown it; a call it cannot verify is answered 401 and kept in
    ``bad_signatures``. While ``hanging`` is set it reads each request and never answers
    (a gate stuck on its own database), until the server stops."""

    def __init__(self, domain: str, message: str, secret: str = ""):
        self.domain = domain
        self.message = message
        self.secret = secret
        self.hanging = False
        self.bad_signatures: list[str] = []
        self.decisions: list[tuple[str, str]] = []  # (email, "allow" | "deny")
        self.payloads: list[dict] = []  # every verified checkout.validate body
        super().__init__(self._decide)

    def _decide(self, request: Received) -> Reply:
        if self.hanging:
            return Reply(hang=True)
        try:
            payload = Webhook(self.secret).verify(request.body, request.headers)
        except WebhookVerificationError as exc:
            self.bad_signatures.append(str(exc))
            return Reply(401, {"message": "bad signature"})
        self.payloads.append(payload)
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


def log_in(page, shot):
    """Ana logs into the admin (a screenshot of the filled form first)."""
    page.goto("/admin/")
    page.get_by_label("Username").fill(ORGANIZER_USERNAME)
    page.get_by_label("Password").fill(ORGANIZER_PASSWORD)
    shot("organizer-login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
