"""Fifty copies of one webhook at once, against real Postgres locks: one transition, one
outbound event, forty-nine acknowledged duplicates.

Each thread drives the whole Django stack (middleware, view, ORM) with its own database
connection. Not a socket server: a development server's listen backlog of 5 resets most of
fifty simultaneous connects before Django sees them, which would test the backlog, not us.
"""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from checkout.models import Status
from webhooks.models import InboundWebhook, OutboxEvent

from ..payments.helpers import (
    EASYPAY_SECRET,
    IFTHENPAY_KEY,
    STRIPE_SECRET,
    checkout_object,
    configure,
    easypay_notification,
    easypay_single,
    pending_session,
    stripe_event,
    stripe_headers,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
COPIES = 50


def _fire(copies: int, send) -> list[int]:
    """Send ``copies`` requests from as many threads, released together."""
    barrier = threading.Barrier(copies)
    statuses: list[int] = []
    lock = threading.Lock()

    def one():
        try:
            barrier.wait()
            status = send(Client())
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def _assert_once(session):
    session.refresh_from_db()
    assert session.status == Status.COMPLETED
    assert session.tickets.count() == 2
    types = list(OutboxEvent.objects.filter(session=session).values_list("type", flat=True))
    assert types.count("checkout.session.paid") == 1 and types.count("checkout.session.completed") == 1
    assert session.transitions.filter(trigger="pay").count() == 1
    # One row, the processed copy; every other copy counted on it (racing ones included).
    assert list(InboundWebhook.objects.values_list("outcome", "duplicates")) == [("processed", COPIES - 1)]


def test_fifty_concurrent_copies_of_a_stripe_event_apply_once(organization, event):
    configure(organization, "stripe", secret=STRIPE_SECRET)
    session, _ = pending_session(event, provider="stripe")
    payload = json.dumps(stripe_event("checkout.session.completed", checkout_object(session)))
    headers = stripe_headers(payload, STRIPE_SECRET)
    url = f"/api/webhooks/stripe/{organization.public_id}"
    statuses = _fire(COPIES, lambda c: c.post(url, data=payload, content_type="application/json", **headers).status_code)
    assert statuses == [200] * COPIES
    _assert_once(session)


def test_fifty_concurrent_ifthenpay_callbacks_apply_once(organization, event):
    configure(organization, "ifthenpay", secret=IFTHENPAY_KEY)
    session, _ = pending_session(event, provider="ifthenpay", reference="REQ-1")
    url = f"/api/webhooks/ifthenpay/{organization.public_id}"
    params = {"key": IFTHENPAY_KEY, "orderId": "x", "amount": "50.00", "requestId": "REQ-1", "entity": "1",
              "reference": "123", "payment_datetime": "now"}
    statuses = _fire(COPIES, lambda c: c.get(url, params).status_code)
    assert statuses == [200] * COPIES
    _assert_once(session)


def test_fifty_concurrent_easypay_notifications_apply_once(organization, event):
    """Easypay's API is mocked with ``responses``, which patches requests process-wide."""
    import responses

    ep_id = "11111111-2222-3333-4444-555555555555"
    configure(organization, "easypay", secret=EASYPAY_SECRET, credentials={"account_id": "a", "api_key": "k"})
    session, _ = pending_session(event, provider="easypay", reference=ep_id)
    url = f"/api/webhooks/easypay/{organization.public_id}?secret={EASYPAY_SECRET}"
    body = json.dumps(easypay_notification(ep_id))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"https://api.test.easypay.pt/2.0/single/{ep_id}", json=easypay_single(ep_id))
        statuses = _fire(COPIES, lambda c: c.post(url, data=body, content_type="application/json").status_code)
    assert statuses == [200] * COPIES
    _assert_once(session)
