"""The organizer's gate goes down during a sale, in a real browser with screenshots.

Ana's event has a pre-payment gate (a real local server that verifies our signature with
``standardwebhooks``) with the safe policy: block the purchase when the gate fails. The
gate hangs. Rui is held no longer than the gate's timeout and sees Ana's error message on
the form, with nothing charged. Ana finds the failed calls in the gate log with their
reason, switches the policy to "allow" on the event's page, and Rui's second try goes
through to payment and tickets. When her gate is back, the admin's "Send a test request"
says so, and the log keeps every call, with what the checkout decided.
"""

import time

import pytest
from playwright.sync_api import expect

from checkout.models import CheckoutSession, Status
from ievents.models import Event, TicketType
from payments.models import IntegrationSettings, Payment
from webhooks.models import GateCall, GateSettings

from .actors import DomainGate, log_in

pytestmark = pytest.mark.django_db(transaction=True)

ERROR_MESSAGE = "Our guest list is offline for a moment. Please try again shortly."
TIMEOUT_MS = 1000


@pytest.fixture
def gated_event(organization, organizer):
    from datetime import timedelta

    from django.utils import timezone

    IntegrationSettings.objects.create(organization=organization, provider="sandbox")
    event = Event.objects.create(organization=organization, name="Braga Design Day", currency="EUR",
                                 starts_at=timezone.now() + timedelta(days=20))
    TicketType.objects.create(event=event, name="Standard", price=900, quantity=30, max_per_order=4)
    gate = GateSettings.objects.create(event=event, enabled=True, url="http://127.0.0.1:9/", timeout_ms=TIMEOUT_MS,
                                       error_message=ERROR_MESSAGE)
    with DomainGate("example.com", "Staff only.", secret=gate.secret) as server:
        GateSettings.objects.filter(pk=gate.pk).update(url=server.url)
        yield event, server
    assert not server.bad_signatures


def continue_with_details(attendee):
    attendee.get_by_label("Name", exact=True).fill("Rui Costa")
    attendee.get_by_label("Email", exact=True).fill("rui@example.com")
    started = time.monotonic()
    attendee.get_by_role("button", name="Continue").click()
    attendee.wait_for_load_state()
    return started


def test_a_hanging_gate_blocks_with_the_organizers_message_until_she_switches_the_policy(
        page, new_page, shot, gated_event):
    event, gate = gated_event
    gate.hanging = True

    # --- Rui is blocked, with Ana's message, after the timeout ---------------------------------
    attendee = new_page()
    attendee.goto(event.get_absolute_url())
    attendee.get_by_label("Quantity of Standard").fill("1")
    attendee.get_by_role("button", name="Get tickets").click()
    started = continue_with_details(attendee)
    expect(attendee.get_by_role("alert")).to_have_text(ERROR_MESSAGE)
    waited = time.monotonic() - started
    expect(attendee.get_by_role("heading", name="Your details")).to_be_visible()
    expect(attendee.get_by_label("Email", exact=True)).to_have_value("rui@example.com")
    shot("attendee-blocked-gate-down", attendee)
    assert waited >= TIMEOUT_MS / 1000  # the gate was given its whole timeout before we gave up
    assert not Payment.objects.exists()
    assert CheckoutSession.objects.get().status == Status.OPEN

    # --- Ana reads the gate log --------------------------------------------------------------
    log_in(page, shot)
    page.goto("/admin/webhooks/gatecall/?outcome__exact=error")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.locator("td.field-outcome")).to_have_text("Error")
    expect(rows.locator("td.field-status_code")).to_have_text("-")
    error_text = GateCall.objects.get().error
    assert error_text  # the reason is recorded...
    expect(rows.locator("td.field-reason")).to_have_text(error_text)  # ...and shown
    expect(rows.locator("td.field-decision")).to_have_text("deny")
    shot("organizer-gate-log-error")

    # --- ... and lets purchases through while her gate is down ----------------------------------
    page.goto(f"/admin/ievents/event/{event.pk}/change/")
    gate_form = page.locator("#gate-0")
    gate_form.get_by_label("On error:").select_option(label="Allow the purchase")
    shot("organizer-policy-allow")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(page.locator(".messagelist")).not_to_contain_text("whsec_")  # an existing gate's secret is not shown
    assert GateSettings.objects.get(event=event).on_error == "allow"

    # --- Rui's second try goes through ------------------------------------------------------------
    attendee.get_by_role("button", name="Continue").click()
    expect(attendee.get_by_role("heading", name="Review your order")).to_be_visible()
    attendee.get_by_label("Sandbox").check()
    attendee.get_by_role("button", name="Pay").click()
    attendee.get_by_role("button", name="Simulate success").click()
    expect(attendee.get_by_role("heading", name="You're going!")).to_be_visible()
    expect(attendee.locator(".ticket-code")).to_have_count(1)
    shot("attendee-tickets-despite-gate-down", attendee)
    assert CheckoutSession.objects.get().status == Status.COMPLETED

    # --- Her gate is back: the test request says so ------------------------------------------------
    gate.hanging = False
    page.goto("/admin/ievents/event/")
    page.locator("#result_list tbody tr input.action-select").check()
    page.locator("select[name=action]").select_option(label="Send a test request to the pre-payment gate")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("Braga Design Day: the gate test was allowed (HTTP 200")
    shot("organizer-gate-test-allowed")

    page.goto("/admin/webhooks/gatecall/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("td.field-is_test img")).to_have_attribute("alt", "True")
    expect(rows.nth(1).locator("td.field-decision")).to_have_text("allow")  # let through by the policy
    expect(rows.nth(2).locator("td.field-decision")).to_have_text("deny")
    shot("organizer-gate-log-all-calls")
    calls = list(GateCall.objects.order_by("id").values_list("outcome", "decision", "is_test"))
    assert calls == [("error", "deny", False), ("error", "allow", False), ("allowed", "allow", True)]
    # A real call was made each time (no breaker after two failures); only the test one was answered.
    assert len(gate.requests) == 3 and gate.decisions == [("test.attendee@example.com", "allow")]
