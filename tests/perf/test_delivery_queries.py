"""SQL statements of a delivery batch: a few per batch, never one per delivery.

Speed is measured in ``bench/bench_delivery.py``; the statements are deterministic, so
they can be asserted. Counted with transaction control (BEGIN, COMMIT) included, as in a
worker (``transaction=True``).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from webhooks import delivery as service
from webhooks.http import HttpResult
from webhooks.models import Delivery, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)

# BEGIN; lock the named delivery; lock the longest-due others; one UPDATE giving each its
# lease and attempt number; COMMIT.
CLAIM = 5
# BEGIN; INSERT every attempt; one UPDATE of every delivery (per status code); COMMIT.
RECORD_SUCCESSES = 4


@pytest.fixture
def due_deliveries(organization, event, ticket_type):
    """``count`` due deliveries to one endpoint: the ``created`` events of new sessions."""
    from checkout import services

    def make(count):
        WebhookEndpoint.objects.create(organization=organization, url="http://127.0.0.1:9/hook", enabled_events=["*"])
        for _ in range(count):
            services.create_session(event, [services.Item(ticket_type, 1)])
        return list(Delivery.objects.order_by("pk").values_list("pk", flat=True))

    return make


def statements(call):
    with CaptureQueriesContext(connection) as queries:
        result = call()
    return result, [q["sql"] for q in queries.captured_queries]


@pytest.mark.parametrize("size", [1, service.BATCH_SIZE])
def test_claiming_a_batch_costs_the_same_statements_for_one_delivery_or_sixteen(due_deliveries, size):
    ids = due_deliveries(size)
    held, sql = statements(lambda: service.claim_batch(ids[0]))
    assert len(held) == size
    assert len(sql) <= CLAIM, sql
    # Everything sending needs was read by the claim: using it reads nothing more.
    _, more = statements(lambda: [(c.url, c.body, c.secrets, c.endpoint_failing) for c in held])
    assert more == []


def test_a_claim_that_takes_over_lost_attempts_adds_one_insert_for_all(due_deliveries):
    ids = due_deliveries(4)
    service.claim_batch(ids[0])
    Delivery.objects.update(lease_until=timezone.now())  # the worker died: every lease ran out
    held, sql = statements(lambda: service.claim_batch(ids[0]))
    assert len(held) == 4 and len(sql) <= CLAIM + 1, sql


@pytest.mark.parametrize("size", [1, service.BATCH_SIZE])
def test_recording_a_batch_of_successes_costs_the_same_statements_for_one_or_sixteen(due_deliveries, size):
    ids = due_deliveries(size)
    held = service.claim_batch(ids[0])
    sent = [service.Sent(claim, HttpResult(200, b"ok", 3), timezone.now()) for claim in held]
    reports, sql = statements(lambda: service.record_all(sent))
    assert {r.status for r in reports} == {"succeeded"}
    assert len(sql) <= RECORD_SUCCESSES, sql
