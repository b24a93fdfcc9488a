"""The pre-payment gate in a real browser: a denial keeps the attendee on the form with the
gate's message; an approval leads to the sandbox payment page.

The gate is a real HTTP server (``tests/servers.py``) that verifies our signature with
``standardwebhooks`` before it decides by the email's domain.
"""

import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from payments.models import Payment
from tests.servers import LocalServer, Reply
from webhooks.models import GateCall, GateSettings

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def domain_gate(event):
    gate = GateSettings.objects.create(event=event, enabled=True, url="http://127.0.0.1:9/", timeout_ms=2000)
    secret = gate.secret
    bad_signatures = []

    def decide(req):
        try:
            payload = Webhook(secret).verify(req.body, req.headers)
        except WebhookVerificationError as exc:
            bad_signatures.append(str(exc))
            return Reply(401)
        email = payload["data"]["object"]["customer"]["email"]
        if email.endswith("@acme.test"):
            return Reply(200, {"ok": True})
        return Reply(403, {"message": "Only <b>acme.test</b> addresses may buy tickets."})

    with LocalServer(decide) as server:
        GateSettings.objects.filter(pk=gate.pk).update(url=server.url)
        yield server
    assert not bad_signatures


def details(page, email):
    page.get_by_label("Name", exact=True).fill("Ana Silva")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("T-shirt size", exact=True).select_option("M")
    page.get_by_role("button", name="Continue").click()


def choose_tickets(page, event):
    page.goto(event.get_absolute_url())
    page.get_by_label("Quantity of General").fill("1")
    page.get_by_role("button", name="Get tickets").click()
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()


def test_a_denied_attendee_sees_the_message_and_stays_on_the_form(page, shot, event, domain_gate):
    choose_tickets(page, event)
    details(page, "eve@evil.test")
    alert = page.get_by_role("alert")
    expect(alert).to_have_text("Only <b>acme.test</b> addresses may buy tickets.")  # as text, not markup
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    expect(page.get_by_label("Email", exact=True)).to_have_value("eve@evil.test")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Ana Silva")
    shot("denied")
    assert page.locator("alert b, [role=alert] b").count() == 0
    assert not Payment.objects.exists()
    assert GateCall.objects.get().outcome == "denied"


def test_an_allowed_attendee_reaches_the_sandbox_payment_page(page, shot, event, domain_gate):
    choose_tickets(page, event)
    details(page, "ana@acme.test")
    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    page.get_by_label("Sandbox").check()
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("button", name="Simulate success")).to_be_visible()
    shot("sandbox")
    assert Payment.objects.count() == 1 and len(domain_gate.requests) == 1


def test_after_a_denial_correcting_the_email_gets_through(page, event, domain_gate):
    choose_tickets(page, event)
    details(page, "eve@evil.test")
    expect(page.get_by_role("alert")).to_be_visible()
    page.get_by_label("Email", exact=True).fill("eve@acme.test")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Review your order")).to_be_visible()
    assert [c.outcome for c in GateCall.objects.order_by("id")] == ["denied", "allowed"]
