"""A purchase through the server-rendered pages, from the event page to the ticket codes."""

import re

import pytest
from django.core import mail

from checkout.models import CheckoutSession, Status
from ievents.models import Question
from ievents.money import format_money as money
from payments.models import Payment
from webhooks.models import OutboxEvent

pytestmark = pytest.mark.django_db


def _start(client, event, ticket_type, qty=2):
    response = client.post(event.get_absolute_url(), {f"qty_{ticket_type.public_id}": qty})
    assert response.status_code == 302
    return CheckoutSession.objects.get(), response["Location"]


def _fill(client, session, email="ana@example.com"):
    size = Question.objects.get(text="T-shirt size")
    return client.post(f"/c/{session.public_id}/", {"name": "Ana Silva", "email": email, f"q_{size.pk}": "M"})


def test_sandbox_purchase_completes_with_ticket_codes_and_an_email(
    client, event, ticket_type, django_capture_on_commit_callbacks
):
    session, location = _start(client, event, ticket_type)
    assert location == f"/c/{session.public_id}/"
    page = client.get(location).content.decode()
    for label in ("Name", "Email", "Company", "T-shirt size"):
        assert f">{label}" in page
    assert "Continue" in page

    response = _fill(client, session)
    assert response["Location"] == f"/c/{session.public_id}/review/"
    review = client.get(response["Location"]).content.decode()
    assert f">Pay {money(session.amount_total, session.currency)}</button>" in review  # "Pay €50.00"

    response = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    payment = Payment.objects.get()
    assert response["Location"] == f"/sandbox/pay/{payment.public_id}/"
    sandbox = client.get(response["Location"]).content.decode()
    assert "Simulate success" in sandbox and "Simulate failure" in sandbox

    response = client.post(response["Location"], {"outcome": "success"})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(response["Location"])  # the return page confirms with the provider
    assert response["Location"] == f"/c/{session.public_id}/status/"
    status = client.get(response["Location"]).content.decode()

    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    codes = [t.code for t in session.tickets.all()]
    assert len(codes) == 2
    for code in codes:
        assert code in status
    assert len(mail.outbox) == 1 and codes[0] in mail.outbox[0].body
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 2
    types = list(OutboxEvent.objects.filter(session=session).order_by("id").values_list("type", flat=True))
    assert types == ["checkout.session.created", "checkout.session.paid", "checkout.session.completed"]


def test_simulated_failure_shows_an_alert_and_a_retry_that_can_succeed(client, event, ticket_type):
    session, _ = _start(client, event, ticket_type)
    _fill(client, session)
    response = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    response = client.post(response["Location"], {"outcome": "failure"})
    response = client.get(client.get(response["Location"])["Location"])
    page = response.content.decode()
    assert 'role="alert"' in page and "did not go through" in page
    session.refresh_from_db()
    assert session.status == Status.REJECTED

    response = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    second = Payment.objects.order_by("-id").first()
    client.get(client.post(response["Location"], {"outcome": "success"})["Location"])
    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    assert second.pk != Payment.objects.order_by("id").first().pk


def test_review_without_submitted_details_sends_the_attendee_back_to_the_form(client, event, ticket_type):
    session, _ = _start(client, event, ticket_type)
    response = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    assert response["Location"] == f"/c/{session.public_id}/"
    assert not Payment.objects.exists()


def test_invalid_details_keep_what_was_typed_and_change_nothing(client, event, ticket_type):
    session, _ = _start(client, event, ticket_type)
    response = client.post(f"/c/{session.public_id}/", {"name": "Ana", "email": "not-an-email"})
    assert response.status_code == 200
    assert 'value="Ana"' in response.content.decode()
    session.refresh_from_db()
    assert session.customer_email == ""


def test_a_free_order_completes_without_a_provider(client, organization):
    from tests.conftest import make_event

    event = make_event(organization, price=0, questions=False)
    tt = event.ticket_types.get()
    session, _ = _start(client, event, tt, qty=1)
    client.post(f"/c/{session.public_id}/", {"name": "Ana", "email": "ana@example.com"})
    response = client.post(f"/c/{session.public_id}/review/", {})
    assert response["Location"] == f"/c/{session.public_id}/status/"
    session.refresh_from_db()
    assert session.status == Status.COMPLETED and not Payment.objects.exists()
    assert re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", client.get(response["Location"]).content.decode())


def test_sold_out_shows_an_alert_and_holds_nothing(client, organization):
    from tests.conftest import make_event

    event = make_event(organization, quantity=1)
    tt = event.ticket_types.get()
    _start(client, event, tt, qty=1)
    response = client.post(event.get_absolute_url(), {f"qty_{tt.public_id}": 1})
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode() or "Ensure this value" in response.content.decode()
    assert CheckoutSession.objects.count() == 1


def test_paying_twice_from_two_tabs_reuses_the_payment_under_way(client, event, ticket_type):
    session, _ = _start(client, event, ticket_type)
    _fill(client, session)
    first = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    second = client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    assert first["Location"] == second["Location"]
    assert Payment.objects.count() == 1


def test_details_can_be_changed_after_leaving_the_provider_page(client, event, ticket_type):
    session, _ = _start(client, event, ticket_type)
    _fill(client, session)
    client.post(f"/c/{session.public_id}/review/", {"provider": "sandbox"})
    response = _fill(client, session, email="other@example.com")
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.customer_email == "other@example.com" and session.status == Status.PAYMENT_PENDING


def test_canceling_releases_the_tickets_and_returns_to_the_cancel_url(client, event, ticket_type):
    from checkout import services

    session = services.create_session(event, [services.Item(ticket_type, 3)], cancel_url="https://shop.example/cart")
    response = client.post(f"/c/{session.public_id}/cancel/")
    assert response["Location"] == "https://shop.example/cart"
    session.refresh_from_db()
    ticket_type.refresh_from_db()
    assert session.status == Status.CANCELED and ticket_type.reserved == 0
    again = client.post(f"/c/{session.public_id}/cancel/")  # a second click changes nothing
    assert again["Location"] == f"/c/{session.public_id}/status/"
