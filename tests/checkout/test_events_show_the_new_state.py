"""Each outbound event shows what its state brought: the money in ``paid``, the ticket
codes in ``completed`` (found missing by the end-to-end story: both were announced before
they were written, so receivers got ``amount_paid: 0`` and ``tickets: []``)."""

import pytest

from checkout import services
from checkout.models import Source, Ticket
from webhooks.models import OutboxEvent

pytestmark = pytest.mark.django_db


def paid_and_completed(open_session):
    services.record_payment_succeeded(open_session.pk, amount=open_session.amount_total, currency="EUR",
                                      source=Source.PROVIDER_WEBHOOK)
    events = {e.type: e.payload["data"]["object"] for e in OutboxEvent.objects.filter(session=open_session)}
    return events["checkout.session.paid"], events["checkout.session.completed"]


def test_the_paid_event_carries_the_amount_received(open_session):
    paid, _ = paid_and_completed(open_session)
    assert paid["status"] == "paid"
    assert paid["amount_paid"] == open_session.amount_total == 5000


def test_the_completed_event_carries_every_ticket_code(open_session):
    _, completed = paid_and_completed(open_session)
    codes = sorted(Ticket.objects.filter(session=open_session).values_list("code", flat=True))
    assert len(codes) == 2
    assert completed["status"] == "completed" and sorted(completed["tickets"]) == codes
    assert completed["amount_paid"] == 5000


def test_a_payment_after_the_hold_ended_and_sold_out_is_announced_paid_with_its_amount(open_session, ticket_type):
    from checkout.models import CheckoutSession

    CheckoutSession.objects.filter(pk=open_session.pk).update(holds_released=True)
    type(ticket_type).objects.filter(pk=ticket_type.pk).update(reserved=ticket_type.quantity)  # sold out meanwhile
    services.record_payment_succeeded(open_session.pk, amount=5000, currency="EUR", source=Source.PROVIDER_WEBHOOK)
    paid = OutboxEvent.objects.get(session=open_session, type="checkout.session.paid").payload["data"]["object"]
    assert paid["amount_paid"] == 5000 and paid["tickets"] == []
    assert not OutboxEvent.objects.filter(session=open_session, type="checkout.session.completed").exists()
