"""An attendee who left traces everywhere we keep a person, for erasure and retention tests."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from checkout import services
from checkout.models import CheckoutSession, Source
from ievents.models import Question
from payments.models import Payment
from webhooks.models import Delivery, DeliveryAttempt, GateCall, InboundWebhook, WebhookEndpoint


@dataclass
class Trace:
    session: CheckoutSession
    email: str
    name: str


def leave_traces(event, *, name: str, email: str, complete: bool = True) -> Trace:
    """A purchase through the services, and a copy of the person in every log that can hold
    one: provider messages (about the order and unmatched), a gate call, a delivery's
    response, payment instructions and the order's metadata."""
    ticket_type = event.ticket_types.get()
    session = services.create_session(event, [services.Item(ticket_type, 1)], source=Source.API,
                                      metadata={"crm": {"contact": email.upper(), "note": f"VIP {name}"}})
    answers = {q.pk: f"{name} <{email}>" if q.kind == "text" else "M" for q in Question.objects.filter(event=event)}
    session = services.save_attendee_details(session, name=name, email=email, answers=answers)
    Payment.objects.create(session=session, provider="sandbox", amount=session.amount_total, currency="EUR",
                           status="pending", method="mbway",
                           instructions={"method": "mbway", "phone": "+351912345678", "contact": email})
    if complete:
        services.record_payment_succeeded(session.pk, amount=session.amount_total, currency="EUR",
                                          source=Source.PROVIDER_WEBHOOK, detail=f"paid by {email}")
    InboundWebhook.objects.create(provider="stripe", organization=event.organization, session=session,
                                  outcome="processed", verified=True,
                                  payload=f'{{"customer_details": {{"email": "{email}", "name": "{name}"}}}}')
    InboundWebhook.objects.create(provider="stripe", organization=event.organization, outcome="ignored",
                                  payload=f'{{"receipt_email": "{email.upper()}"}}')
    GateCall.objects.create(event=event, session=session, outcome="denied", decision="deny", status_code=403,
                            message=f"{email} is on the list", client_ip="203.0.113.7")
    for delivery in Delivery.objects.filter(event__session=session):
        DeliveryAttempt.objects.create(delivery=delivery, number=1, started_at=timezone.now(), status_code=200,
                                       response_body=f'{{"ok": true, "for": "{email}"}}')
    return Trace(session=CheckoutSession.objects.get(pk=session.pk), email=email, name=name)


@pytest.fixture
def endpoint(organization):
    return WebhookEndpoint.objects.create(organization=organization, url="https://hooks.acme.test/in",
                                          enabled_events=["*"])


def age(queryset, field: str, days: int) -> None:
    """Move the rows' ``field`` this many days into the past (auto_now fields included)."""
    queryset.update(**{field: timezone.now() - timedelta(days=days)})
