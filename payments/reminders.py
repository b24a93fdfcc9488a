"""A Multibanco reference not paid yet is recalled to the attendee before it expires.

Run by celery beat every ten minutes. A payment still waiting whose reference expires within
``PAYMENT_REMINDER_HOURS`` gets one reminder (``checkout.attendee_emails``, keyed by the
payment: queued twice, sent once), with the entity, reference, amount and deadline.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from checkout import attendee_emails
from checkout.models import Status

from .models import Payment


def remind_pending_payments(now: datetime | None = None) -> int:
    """Queue the reminders due now; returns how many were queued."""
    now = now or timezone.now()
    soon = now + timedelta(hours=settings.PAYMENT_REMINDER_HOURS)
    waiting = (Payment.objects.filter(session__status=Status.PAYMENT_PENDING, method="multibanco",
                                      status=Payment.Status.PENDING, instructions__has_key="deadline_at")
               .exclude(session__customer_email="")
               .select_related("session__event", "session__organization").order_by("id"))
    queued = 0
    for payment in waiting.iterator(chunk_size=500):
        deadline = datetime.fromisoformat(payment.instructions["deadline_at"])
        if not now < deadline <= soon:
            continue
        with transaction.atomic():
            queued += attendee_emails.queue(
                payment.session, attendee_emails.Kind.REMINDER, f"reminder:{payment.public_id}",
                params={"entity": payment.instructions.get("entity", ""),
                        "reference": payment.instructions.get("reference", ""),
                        "amount": payment.amount, "deadline_at": deadline.isoformat()})
    return queued
