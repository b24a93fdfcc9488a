"""The outbox: every state change writes its event here, in the same transaction.

Delivering the events is ``webhooks.delivery``'s job; this module only decides what is
sent to whom, and makes sure the rows exist before the transaction commits. The delivery
tasks are enqueued only once it has committed (a worker must find the rows), and if the
broker loses them the periodic sweep finds the rows anyway.
"""

from __future__ import annotations

import json
import logging

from django.db import connection, transaction
from django.utils import timezone

from checkout.representation import session_as_api
from ievents import writes

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
    one lock). The events and their deliveries are gathered writes (``ievents.writes``):
    written with the transition that announces them."""
    created = int(timezone.now().timestamp())
    events = []
    for event_type, shown in announcements:
        event = OutboxEvent(organization_id=session.organization_id, session=session, type=event_type, payload={})
        event.payload = {"id": event.public_id, "type": event_type, "created": created, "data": {"object": shown}}
        events.append(event)
    now = timezone.now()
    targets = []
    with writes.gathering() as batch:
        batch.insert(events)
        endpoints = endpoints_of(session)
        for event in events:
            targets += [
                Delivery(event=event, endpoint=endpoint, target_url=endpoint.url, next_attempt_at=now)
                for endpoint in endpoints if endpoint.wants(event.type)
            ]
            if session.webhook_url:
                targets.append(Delivery(event=event, target_url=session.webhook_url, next_attempt_at=now))
        batch.insert(targets)
    if targets:
        # Their ids are known once the writes are flushed, which is before any commit.
        transaction.on_commit(lambda: _enqueue([d.pk for d in targets]), robust=True)
    return events


# The organization's enabled endpoints in the columns of ``LISTED_ROWS_SELECT`` (kind 2: id,
# URL, subscribed types as JSON text), so the state machine reads them with the rows every
# announcement lists (``state``): one statement fewer under the session's lock.
ENDPOINT_ROWS_OF = (
    "SELECT 2, id, NULL, NULL, NULL, NULL, url, CAST(enabled_events AS TEXT)"
    " FROM webhooks_webhookendpoint WHERE organization_id = {organization} AND enabled"
)
ENDPOINT_ROWS_SELECT = ENDPOINT_ROWS_OF.format(organization="%s")


def keep_endpoints(session, rows: list[tuple]) -> None:
    """Keep the endpoints read with ``ENDPOINT_ROWS_SELECT`` for the next ``record_events``
    about ``session`` (in the same lock: it takes them once)."""
    db = connection.alias
    session._endpoints_read = [
        WebhookEndpoint.from_db(db, ["id", "organization_id", "url", "enabled_events"],
                                [row[1], session.organization_id, row[6], json.loads(row[7])])
        for row in rows if row[0] == 2
    ]


def endpoints_of(session) -> list[WebhookEndpoint]:
    """The endpoints the state machine read with the session's rows, else read now. Only
    what a delivery needs: loading whole endpoints would decrypt their secrets."""
    kept = session.__dict__.pop("_endpoints_read", None)
    if kept is not None:
        return kept
    return list(WebhookEndpoint.objects.filter(organization_id=session.organization_id, enabled=True)
                .only("id", "url", "enabled_events").order_by("id"))


def _enqueue(delivery_ids: list[int]) -> None:
    from .tasks import enqueue_delivery

    for position, pk in enumerate(delivery_ids):
        if not enqueue_delivery(pk):
            # The broker is down or stalled: each further try would cost the attendee its
            # timeout again. The sweep sends these from the database once it is back.
            log.warning("broker unavailable: %d deliveries left to the sweep", len(delivery_ids) - position - 1)
            return
