"""The retention pass: logs past their time are deleted, orders lose the person, and the
organizer's accounts (orders, payments, tickets, history) are never deleted."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from checkout import services
from checkout.models import CheckoutSession, Source, Status, Ticket, Transition
from ievents.operations import erasure, retention
from payments.models import Payment
from webhooks.models import Delivery, DeliveryAttempt, GateCall, InboundWebhook, OutboxEvent

from .conftest import age, leave_traces

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (
        CheckoutSession, Payment, Ticket, Transition, GateCall, InboundWebhook, OutboxEvent, Delivery,
        DeliveryAttempt)}


@pytest.fixture
def old_and_new(event, endpoint):
    """Two purchases with all their logs: one whose logs are a year old, one from today."""
    old = leave_traces(event, name="Olga Old", email="olga@example.com")
    new = leave_traces(event, name="Nina New", email="nina@example.com")
    for model, field in [(GateCall, "created_at"), (InboundWebhook, "received_at"), (OutboxEvent, "created_at")]:
        age(model.objects.filter(session=old.session), field, 365)
    age(DeliveryAttempt.objects.filter(delivery__event__session=old.session), "started_at", 365)
    age(InboundWebhook.objects.filter(session__isnull=True, payload__icontains=old.email), "received_at", 365)
    Delivery.objects.update(status=Delivery.Status.SUCCEEDED)
    return old, new


def test_a_pass_deletes_the_old_logs_and_keeps_todays(old_and_new):
    old, new = old_and_new
    before = counts()
    report = retention.prune()
    after = counts()
    assert after["GateCall"] == before["GateCall"] - 1 == GateCall.objects.filter(session=new.session).count()
    assert after["InboundWebhook"] == before["InboundWebhook"] - 2
    assert not OutboxEvent.objects.filter(session=old.session).exists()
    assert not Delivery.objects.filter(event__session=old.session).exists()
    assert OutboxEvent.objects.filter(session=new.session).count() > 0
    assert DeliveryAttempt.objects.filter(delivery__event__session=new.session).count() > 0
    assert report["gate calls"] == 1 and report["inbound provider messages"] == 2
    assert report["delivery attempts"] == before["DeliveryAttempt"] - after["DeliveryAttempt"]


def test_orders_payments_tickets_and_history_are_never_deleted(old_and_new):
    old, _ = old_and_new
    age(CheckoutSession.objects.all(), "created_at", 5000)
    before = counts()
    retention.prune(now=timezone.now() + timedelta(days=5000))
    after = counts()
    for kept in ("CheckoutSession", "Payment", "Ticket", "Transition"):
        assert after[kept] == before[kept] > 0, kept
    assert after["GateCall"] == after["InboundWebhook"] == after["DeliveryAttempt"] == 0


def test_an_event_with_a_delivery_still_pending_is_kept_whatever_its_age(old_and_new):
    old, _ = old_and_new
    Delivery.objects.filter(event__session=old.session).update(status=Delivery.Status.PENDING)
    retention.prune()
    assert OutboxEvent.objects.filter(session=old.session).count() == Delivery.objects.filter(
        event__session=old.session).values("event").distinct().count() > 0


def test_a_dry_run_counts_and_changes_nothing(old_and_new, capsys):
    before = counts()
    call_command("prune_records", "--dry-run")
    assert counts() == before
    out = capsys.readouterr().out
    assert "gate calls: would handle 1 rows" in out and "inbound provider messages: would handle 2 rows" in out


def test_the_command_deletes_in_batches_and_reports_progress(old_and_new, capsys):
    old, _ = old_and_new
    GateCall.objects.bulk_create(GateCall(event=old.session.event, outcome="allowed", decision="allow")
                                 for _ in range(7))
    age(GateCall.objects.filter(session__isnull=True), "created_at", 40)
    call_command("prune_records", "--batch-size", "3")
    captured = capsys.readouterr()
    assert "gate calls: handled 8 rows" in captured.out
    assert "gate calls: 8 rows in 3 batches" in captured.err
    assert GateCall.objects.filter(created_at__lt=timezone.now() - timedelta(days=30)).count() == 0


def test_the_periods_are_settings(old_and_new, settings):
    settings.RETENTION_GATE_CALL_DAYS = 400
    settings.RETENTION_INBOUND_WEBHOOK_DAYS = 400
    before = counts()
    retention.prune()
    assert counts()["GateCall"] == before["GateCall"] and counts()["InboundWebhook"] == before["InboundWebhook"]


def test_the_pass_runs_periodically_in_celery_beat():
    from ievents import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["prune-records"]
    assert entry["task"] == tasks.prune_records.name
    assert entry["schedule"] == settings.RETENTION_INTERVAL_SECONDS


# --- personal data ---------------------------------------------------------------------
@pytest.fixture
def abandoned(event, endpoint):
    trace = leave_traces(event, name="Abe Andon", email="abe@example.com", complete=False)
    services.expire_session(trace.session.pk, Source.TIMER, detail="hold expired")
    return trace


def test_an_abandoned_order_loses_the_person_after_the_period_and_keeps_its_amounts(abandoned):
    retention.prune()
    assert CheckoutSession.objects.get(pk=abandoned.session.pk).customer_email == abandoned.email  # too recent
    age(CheckoutSession.objects.filter(pk=abandoned.session.pk), "updated_at", settings.PERSONAL_DATA_ABANDONED_DAYS + 1)
    report = retention.prune()
    order = CheckoutSession.objects.get(pk=abandoned.session.pk)
    assert (order.customer_name, order.customer_email, order.status) == (erasure.MARKER, "", Status.EXPIRED)
    assert order.amount_total > 0 and order.transitions.exists()
    assert set(order.answers.values_list("value", flat=True)) == {erasure.MARKER}
    assert report["abandoned orders' personal data"] > 0
    assert retention.prune()["abandoned orders' personal data"] == 0  # done once


def test_a_completed_order_keeps_the_person_until_long_after_its_event(event, endpoint):
    trace = leave_traces(event, name="Cara Complete", email="cara@example.com")
    age(CheckoutSession.objects.all(), "updated_at", 400)
    retention.prune()
    assert CheckoutSession.objects.get(pk=trace.session.pk).customer_email == trace.email
    type(event).objects.filter(pk=event.pk).update(
        starts_at=timezone.now() - timedelta(days=settings.PERSONAL_DATA_AFTER_EVENT_DAYS + 1))
    retention.prune()
    order = CheckoutSession.objects.get(pk=trace.session.pk)
    assert (order.customer_name, order.customer_email, order.status) == (erasure.MARKER, "", Status.COMPLETED)
    assert order.tickets.count() == 1


def test_a_late_payment_between_the_listing_and_the_lock_keeps_the_person(abandoned):
    # The rule lists the order as abandoned; by the time its batch locks it, it was paid.
    age(CheckoutSession.objects.filter(pk=abandoned.session.pk), "updated_at", 40)
    ids = list(retention.abandoned_orders_due(timezone.now()).values_list("pk", flat=True))
    assert ids == [abandoned.session.pk]
    services.record_payment_succeeded(abandoned.session.pk, amount=abandoned.session.amount_total, currency="EUR",
                                      source=Source.PROVIDER_WEBHOOK)
    rule = next(r for r in retention.RULES if r.name == "abandoned orders' personal data")
    assert retention.run_batch(rule, ids) == 0
    assert CheckoutSession.objects.get(pk=abandoned.session.pk).customer_email == abandoned.email
