"""Reconciliation: whatever order, number or amount provider news arrives in, money is
recorded once and exactly right, and a session never moves backwards."""

import itertools

import pytest
from django.core import mail

from checkout import services
from checkout.models import Source, Status
from payments.base import PaymentUpdate, UpdateKind
from payments.services import apply_update
from webhooks.models import OutboxEvent

from .helpers import STRIPE_SECRET, checkout_object, configure, intent_object, pending_session, post_stripe, stripe_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_org(organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    return organization


def _events(session):
    return list(OutboxEvent.objects.filter(session=session).values_list("type", flat=True))


EARLIER_AND_SUCCESS = {
    "processing": lambda s: stripe_event("payment_intent.processing", intent_object(s)),
    "authorized": lambda s: stripe_event("payment_intent.amount_capturable_updated",
                                         intent_object(s, amount_capturable=s.amount_total)),
    "succeeded": lambda s: stripe_event("payment_intent.succeeded", intent_object(s, amount_received=s.amount_total)),
    "completed": lambda s: stripe_event("checkout.session.completed", checkout_object(s)),
}


@pytest.mark.parametrize("order", list(itertools.permutations(EARLIER_AND_SUCCESS)))
def test_every_ordering_of_a_success_and_its_earlier_events_ends_completed_once(client, stripe_org, event, order):
    session, _ = pending_session(event, provider="stripe")
    seen = []
    for name in order:
        response = post_stripe(client, stripe_org.public_id, EARLIER_AND_SUCCESS[name](session))
        assert response.status_code == 200
        session.refresh_from_db()
        seen.append(session.status)
    assert session.status == Status.COMPLETED
    # Once paid, never back: nothing after the first completion is anything but completed.
    first_done = seen.index(Status.COMPLETED)
    assert set(seen[first_done:]) == {Status.COMPLETED}
    events = _events(session)
    assert events.count("checkout.session.paid") == 1 and events.count("checkout.session.completed") == 1
    assert session.tickets.count() == 2
    assert not session.transitions.filter(to_status=Status.PROCESSING, from_status=Status.COMPLETED).exists()


def test_processing_after_paid_is_recorded_and_ignored(client, stripe_org, event):
    session, _ = pending_session(event, provider="stripe")
    post_stripe(client, stripe_org.public_id, EARLIER_AND_SUCCESS["completed"](session))
    response = post_stripe(client, stripe_org.public_id, EARLIER_AND_SUCCESS["processing"](session))
    assert response.json()["outcome"] == "ignored"
    session.refresh_from_db()
    assert session.status == Status.COMPLETED


def test_a_currency_mismatch_is_flagged_not_completed(client, stripe_org, event):
    session, _ = pending_session(event, provider="stripe")
    post_stripe(client, stripe_org.public_id, stripe_event("checkout.session.completed",
                checkout_object(session, currency="usd")))
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING and "USD" in session.needs_attention
    assert session.tickets.count() == 0


def test_an_amount_mismatch_is_flagged_not_completed_and_the_organizer_told(client, stripe_org, event,
                                                                            django_capture_on_commit_callbacks):
    session, _ = pending_session(event, provider="stripe")
    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(client, stripe_org.public_id, stripe_event("checkout.session.completed",
                    checkout_object(session, amount=100)))
    session.refresh_from_db()
    assert session.status == Status.PAYMENT_PENDING and "paid 100" in session.needs_attention
    assert [m.to for m in mail.outbox] == [["ops@acme.test"]]


def _expire(session):
    services.expire_session(session.pk, Source.TIMER, detail="hold expired")
    session.refresh_from_db()
    assert session.status == Status.EXPIRED and session.holds_released


def test_a_payment_after_the_hold_expired_completes_when_tickets_are_left(client, stripe_org, event, ticket_type):
    session, _ = pending_session(event, provider="stripe")
    _expire(session)
    ticket_type.refresh_from_db()
    assert ticket_type.reserved == 0
    post_stripe(client, stripe_org.public_id, EARLIER_AND_SUCCESS["completed"](session))
    session.refresh_from_db()
    ticket_type.refresh_from_db()
    assert session.status == Status.COMPLETED and not session.needs_attention and not session.holds_released
    assert ticket_type.reserved == 2 and session.tickets.count() == 2


def test_a_payment_after_the_hold_expired_and_sold_out_is_flagged_for_refund(
        client, stripe_org, organization, django_capture_on_commit_callbacks):
    from tests.conftest import make_event

    event = make_event(organization, quantity=2, providers=("stripe",))
    session, _ = pending_session(event, provider="stripe", quantity=2)
    _expire(session)
    rival = services.create_session(event, [services.Item(event.ticket_types.get(), 2)])  # takes the last two
    with django_capture_on_commit_callbacks(execute=True):
        response = post_stripe(client, stripe_org.public_id, EARLIER_AND_SUCCESS["completed"](session))
    assert response.status_code == 200
    session.refresh_from_db()
    assert session.status == Status.PAID and "refund needed" in session.needs_attention
    assert session.tickets.count() == 0 and session.amount_paid == session.amount_total
    assert rival.line_items.get().quantity == 2
    assert event.ticket_types.get().reserved == 2  # no oversell
    assert any("needs your attention" in m.subject for m in mail.outbox)
    # The same news again changes nothing and tells no one twice.
    sent = len(mail.outbox)
    post_stripe(client, stripe_org.public_id, EARLIER_AND_SUCCESS["succeeded"](session))
    assert len(mail.outbox) == sent


def test_apply_update_ignores_a_partial_refund_told_twice(stripe_org, event):
    session, _ = pending_session(event, provider="stripe")
    apply_update(session, PaymentUpdate(UpdateKind.SUCCEEDED, amount=5000, currency="EUR"),
                 source=Source.PROVIDER_WEBHOOK, provider="stripe")
    partial = PaymentUpdate(UpdateKind.PARTIALLY_REFUNDED, amount=2000)
    assert apply_update(session, partial, source=Source.PROVIDER_WEBHOOK, provider="stripe") == "applied"
    assert apply_update(session, partial, source=Source.PROVIDER_WEBHOOK, provider="stripe") == "ignored"
    assert apply_update(session, PaymentUpdate(UpdateKind.PARTIALLY_REFUNDED, amount=3000),
                        source=Source.PROVIDER_WEBHOOK, provider="stripe") == "applied"
    session.refresh_from_db()
    assert session.amount_refunded == 3000 and _events(session).count("checkout.session.refunded") == 2


def test_a_second_payment_for_a_paid_order_is_flagged_for_refund_once(client, stripe_org, event,
                                                                      django_capture_on_commit_callbacks):
    """The attendee got a Multibanco reference, then paid by card; the reference is paid at
    an ATM the next day anyway. The order stays completed; the organizer is told to refund."""
    from payments.models import Payment

    session, card = pending_session(event, provider="stripe", reference="cs_test_card")
    reference = Payment.objects.create(session=session, provider="ifthenpay", provider_reference="REQ-mb",
                                       method="multibanco", amount=session.amount_total, currency="EUR",
                                       status=Payment.Status.PENDING)
    card_paid = PaymentUpdate(UpdateKind.SUCCEEDED, provider_reference="cs_test_card", amount=5000, currency="EUR")
    assert apply_update(session, card_paid, source=Source.PROVIDER_WEBHOOK, provider="stripe") == "applied"
    atm_paid = PaymentUpdate(UpdateKind.SUCCEEDED, provider_reference="REQ-mb", amount=5000, currency="EUR")
    with django_capture_on_commit_callbacks(execute=True):
        assert apply_update(session, atm_paid, source=Source.PROVIDER_WEBHOOK, provider="ifthenpay") == "applied"
    session.refresh_from_db()
    reference.refresh_from_db()
    assert session.status == Status.COMPLETED and "paid twice" in session.needs_attention
    assert reference.status == Payment.Status.SUCCEEDED and reference.amount_received == 5000
    assert [m.to for m in mail.outbox] == [["ops@acme.test"]]
    # The same news again, and news of the card payment again, change nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert apply_update(session, atm_paid, source=Source.PROVIDER_WEBHOOK, provider="ifthenpay") == "ignored"
        assert apply_update(session, card_paid, source=Source.PROVIDER_WEBHOOK, provider="stripe") == "ignored"
    assert len(mail.outbox) == 1
    card.refresh_from_db()
    assert card.status == Payment.Status.SUCCEEDED


def test_a_mismatch_told_twice_tells_the_organizer_once(client, stripe_org, event, django_capture_on_commit_callbacks):
    session, _ = pending_session(event, provider="stripe")
    with django_capture_on_commit_callbacks(execute=True):
        first = post_stripe(client, stripe_org.public_id, stripe_event("checkout.session.completed",
                            checkout_object(session, amount=100)))
        again = post_stripe(client, stripe_org.public_id, stripe_event("payment_intent.succeeded",
                            intent_object(session, amount_received=100)))
    assert (first.json()["outcome"], again.json()["outcome"]) == ("processed", "ignored")
    assert len(mail.outbox) == 1
