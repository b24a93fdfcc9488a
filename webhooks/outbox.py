"""The outbox: every state change writes its event here, in the same transaction.

Delivering the events is ``webhooks.delivery``'s job; this module only decides what is
sent to whom, and makes sure the rows exist before the transaction commits. The delivery
tasks are enqueued only once it has committed (a worker must find the rows), and if the
broker loses them the periodic sweep finds the rows anyway.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from checkout.representation import session_as_api

from .models import Delivery, OutboxEvent, WebhookEndpoint

log = logging.getLogger(__name__)

# Every type we send (CONTRACT.md, "Outbound events"); endpoints subscribe to these or "*".
SESSION_EVENT_TYPES = [
    "checkout.session.created",
    "checkout.session.authorized",
    "checkout.session.rejected",
    "checkout.session.paid",
    "checkout.session.unpaid",
    "checkout.session.completed",
    "checkout.session.expired",
    "checkout.session.canceled",
    "checkout.session.refunded",
    "checkout.session.gate_denied",
]


def record_event(session, event_type: str) -> OutboxEvent:
    """Write ``event_type`` about ``session`` and one delivery per subscribed target.

    The payload is the session as the API shows it, with its ``version`` (it grows with
    every transition) and the event's ``created``: we promise no ordering, so a receiver
    keeps the highest version it has seen.
    """
    return record_events(session, [(event_type, session_as_api(session))])[0]


def record_events(session, announcements: list[tuple[str, dict]]) -> list[OutboxEvent]:
    """Write several events about ``session`` at once, in order: ``(type, the session as the
    API showed it then)`` each (the state machine applying ``pay`` then ``complete`` under
    one lock). One insert for the events, one read of the endpoints, one insert of deliveries."""
    created = int(timezone.now().timestamp())
    events = []
    for event_type, shown in announcements:
        event = OutboxEvent(organization_id=session.organization_id, session=session, type=event_type, payload={})
        event.payload = {"id": event.public_id, "type": event_type, "created": created, "data": {"object": shown}}
        events.append(event)
    OutboxEvent.objects.bulk_create(events)
    now = timezone.now()
    # Only what a delivery row needs: loading the whole endpoint would decrypt its secrets.
    endpoints = list(WebhookEndpoint.objects.filter(organization_id=session.organization_id, enabled=True)
                     .only("id", "url", "enabled_events"))
    targets = []
    for event in events:
        targets += [
            Delivery(event=event, endpoint=endpoint, target_url=endpoint.url, next_attempt_at=now)
            for endpoint in endpoints if endpoint.wants(event.type)
        ]
        if session.webhook_url:
            targets.append(Delivery(event=event, target_url=session.webhook_url, next_attempt_at=now))
    ids = [d.pk for d in Delivery.objects.bulk_create(targets) if d.pk is not None] if targets else []
    if ids:
        transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return events


def _enqueue(delivery_ids: list[int]) -> None:
    from .tasks import enqueue_delivery

    for position, pk in enumerate(delivery_ids):
        if not enqueue_delivery(pk):
            # The broker is down or stalled: each further try would cost the attendee its
            # timeout again. The sweep sends these from the database once it is back.
            log.warning("broker unavailable: %d deliveries left to the sweep", len(delivery_ids) - position - 1)
            return
