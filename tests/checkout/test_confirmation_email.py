"""The attendee's ticket email is sent at least once: never lost to a mail server that is
down or a process that died; never sent by two at once."""

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import override_settings
from django.utils import timezone

from checkout import emails, services, tasks
from checkout.models import CheckoutSession, Source, Status
from payments import services as payments_services

pytestmark = pytest.mark.django_db
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
DOWN = "tests.checkout.test_confirmation_email.MailServerDown"


class MailServerDown(BaseEmailBackend):
    def send_messages(self, messages):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


def complete(open_session, source, capture):
    session = services.save_attendee_details(open_session, name="Ana", email="ana@example.com", answers={})
    payments_services.begin_payment(session, "sandbox")
    with capture(execute=True):
        services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR", source=source)
    return CheckoutSession.objects.get(pk=session.pk)


def test_on_the_return_page_the_email_is_sent_in_the_request_and_marked_sent(
        open_session, django_capture_on_commit_callbacks):
    session = complete(open_session, Source.RETURN_PAGE, django_capture_on_commit_callbacks)
    assert session.status == Status.COMPLETED and session.confirmation_sent_at is not None
    codes = [t.code for t in session.tickets.all()]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ana@example.com"]
    assert all(code in mail.outbox[0].body for code in codes)
    assert emails.sweep_confirmations(now=timezone.now() + timedelta(hours=1)) == 0  # never twice
    assert len(mail.outbox) == 1


def test_a_provider_webhook_leaves_the_email_to_the_sweep(open_session, django_capture_on_commit_callbacks):
    session = complete(open_session, Source.PROVIDER_WEBHOOK, django_capture_on_commit_callbacks)
    assert session.status == Status.COMPLETED
    assert mail.outbox == [] and session.confirmation_sent_at is None  # the provider waited for no mail server
    assert tasks.sweep_confirmations.run() == 1  # what celery beat runs, seconds later
    assert len(mail.outbox) == 1 and session.tickets.first().code in mail.outbox[0].body
    assert tasks.sweep_confirmations.run() == 0 and len(mail.outbox) == 1


def test_a_mail_server_that_is_down_only_delays_the_email(open_session, django_capture_on_commit_callbacks,
                                                          settings):
    settings.EMAIL_BACKEND = DOWN
    session = complete(open_session, Source.RETURN_PAGE, django_capture_on_commit_callbacks)
    assert session.status == Status.COMPLETED and session.confirmation_sent_at is None  # the purchase stands
    assert emails.sweep_confirmations() == 0  # still leased by the failed try: nobody sends it meanwhile

    later = timezone.now() + timedelta(seconds=settings.CONFIRMATION_LEASE_SECONDS + 1)
    assert emails.sweep_confirmations(now=later) == 0  # still down: still not marked sent
    settings.EMAIL_BACKEND = LOCMEM
    later += timedelta(seconds=settings.CONFIRMATION_LEASE_SECONDS + 1)
    assert emails.sweep_confirmations(now=later) == 1
    assert len(mail.outbox) == 1 and CheckoutSession.objects.get(pk=session.pk).confirmation_sent_at is not None


def test_two_senders_never_send_at_once_and_a_dead_one_is_taken_over(open_session, django_capture_on_commit_callbacks):
    session = complete(open_session, Source.PROVIDER_WEBHOOK, django_capture_on_commit_callbacks)
    # A sender claimed it and died before sending (its lease runs on).
    CheckoutSession.objects.filter(pk=session.pk).update(
        confirmation_lease_until=timezone.now() + timedelta(seconds=60))
    assert emails.send_confirmation(session.pk) is False and mail.outbox == []
    assert emails.sweep_confirmations() == 0
    CheckoutSession.objects.filter(pk=session.pk).update(confirmation_lease_until=timezone.now() - timedelta(seconds=1))
    assert emails.send_confirmation(session.pk) is True and len(mail.outbox) == 1


@override_settings(CONFIRMATION_GIVE_UP_HOURS=72)
def test_the_sweep_leaves_alone_what_is_not_due(open_session, django_capture_on_commit_callbacks, event,
                                                ticket_type):
    session = complete(open_session, Source.PROVIDER_WEBHOOK, django_capture_on_commit_callbacks)
    CheckoutSession.objects.filter(pk=session.pk).update(completed_at=timezone.now() - timedelta(hours=73))
    unfinished = services.create_session(event, [services.Item(ticket_type, 1)])
    services.save_attendee_details(unfinished, name="Bo", email="bo@example.com", answers={})
    assert emails.sweep_confirmations(now=timezone.now() + timedelta(minutes=5)) == 0
    assert mail.outbox == []
