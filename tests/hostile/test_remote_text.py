"""Whatever a remote party sends is data: escaped on every page and admin screen that shows it.

Remote text reaches pages from a gate's denial message, a receiver's answer to a delivery,
a provider's webhook (payload, ids, types, the detail recorded on a transition), a
provider's payment instructions, and the attendee's own form. Each test puts a script in
through the real path, opens every screen that shows it, and checks it is shown (the
control) but only escaped.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from checkout.models import Status
from ievents.models import Membership
from payments.models import Payment
from tests.servers import LocalServer, Reply
from webhooks.models import Delivery, GateCall, GateSettings, InboundWebhook

from .conftest import state_fingerprint

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("pwn")</script><img src=x onerror=steal()>'
RAW_MARKERS = ("<script>alert", "<img src=x onerror")
ESCAPED = "&lt;script&gt;alert("


def assert_escaped(html: str, *, shown: bool = True):
    for marker in RAW_MARKERS:
        assert marker not in html, f"unescaped {marker!r} in the page"
    if shown:
        assert ESCAPED in html, "the control: the text is on the page, escaped"


@pytest.fixture
def organizer(client, mine):
    user = get_user_model().objects.create_user("ana-x", is_staff=True)
    Membership.objects.create(user=user, organization=mine.org)
    client.force_login(user)
    return user


@pytest.fixture
def hostile_gate(mine):
    with LocalServer(Reply(403, {"message": HOSTILE})) as server:
        GateSettings.objects.filter(pk=mine.gate.pk).update(url=server.url, enabled=True)
        yield server


def test_a_gate_message_is_escaped_for_the_attendee_and_in_every_admin_screen(client, mine, organizer, hostile_gate):
    session = mine.open_session
    size_q = mine.event.questions.get(kind="choice")
    page = client.post(f"/c/{session.public_id}/", {"name": "Ana", "email": "ana@example.com", f"q_{size_q.pk}": "M"})
    assert page.status_code == 200
    assert_escaped(page.content.decode())
    call = GateCall.objects.filter(session=session).latest("id")
    assert call.outcome == "denied" and "<script>" in call.message  # stored as received, capped
    assert_escaped(client.get("/admin/webhooks/gatecall/").content.decode())
    assert_escaped(client.get(f"/admin/webhooks/gatecall/{call.pk}/change/").content.decode())
    # The organizer's "send a test request" action reports the message too.
    response = client.post("/admin/ievents/event/", {"action": "send_gate_test_request",
                                                      "_selected_action": [mine.event.pk]}, follow=True)
    assert_escaped(response.content.decode())


@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b'{"message":' * 3000 + b'"x"' + b"}" * 3000])
@pytest.mark.parametrize("status", [200, 403])
def test_a_gate_answering_a_json_bomb_is_an_error_or_a_denial_not_a_crash(client, mine, status, body):
    with LocalServer(Reply(status, body, headers={"Content-Type": "application/json"})) as server:
        GateSettings.objects.filter(pk=mine.gate.pk).update(url=server.url, enabled=True, on_error="block")
        session = mine.open_session
        size_q = mine.event.questions.get(kind="choice")
        page = client.post(f"/c/{session.public_id}/",
                           {"name": "Ana", "email": "ana@example.com", f"q_{size_q.pk}": "M"})
    assert page.status_code == 200 and b'role="alert"' in page.content
    call = GateCall.objects.filter(session=session).latest("id")
    assert call.decision == "deny" and call.outcome == ("error" if status == 200 else "denied")


def test_a_receivers_answer_is_escaped_in_the_delivery_admin(client, mine, organizer):
    with LocalServer(Reply(500, HOSTILE, headers={"Content-Type": "text/html"})) as server:
        mine.endpoint.url = server.url
        mine.endpoint.save(update_fields=["url"])
        client.post("/admin/webhooks/webhookendpoint/", {"action": "send_test_event",
                                                         "_selected_action": [mine.endpoint.pk]})
    delivery = Delivery.objects.filter(endpoint=mine.endpoint, event__type="webhook_endpoint.test").get()
    assert HOSTILE in delivery.attempts.get().response_body
    assert_escaped(client.get(f"/admin/webhooks/delivery/{delivery.pk}/change/").content.decode())
    assert_escaped(client.get("/admin/webhooks/delivery/").content.decode(), shown=False)


def test_a_providers_payload_is_escaped_in_the_inbound_log(client, mine, organizer):
    # Unsigned: refused, but logged as received.
    body = json.dumps({"id": HOSTILE, "type": HOSTILE, "data": {"object": {"note": HOSTILE}}})
    response = client.post(f"/api/webhooks/stripe/{mine.org.public_id}", body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE="t=1,v1=00")
    assert response.status_code == 400
    # Signed: its id and type are stored and listed.
    import stripe

    header = stripe.WebhookSignature.generate_signature_header(body, mine.secrets["stripe"])
    response = client.post(f"/api/webhooks/stripe/{mine.org.public_id}", body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code in (200, 400)
    assert response["Content-Type"] == "application/json"  # echoed text in a JSON answer is never rendered as HTML
    listing = client.get("/admin/webhooks/inboundwebhook/").content.decode()
    assert_escaped(listing)
    for row in InboundWebhook.objects.filter(organization=mine.org).exclude(pk=mine.inbound.pk):
        assert_escaped(client.get(f"/admin/webhooks/inboundwebhook/{row.pk}/change/").content.decode())


def test_a_providers_words_on_a_transition_are_escaped_in_the_session_admin(client, mine, organizer):
    session, _ = mine.pending["ifthenpay"]
    response = client.get(f"/api/webhooks/ifthenpay/{mine.org.public_id}", {
        "key": mine.secrets["ifthenpay"], "requestId": "REQ-A", "amount": "50.00", "payment_datetime": HOSTILE})
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status in (Status.PAID, Status.COMPLETED)
    assert session.transitions.filter(detail__contains="<script>").exists()
    assert_escaped(client.get(f"/admin/checkout/checkoutsession/{session.pk}/change/").content.decode())
    assert_escaped(client.get(f"/c/{session.public_id}/status/").content.decode(), shown=False)


def test_payment_instructions_from_a_provider_are_escaped_on_the_status_page(client, mine):
    session, payment = mine.pending["easypay"]
    Payment.objects.filter(pk=payment.pk).update(method="multibanco",
                                                 instructions={"entity": HOSTILE, "reference": HOSTILE})
    assert_escaped(client.get(f"/c/{session.public_id}/status/").content.decode())


def test_an_attendees_own_text_is_escaped_for_the_attendee_and_the_organizer(client, mine, organizer):
    session = mine.open_session
    company_q, size_q = mine.event.questions.order_by("position")
    mine.event.payment_providers = ["sandbox"]
    mine.event.save(update_fields=["payment_providers"])
    response = client.post(f"/c/{session.public_id}/", {"name": HOSTILE[:200], "email": "ana@example.com",
                                                         f"q_{company_q.pk}": HOSTILE, f"q_{size_q.pk}": "M"})
    assert response.status_code == 302
    assert_escaped(client.get(f"/c/{session.public_id}/review/").content.decode())
    assert_escaped(client.get(f"/admin/checkout/checkoutsession/{session.pk}/change/").content.decode())
    assert_escaped(client.get("/admin/checkout/checkoutsession/").content.decode(), shown=False)


def test_an_organizers_event_text_is_escaped_on_the_public_pages(client, mine):
    """Organizer text is escaped too: an organizer account taken over must not script attendees."""
    mine.event.name = HOSTILE[:200]
    mine.event.description = HOSTILE
    mine.event.save(update_fields=["name", "description"])
    before = state_fingerprint()
    assert_escaped(client.get(mine.event.get_absolute_url()).content.decode())
    assert_escaped(client.get(f"/c/{mine.open_session.public_id}/status/").content.decode())
    assert state_fingerprint() == before
