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

from .models import Delivery, OutboxEvent, WebhookEndpoint
from .tasks import enqueue_delivery

log = logging.getLogger(__name__)

# Every type we send (docs/api.md, "Outbound events"); endpoints subscribe to these or "*".
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


def record_events(session, announcements: list[tuple[str, dict]]) -> list[OutboxEvent]:
    """Write events about ``session``, in order: ``(type, the session as the API showed it
    then)`` each, with one delivery per subscribed endpoint and one to the session's own
    ``webhook_url``. Runs in the caller's transaction; the deliveries are enqueued once it
    commits.

    The payload carries the session's ``version`` (it grows with every transition) and the
    event's ``created``: we promise no ordering, so a receiver keeps the highest version it
    has seen. The checkout hands over its representation, so this module knows nothing of
    how a session is shown.
    """
    created = int(timezone.now().timestamp())
    events = []
    for event_type, shown in announcements:
        event = OutboxEvent(organization_id=session.organization_id, session=session, type=event_type, payload={})
        event.payload = {"id": event.public_id, "type": event_type, "created": created, "data": {"object": shown}}
        events.append(event)
    OutboxEvent.objects.bulk_create(events)
    now = timezone.now()
    endpoints = endpoints_of(session)
    targets = []
    for event in events:
        targets += [
            Delivery(event=event, endpoint=endpoint, target_url=endpoint.url, next_attempt_at=now)
            for endpoint in endpoints if endpoint.wants(event.type)
        ]
        if session.webhook_url:
            targets.append(Delivery(event=event, target_url=session.webhook_url, next_attempt_at=now))
    Delivery.objects.bulk_create(targets)
    if targets:
        transaction.on_commit(lambda: _enqueue([d.pk for d in targets]), robust=True)
    return events


def endpoints_of(session) -> list[WebhookEndpoint]:
    """The organization's enabled endpoints, with only what a delivery needs: loading whole
    endpoints would decrypt their secrets."""
    return list(WebhookEndpoint.objects.filter(organization_id=session.organization_id, enabled=True)
                .only("id", "url", "enabled_events").order_by("id"))


def _enqueue(delivery_ids: list[int]) -> None:
    for position, pk in enumerate(delivery_ids):
        if not enqueue_delivery(pk):
            # The broker is down or stalled: each further try would cost the attendee its
            # timeout again. The sweep sends these from the database once it is back.
            log.warning("broker unavailable: %d deliveries left to the sweep", len(delivery_ids) - position - 1)
            return
