"""The whole product, the way an organizer would try it before trusting it with a sold-out
event, in a real browser with screenshots of every step (``test-artifacts/<test>/``).

Ana, an organizer, logs into the admin and sets up: the sandbox payment integration, a
webhook endpoint (her fulfilment system: a real local receiver that verifies signatures
and de-duplicates on ``webhook-id``) and an event with tickets and a pre-payment gate (a
real local gate that verifies our signature and lets in only @example.com addresses). She
copies each secret the admin shows her once into her systems.

Rui, an attendee, picks two tickets, is denied by the gate with its message, fixes his
email, is allowed, pays in the sandbox and sees his ticket codes.

A real Celery worker (a subprocess on Redis and this run's PostgreSQL test database)
delivers the notifications. Ana's receiver is down for ``checkout.session.completed``, so
that delivery is dead-lettered after its retries. Ana reads the gate log (denied, then
allowed, with the reasons), the session's transition history and the deliveries, brings
her receiver back and clicks "Retry now": the delivery succeeds. At the end every event
was processed exactly once by the receiver, every request carried a valid signature, and
the database holds nothing impossible.
"""

import json

import pytest
from playwright.sync_api import expect
from standardwebhooks.webhooks import Webhook

from checkout.models import CheckoutSession, Status, Ticket
from ievents.models import Event
from ievents.money import format_money
from payments.models import IntegrationSettings, Payment
from tests.browser.admin_pages import choose_organization, fill_new_event, secret_shown_once
from tests.faults.stack import check_invariants, run_database_url
from tests.outbound.workers import CeleryWorker, purge_broker
from tests.waiting import wait_for
from webhooks import delivery
from webhooks.models import Delivery, GateCall, GateSettings, OutboxEvent, WebhookEndpoint

from .actors import DomainGate, FlakyReceiver, log_in, secret_in

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

GATE_MESSAGE = "Tickets are for <Example> staff: use your @example.com address."
FAILING_TYPE = "checkout.session.completed"
# The worker's retry schedule: one retry a second after the first attempt, then the dead
# letter; a sweep every second, as beat runs it in production.
WORKER_ENV = {
    "WEBHOOK_RETRY_SCHEDULE": "1",
    "WEBHOOK_SWEEP_SECONDS": "1",
    "WEBHOOK_LEASE_SECONDS": "5",
    "WEBHOOK_TIMEOUT_SECONDS": "3",
}


@pytest.fixture
def gate():
    with DomainGate("example.com", GATE_MESSAGE) as server:
        yield server


@pytest.fixture
def receiver():
    server = FlakyReceiver(FAILING_TYPE).start()
    yield server
    server.stop()


@pytest.fixture
def worker():
    purge_broker()
    with CeleryWorker(name="e2e", beat=True, env=WORKER_ENV) as process:
        yield process
    purge_broker()


def add_sandbox_integration(page, shot, organization):
    page.goto("/admin/payments/integrationsettings/add/")
    choose_organization(page, organization)
    page.locator("select[name=provider]").select_option(label="Sandbox (test payments)")
    shot("integration-new")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    shot("integration-saved")


def add_webhook_endpoint(page, shot, organization, url) -> str:
    """Returns the signing secret the admin showed once."""
    page.goto("/admin/webhooks/webhookendpoint/add/")
    choose_organization(page, organization)
    page.get_by_label("URL:").fill(url)
    page.get_by_label("Description:").fill("Fulfilment system")
    page.get_by_label("Every event (also types added later)").check()
    shot("endpoint-new")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".secret-box")).to_contain_text("signing secret")
    shot("endpoint-saved-secret-shown-once")
    return secret_in(secret_shown_once(page))


def add_event_with_gate(page, shot, organization, gate_url) -> str:
    """Returns the gate's signing secret the admin showed once."""
    page.goto("/admin/ievents/event/add/")
    fill_new_event(page, organization)
    page.get_by_text("Add another pre-payment gate").click()
    gate_form = page.locator("#gate-0")  # the new form, not the hidden template
    gate_form.get_by_label("Enabled").check()
    gate_form.get_by_label("URL:").fill(gate_url)
    gate_form.get_by_label("Timeout ms:").fill("2000")
    shot("event-new-with-gate")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator(".secret-box")).to_contain_text("pre-payment gate's signing secret")
    shot("event-saved-gate-secret-shown-once")
    return secret_in(secret_shown_once(page))


def give_details(attendee, email):
    attendee.get_by_label("Name", exact=True).fill("Rui Costa")
    attendee.get_by_label("Email", exact=True).fill(email)
    attendee.get_by_role("button", name="Continue").click()


def test_an_organizer_sets_up_an_event_an_attendee_buys_and_every_notification_arrives_once(
        page, new_page, shot, settings, mailoutbox, organization, organizer, gate, receiver, worker):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the gate and the receiver live on 127.0.0.1

    # --- Ana sets everything up in the admin ---------------------------------------------
    log_in(page, shot)
    add_sandbox_integration(page, shot, organization)
    receiver.secret = add_webhook_endpoint(page, shot, organization, receiver.url)
    gate.secret = add_event_with_gate(page, shot, organization, gate.url)

    event = Event.objects.get(name="Porto Data Night")
    assert event.organization == organization
    assert GateSettings.objects.get(event=event).secret == gate.secret
    assert WebhookEndpoint.objects.get(organization=organization).secret == receiver.secret
    assert IntegrationSettings.objects.filter(organization=organization, provider="sandbox", enabled=True).exists()
    # Once saved, the secret is only ever shown masked.
    page.reload()
    assert gate.secret not in page.content()

    # --- Rui buys two tickets ------------------------------------------------------------
    attendee = new_page()
    attendee.goto(event.get_absolute_url())
    shot("attendee-event-page", attendee)
    attendee.get_by_label("Quantity of Standard").fill("2")
    attendee.get_by_role("button", name="Get tickets").click()
    expect(attendee.get_by_role("heading", name="Your details")).to_be_visible()

    give_details(attendee, "rui@gmail.test")
    alert = attendee.get_by_role("alert")
    expect(alert).to_have_text(GATE_MESSAGE)  # the gate's own words, as text
    assert alert.locator("example").count() == 0
    expect(attendee.get_by_role("heading", name="Your details")).to_be_visible()
    expect(attendee.get_by_label("Email", exact=True)).to_have_value("rui@gmail.test")
    expect(attendee.get_by_label("Name", exact=True)).to_have_value("Rui Costa")
    shot("attendee-denied-by-the-gate", attendee)
    assert not Payment.objects.exists()

    give_details(attendee, "rui@example.com")
    expect(attendee.get_by_role("heading", name="Review your order")).to_be_visible()
    shot("attendee-allowed-review", attendee)
    attendee.get_by_label("Sandbox").check()
    attendee.get_by_role("button", name="Pay").click()
    expect(attendee.get_by_role("button", name="Simulate success")).to_be_visible()
    shot("attendee-sandbox-payment", attendee)
    attendee.get_by_role("button", name="Simulate success").click()
    expect(attendee.get_by_role("heading", name="You're going!")).to_be_visible()
    session = CheckoutSession.objects.get(event=event)
    codes = attendee.locator(".ticket-code").all_inner_texts()
    assert sorted(codes) == sorted(Ticket.objects.filter(session=session).values_list("code", flat=True))
    assert len(codes) == 2
    shot("attendee-ticket-codes", attendee)

    # --- The worker delivers; the receiver refuses "completed" until the dead letter -------
    def settled():
        statuses = dict(Delivery.objects.values_list("event__type", "status"))
        return statuses.get(FAILING_TYPE) == "failed" and set(statuses.values()) == {"succeeded", "failed"}

    wait_for(settled, what="every delivery but the completed one to succeed, and that one to fail")
    failed = Delivery.objects.get(status="failed")
    assert failed.event.type == FAILING_TYPE and failed.attempts_count == 2
    assert receiver.refused[FAILING_TYPE] == 2

    # --- Ana reads the gate log ------------------------------------------------------------
    page.goto("/admin/webhooks/gatecall/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    newest, oldest = rows.nth(0), rows.nth(1)  # newest first
    expect(oldest.locator("td.field-outcome")).to_have_text("Denied")
    expect(oldest.locator("td.field-status_code")).to_have_text("403")
    expect(oldest.locator("td.field-reason")).to_have_text(GATE_MESSAGE)
    expect(oldest.locator("td.field-decision")).to_have_text("deny")
    expect(newest.locator("td.field-decision")).to_have_text("allow")
    expect(newest.locator("td.field-outcome")).to_have_text("Allowed")
    expect(newest.locator("td.field-status_code")).to_have_text("200")
    for row in (newest, oldest):
        expect(row.locator("td.field-session_id_link")).to_have_text(session.public_id)
    shot("organizer-gate-log")

    # --- ... the session and its history -------------------------------------------------------
    page.goto("/admin/checkout/checkoutsession/")
    page.get_by_role("link", name=session.public_id).click()
    expect(page.get_by_text("rui@example.com").first).to_be_visible()
    history = ["Your pre-payment gate refused the details", "Payment started with Sandbox (test payments)",
               f"Paid {format_money(session.amount_total, session.currency)}", "Completed: tickets issued"]
    for step in history:
        expect(page.locator(".order-history").get_by_text(step, exact=True)).to_be_visible()
    for code in codes:
        expect(page.get_by_text(code, exact=True)).to_be_visible()
    # A record, not a form: nothing to save, nothing to delete.
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
    shot("organizer-session-history")

    # --- ... the deliveries, one of them failed ------------------------------------------------
    page.goto("/admin/webhooks/delivery/")
    types = sorted(OutboxEvent.objects.filter(organization=organization).values_list("type", flat=True))
    assert types == sorted(["checkout.session.created", "checkout.session.gate_denied", "checkout.session.paid",
                            FAILING_TYPE])
    expect(page.locator("#result_list tbody tr")).to_have_count(len(types))
    expect(page.locator("#result_list td.field-status", has_text="Succeeded")).to_have_count(len(types) - 1)
    shot("organizer-deliveries-one-failed")

    page.goto("/admin/webhooks/delivery/?status__exact=failed")
    failed_row = page.locator("#result_list tbody tr")
    expect(failed_row).to_have_count(1)
    expect(failed_row.locator("td.field-event_type")).to_have_text(FAILING_TYPE)
    expect(failed_row.locator("td.field-last_status_code")).to_have_text("503")
    page.get_by_role("link", name=failed.public_id).click()
    expect(page.get_by_role("heading", name=failed.public_id)).to_be_visible()
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)  # the record of what was sent stays
    expect(page.locator("#attempts-group, .inline-group").filter(has_text="503").first).to_be_visible()
    shot("organizer-failed-delivery-attempts")

    # Her receiver is back; she retries from the admin.
    receiver.recover()
    page.goto("/admin/webhooks/delivery/?status__exact=failed")
    page.locator("#result_list tbody tr input.action-select").check()
    page.locator("select[name=action]").select_option(label="Retry now")
    shot("organizer-retry-now")
    page.get_by_role("button", name="Go").click()
    expect(page.locator(".messagelist")).to_contain_text("1 delivery queued to be sent now.")
    wait_for(lambda: Delivery.objects.get(pk=failed.pk).status == "succeeded", what="the retried delivery to succeed")
    page.goto(f"/admin/webhooks/delivery/{failed.pk}/change/")
    expect(page.locator("div.field-status")).to_contain_text("Succeeded")
    shot("organizer-retried-delivery-succeeded")
    page.goto("/admin/webhooks/delivery/")
    expect(page.locator("#result_list td.field-status", has_text="Succeeded")).to_have_count(len(types))
    shot("organizer-every-delivery-succeeded")

    # --- What the receiver, the gate and the database hold at the end ---------------------------
    assert not delivery.overdue()  # nothing is left for a sweep to send again
    events = dict(OutboxEvent.objects.values_list("public_id", "type"))
    assert set(receiver.processed) == set(events)  # every event processed...
    assert set(receiver.processed.values()) == {1}  # ...exactly once
    assert not receiver.bad_signatures and not gate.bad_signatures
    for request in receiver.requests:
        payload = Webhook(receiver.secret).verify(request.body, request.headers)
        assert request.headers["webhook-id"] == payload["id"] and payload["id"] in events
    assert len(receiver.requests) == len(events) + 2 + sum(receiver.repeats.values())  # + the two refused attempts
    assert not Delivery.objects.exclude(status="succeeded").exists()
    assert [a.status_code for a in Delivery.objects.get(pk=failed.pk).attempts.order_by("number")] == [503, 503, 200]

    assert gate.decisions == [("rui@gmail.test", "deny"), ("rui@example.com", "allow")]
    # The gate was asked about this very order, each time as it stood.
    for asked in gate.payloads:
        order = asked["data"]["object"]
        assert asked["type"] == "checkout.validate" and order["id"] == session.public_id
        assert [(i["name"], i["quantity"]) for i in order["line_items"]] == [("Standard", 2)]
        assert (order["amount_total"], order["currency"], order["customer"]["name"]) == (3000, "EUR", "Rui Costa")
    # Each notification is about Rui's session, in the state its type names.
    for request in receiver.requests:
        payload = json.loads(request.body)
        assert payload["data"]["object"]["id"] == session.public_id
    sent = {json.loads(r.body)["type"]: json.loads(r.body)["data"]["object"] for r in receiver.requests}
    assert {kind: obj["status"] for kind, obj in sent.items()} == {
        "checkout.session.created": "open", "checkout.session.gate_denied": "open",
        "checkout.session.paid": "paid", FAILING_TYPE: "completed"}
    assert sent["checkout.session.gate_denied"]["customer"]["email"] == "rui@gmail.test"  # what was denied
    assert sent["checkout.session.paid"]["amount_paid"] == 3000  # the money is in the "paid" event
    assert sorted(sent[FAILING_TYPE]["tickets"]) == sorted(codes)  # the codes are in the "completed" one
    # And Rui got his tickets by email.
    [email] = mailoutbox
    assert email.to == ["rui@example.com"] and all(code in email.body for code in codes)
    calls = list(GateCall.objects.order_by("id").values_list("outcome", "status_code", "message"))
    assert calls == [("denied", 403, GATE_MESSAGE), ("allowed", 200, "")]

    session.refresh_from_db()
    assert session.status == Status.COMPLETED and session.customer_email == "rui@example.com"
    assert [str(t) for t in session.transitions.order_by("id")] == [
        "open → open (gate_deny)", "open → payment_pending (start_payment)", "payment_pending → paid (pay)",
        "paid → completed (complete)"]
    ticket_type = event.ticket_types.get()
    assert (ticket_type.quantity, ticket_type.reserved) == (40, 2)
    found = check_invariants(run_database_url())
    assert found.ok(), found.problems
