"""Orders that were paid, for the refund and order-action tests."""

from __future__ import annotations

from checkout import services
from checkout.models import Source
from payments.models import Payment

from ..payments.helpers import pending_session


def paid_order(event, *, provider: str, reference: str = "", method: str = "", quantity: int = 2):
    """A completed order (two €25.00 tickets by default) paid with ``provider``: status completed."""
    session, payment = pending_session(event, provider=provider, reference=reference, method=method,
                                       quantity=quantity)
    services.record_payment_succeeded(session.pk, amount=session.amount_total, currency=session.currency,
                                      source=Source.PROVIDER_WEBHOOK, detail="paid")
    Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.SUCCEEDED, amount_received=session.amount_total)
    session.refresh_from_db()
    payment.refresh_from_db()
    return session, payment
