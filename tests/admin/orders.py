"""Orders as the back office tests need them, built directly: whatever path made them, the
admin shows what is stored."""

from __future__ import annotations

from checkout import services
from checkout.models import Answer, CheckoutSession, Source, Status, Ticket, Transition, search_key
from payments.models import Payment

PAID_STEPS = [("open", "payment_pending", "start_payment", Source.ATTENDEE, "stripe"),
              ("payment_pending", "paid", "pay", Source.PROVIDER_WEBHOOK, "stripe: checkout.session.completed"),
              ("paid", "completed", "complete", Source.PROVIDER_WEBHOOK, "")]


def make_order(event, *, name="Rui Costa", email="rui@example.com", quantity=2, answers=None, codes=None,
               provider="stripe", reference="pi_3Abc", attention="", instructions=None) -> CheckoutSession:
    """A completed order of ``quantity`` tickets of the event's first type, paid with ``provider``."""
    ticket_type = event.ticket_types.first()
    session = services.create_session(event, [services.Item(ticket_type, quantity)], customer_email=email)
    CheckoutSession.objects.filter(pk=session.pk).update(
        customer_name=name, search_name=search_key(name), status=Status.COMPLETED, amount_paid=session.amount_total,
        provider=provider,
        needs_attention=attention)
    for question, value in (answers or {}).items():
        Answer.objects.create(session=session, question=question, value=value)
    Ticket.objects.bulk_create([Ticket(session=session, ticket_type=ticket_type, **({"code": codes[i]} if codes else {}))
                                for i in range(quantity)])
    Payment.objects.create(session=session, provider=provider, provider_reference=reference, method="card",
                           status=Payment.Status.SUCCEEDED, amount=session.amount_total, currency=session.currency,
                           amount_received=session.amount_total, instructions=instructions or {})
    Transition.objects.bulk_create([Transition(session=session, from_status=a, to_status=b, trigger=t, source=s,
                                               detail=d) for a, b, t, s, d in PAID_STEPS])
    session.refresh_from_db()
    return session
