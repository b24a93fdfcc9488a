"""Checkouts keep working while a retention pass deletes many rows (PostgreSQL).

A year of the organization's traffic, scaled down (bench/scale_data.py): tens of
thousands of logs past their time and hundreds of abandoned orders still holding a
person. One batch of every rule is applied in another connection and its transaction is
*kept open*: whatever that pass locks stays locked. A whole purchase then
runs under ``lock_timeout``: had any step needed a row or table lock the pass holds, it
would wait, and fail with a lock timeout, instead of completing. No wall clock is measured.
Then the whole pass runs to the end and deletes exactly the old rows.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from bench.scale_data import Scale, fill
from checkout import services
from checkout.models import CheckoutSession, Source, Status
from ievents.operations import retention
from payments import services as payments_services
from webhooks import delivery
from webhooks.models import DeliveryAttempt, GateCall, InboundWebhook

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
# A year of one organization's traffic, scaled down: ~48,000 rows, most of them past their time.
YEAR = Scale(events=2, orders=2_000, gate_calls=20_000, inbound=8_000)


def fill_a_year(organization):
    with connection.cursor() as cursor:
        fill(cursor, [organization.pk], YEAR)


def due_rows() -> dict[str, int]:
    return {rule.name: rule.due(timezone.now()).count() for rule in retention.RULES}


class PassHeldOpen:
    """One batch of every retention rule, applied in another connection whose transaction
    stays open until the block ends."""

    def __init__(self):
        self.applied, self.release = threading.Event(), threading.Event()
        self.rows, self.backend_pid = 0, None
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        try:
            with transaction.atomic():
                self.backend_pid = connection.cursor().connection.info.backend_pid
                now = timezone.now()
                for rule in retention.RULES:
                    ids = list(rule.due(now).values_list("pk", flat=True)[:1000])
                    if ids:
                        self.rows += retention.run_batch(rule, ids)
                self.applied.set()
                self.release.wait(60)
        finally:
            connections.close_all()

    def __enter__(self):
        self.thread.start()
        assert self.applied.wait(60)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(60)


def locks_held_by(pid: int) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT relation::regclass::text FROM pg_locks WHERE pid = %s AND granted"
                       " AND relation IS NOT NULL", [pid])
        return {row[0] for row in cursor.fetchall()}


def purchase_under_lock_timeout(event, ticket_type) -> CheckoutSession:
    """A whole purchase, and the delivery sweep, each step failing instead of waiting for a lock."""
    def step(call):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")
            return call()

    session = step(lambda: services.create_session(event, [services.Item(ticket_type, 1)]))
    session = step(lambda: services.save_attendee_details(session, name="Nora", email="nora@example.com",
                                                          answers={}))
    step(lambda: GateCall.objects.create(event=event, session=session, outcome="allowed", decision="allow",
                                         client_ip="203.0.113.9"))  # what the gate logs
    step(lambda: payments_services.begin_payment(session, "sandbox"))
    step(lambda: InboundWebhook.objects.create(provider="sandbox", organization=event.organization, session=session,
                                               outcome="processed", dedupe_key=f"sandbox:{session.public_id}"))
    step(lambda: services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                                   source=Source.PROVIDER_WEBHOOK))
    step(lambda: delivery.overdue())
    return CheckoutSession.objects.get(pk=session.pk)


def test_a_purchase_completes_without_waiting_while_a_pass_holds_its_locks(event, ticket_type, endpoint):
    fill_a_year(event.organization)
    due = due_rows()
    assert due["gate calls"] > 15_000 and due["abandoned orders' personal data"] > 500

    with PassHeldOpen() as held:
        # The pass really is mid-transaction, holding the tables it deletes from.
        assert {"webhooks_gatecall", "webhooks_inboundwebhook", "webhooks_deliveryattempt",
                "checkout_checkoutsession"} <= locks_held_by(held.backend_pid)
        assert held.rows >= 4000
        bought = purchase_under_lock_timeout(event, ticket_type)
    assert bought.status == Status.COMPLETED and bought.tickets.count() == 1

    report = retention.prune()
    assert GateCall.objects.filter(created_at__lt=timezone.now() - timedelta(days=30)).count() == 0
    assert InboundWebhook.objects.filter(received_at__lt=timezone.now() - timedelta(days=90)).count() == 0
    assert not DeliveryAttempt.objects.filter(started_at__lt=timezone.now() - timedelta(days=90)).exists()
    assert GateCall.objects.filter(session=bought).count() == 1  # today's kept
    assert InboundWebhook.objects.filter(session=bought).count() == 1
    assert held.rows + sum(report.values()) >= sum(due.values())
    assert set(due_rows().values()) == {0}
