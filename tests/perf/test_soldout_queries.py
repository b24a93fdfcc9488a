"""SQL statements of a sold-out answer: as cheap as a page, a ceiling that only goes down.

Once a ticket type is sold out (the rush's other 800 attendees), the refused attendee should
pay for the page's own reads and nothing else: no limits counted, no transaction opened, no
session written and rolled back. Speed is measured in ``bench/bench_onsale.py``; the
statements are deterministic, so they can be asserted. Counted with transaction control
(BEGIN, ROLLBACK, savepoints) included, as in production (``transaction=True``).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checkout.models import CheckoutSession
from webhooks.models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True)

# path -> (ceiling, count before issue 26)
CEILINGS = {
    # the event and its ticket types: the page's own two reads (before: + BEGIN and ROLLBACK
    # of the limits' transaction, opened for a hold the rows read already refused)
    "pages": (2, 4),
    # the API key; the ticket types with their event (before: + the key's last_used_at
    # written on every request, and the event read alone)
    "api": (2, 4),
    # + the Idempotency-Key claimed (BEGIN, INSERT, COMMIT) and its answer kept (UPDATE)
    # (before: + the key read again, and two cache writes of COUNT, BEGIN, SELECT, INSERT or
    # UPDATE, COMMIT each)
    "api with an Idempotency-Key": (6, 14),
}


@pytest.fixture
def sold_out_type(ticket_type):
    ticket_type.reserved = ticket_type.quantity
    ticket_type.save(update_fields=["reserved"])
    return ticket_type


def _count(call):
    with CaptureQueriesContext(connection) as queries:
        response = call()
    return response, [q["sql"] for q in queries.captured_queries]


def test_the_sold_out_page_answer_costs_the_page_reads(client, event, sold_out_type):
    url = event.get_absolute_url()
    response, sql = _count(lambda: client.post(url, {f"qty_{sold_out_type.public_id}": "1"}, REMOTE_ADDR="203.0.113.9"))
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert not any(q in ("BEGIN", "ROLLBACK") for q in sql)
    assert len(sql) <= CEILINGS["pages"][0], "\n".join(sql)
    assert not CheckoutSession.objects.exists() and not OutboxEvent.objects.exists()


def test_the_sold_out_api_answer_costs_its_reads(api, event, sold_out_type):
    body = {"event": event.public_id, "line_items": [{"ticket_type": sold_out_type.public_id, "quantity": 1}]}
    first, sql = _count(lambda: api.post("/v1/checkout/sessions", body, format="json"))
    assert first.status_code == 409 and any(q.startswith("UPDATE") and "last_used_at" in q for q in sql)
    # Every later request of the minute (the rest of a rush):
    response, sql = _count(lambda: api.post("/v1/checkout/sessions", body, format="json"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "sold_out"
    assert len(sql) <= CEILINGS["api"][0], "\n".join(sql)
    assert not CheckoutSession.objects.exists() and not OutboxEvent.objects.exists()


def test_a_key_used_again_after_a_minute_records_it(api, api_key, event):
    from datetime import timedelta

    from django.utils import timezone

    from ievents.models import ApiKey

    assert api.get("/v1/checkout/sessions").status_code == 200
    used = ApiKey.objects.get().last_used_at
    assert used is not None
    ApiKey.objects.update(last_used_at=used - timedelta(minutes=2))
    assert api.get("/v1/checkout/sessions").status_code == 200
    assert ApiKey.objects.get().last_used_at >= timezone.now() - timedelta(seconds=30)


def test_a_keyed_sold_out_answer_reads_the_api_key_once(api, event, sold_out_type):
    # The Idempotency-Key middleware authenticates the key before it claims the request; the
    # view's authentication uses what it found instead of reading the key again.
    body = {"event": event.public_id, "line_items": [{"ticket_type": sold_out_type.public_id, "quantity": 1}]}
    api.post("/v1/checkout/sessions", body, format="json")  # the key's last use of this minute written
    response, sql = _count(lambda: api.post("/v1/checkout/sessions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1"))
    assert response.status_code == 409 and response.json()["error"]["code"] == "sold_out"
    assert len([q for q in sql if 'FROM "ievents_apikey"' in q]) == 1, "\n".join(sql)
    # The key, the types, the key claimed (one insert, in its own transaction) and the answer
    # kept (one update): the database cache counted its table and read before each write.
    assert len(sql) <= CEILINGS["api with an Idempotency-Key"][0], "\n".join(sql)
    again = api.post("/v1/checkout/sessions", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again["Idempotent-Replayed"] == "true" and again.content == response.content
