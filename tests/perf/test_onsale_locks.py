"""At an on-sale, attendees wait for one another only on the ticket type's row, and only
while it still has tickets (PostgreSQL; checkout/inventory.py, bench/bench_onsale.py).

Each test holds a lock in another connection's open transaction and runs the step under
``lock_timeout``: a step that waited for that lock would fail with a lock timeout.
"""

import threading

import pytest
from django.db import OperationalError, connection, connections, transaction

from checkout import inventory, services
from checkout.models import CheckoutSession, Source, Status
from ievents.models import TicketType

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class InAnotherTransaction:
    """Run ``step`` in another connection's transaction and keep it open until the block ends."""

    def __init__(self, step):
        self.step = step
        self.done, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            with transaction.atomic():
                self.step()
                self.done.set()
                self.release.wait(10)
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.done.wait(5)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(10)


def _with_lock_timeout(call):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
        return call()


def _paying(event, ticket_type):
    session = services.create_session(event, [services.Item(ticket_type, 1)])
    return services.save_attendee_details(session, name="Ana", email="ana@example.com", answers={})


def test_a_winner_completes_while_another_attendee_is_still_taking_tickets(event, ticket_type):
    winner = _paying(event, ticket_type)
    with InAnotherTransaction(lambda: inventory.reserve({ticket_type.pk: 1})):
        done = _with_lock_timeout(lambda: services.record_payment_succeeded(
            winner.pk, amount=winner.amount_total, currency="EUR", source=Source.PROVIDER_WEBHOOK))
    assert done.status == Status.COMPLETED and done.tickets.count() == 1


def test_once_sold_out_the_answer_does_not_wait_for_the_rows_lock(event, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(reserved=ticket_type.quantity)
    locking = TicketType.objects.select_for_update(no_key=True).filter(pk=ticket_type.pk)
    with InAnotherTransaction(lambda: list(locking)):
        with pytest.raises(inventory.SoldOut):
            _with_lock_timeout(lambda: services.create_session(event, [services.Item(ticket_type, 1)]))
    assert not CheckoutSession.objects.exists()


def test_while_tickets_remain_attendees_still_wait_their_turn_on_the_row(event, ticket_type):
    """The lock that prevents overselling is still taken."""
    with InAnotherTransaction(lambda: inventory.reserve({ticket_type.pk: 1})):
        with pytest.raises(OperationalError, match="lock timeout"):
            _with_lock_timeout(lambda: services.create_session(event, [services.Item(ticket_type, 1)]))
    assert TicketType.objects.get(pk=ticket_type.pk).reserved == 1  # the other attendee's, committed
    assert not CheckoutSession.objects.exists()
