"""Row locks cover what they guard and nothing more (PostgreSQL).

Starting a payment locks the checkout session's row: that lock guards the money. It used
to lock the event's row as well (``select_for_update().select_related("event")`` locks
every joined row), which guards nothing and collides with the ``FOR KEY SHARE`` lock
PostgreSQL takes on the event for every row inserted that references it: a new checkout
session, a gate call. So each attendee clicking *Pay* made every attendee opening a
checkout for the same event wait, and the other way round.
"""

import threading

import pytest
from django.db import OperationalError, connection, connections, transaction

from checkout import services
from checkout.models import CheckoutSession, Status
from payments import services as payments_services
from payments.models import Payment

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class HeldLock:
    """Another connection holding a row lock in an open transaction until released."""

    def __init__(self, sql: str, params: list):
        self.sql, self.params = sql, params
        self.taken, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(self.sql, self.params)
                self.taken.set()
                self.release.wait(10)
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.taken.wait(5)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(10)


def _approved(session):
    return services.save_attendee_details(session, name="Ana", email="ana@example.com", answers={})


def _with_lock_timeout(call):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
        return call()


def test_starting_a_payment_does_not_wait_for_a_checkout_being_opened_for_the_same_event(event, ticket_type):
    session = _approved(services.create_session(event, [services.Item(ticket_type, 1)]))
    # What an INSERT of a session (or a gate call) for this event holds until it commits.
    with HeldLock("SELECT id FROM ievents_event WHERE id = %s FOR KEY SHARE", [event.pk]):
        payment = _with_lock_timeout(lambda: payments_services.begin_payment(session, "sandbox"))
    assert payment.status == Payment.Status.PENDING
    assert CheckoutSession.objects.get(pk=session.pk).status == Status.PAYMENT_PENDING


def test_starting_a_payment_still_waits_for_the_sessions_own_lock(event, ticket_type):
    """The lock that guards the money is still taken: a webhook or a second tab holding the
    session's row makes *Pay* wait (here: give up after the lock timeout) and change nothing."""
    session = _approved(services.create_session(event, [services.Item(ticket_type, 1)]))
    with HeldLock("SELECT id FROM checkout_checkoutsession WHERE id = %s FOR UPDATE", [session.pk]):
        with pytest.raises(OperationalError, match="lock timeout"):
            _with_lock_timeout(lambda: payments_services.begin_payment(session, "sandbox"))
    assert CheckoutSession.objects.get(pk=session.pk).status == Status.OPEN
    assert not Payment.objects.exists()
