"""The outbox: every state change writes its event here, in the same transaction.

Delivering the events is ``webhooks.delivery``'s job; this module only decides what is
sent to whom, and makes sure the rows exist before the transaction commits.
"""

from __future__ import annotations

from django.utils import timezone

from checkout.representation import session_as_api

from .models import Delivery, OutboxEvent, WebhookEndpoint


def record_event(session, event_type: str) -> OutboxEvent:
    """Write ``event_type`` about ``session`` and one delivery per subscribed target."""
    event = OutboxEvent(organization_id=session.organization_id, session=session, type=event_type, payload={})
    event.payload = {
        "id": event.public_id,
        "type": event_type,
        "created": int(timezone.now().timestamp()),
        "data": {"object": session_as_api(session)},
    }
    event.save()
    targets = [
        Delivery(event=event, endpoint=endpoint, target_url=endpoint.url, next_attempt_at=timezone.now())
        for endpoint in WebhookEndpoint.objects.filter(organization_id=session.organization_id, enabled=True)
        if endpoint.wants(event_type)
    ]
    if session.webhook_url:
        targets.append(Delivery(event=event, target_url=session.webhook_url, next_attempt_at=timezone.now()))
    Delivery.objects.bulk_create(targets)
    return event
