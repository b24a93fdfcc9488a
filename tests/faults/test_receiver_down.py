"""Fault: the organizer's receiver is down (connection refused) for several attempts.

Nothing listens on the endpoint's port while attendees check out; the worker retries on
its schedule, recording every refused attempt. Then a receiver comes up on that port:
each event is delivered once, and the history shows every attempt.
"""

import time

import pytest

from tests.waiting import wait_for
from webhooks.models import Delivery, WebhookEndpoint

from .stack import (
    Attendee,
    DedupReceiver,
    all_delivered,
    check_invariants,
    event_ids,
    free_port,
    record_observation,
    run_database_url,
    seed,
    wait_until_nothing_more_can_be_sent,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

ATTENDEES = 3
REFUSED_ATTEMPTS = 3


def test_a_receiver_down_for_several_attempts_gets_each_event_once_with_every_attempt_recorded(processes):
    database = run_database_url()
    port = free_port()  # nothing listens here yet: connections are refused
    setup = seed(f"http://127.0.0.1:{port}/hook")
    redis = processes.redis()
    web = processes.web(database, redis.url)
    worker = processes.worker("persistent", database, redis.url, beat=True)

    for _ in range(ATTENDEES):
        Attendee(web.url, setup).take_tickets()

    def refused_enough():
        counts = list(Delivery.objects.values_list("attempts_count", flat=True))
        return len(counts) == ATTENDEES and min(counts) >= REFUSED_ATTEMPTS

    wait_for(refused_enough, 30, f"{REFUSED_ATTEMPTS} refused attempts per delivery")
    assert WebhookEndpoint.objects.get().failing_since is not None
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}

    receiver = processes.add(DedupReceiver(setup["secret"], port=port).start())
    up_at = time.monotonic()
    wait_for(lambda: all_delivered(database), 20, "delivery once the receiver is up")
    delivered_after = time.monotonic() - up_at
    wait_until_nothing_more_can_be_sent([worker], queued=redis.queued)  # more sweeps and retries would show up as repeats

    events = event_ids(database)
    assert set(receiver.processed) == events and set(receiver.processed.values()) == {1}
    assert not receiver.repeats and len(receiver.requests) == ATTENDEES
    attempts_per_delivery = []
    for delivery in Delivery.objects.prefetch_related("attempts"):
        attempts = list(delivery.attempts.all())
        attempts_per_delivery.append(len(attempts))
        assert [a.number for a in attempts] == list(range(1, len(attempts) + 1))
        assert all(a.status_code is None and a.error for a in attempts[:-1])  # refused, and said why
        assert attempts[-1].status_code == 200 and delivery.attempts_count == len(attempts)
        assert len(attempts) - 1 >= REFUSED_ATTEMPTS
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.enabled and endpoint.failing_since is None  # the success cleared it
    found = check_invariants(database)
    assert found.ok(), found.problems

    record_observation("receiver_down", {
        "events": len(events), "attempts_per_delivery": attempts_per_delivery,
        "refused_error": Delivery.objects.first().attempts.first().error,
        "processed_once": sum(receiver.processed.values()), "repeats": sum(receiver.repeats.values()),
        "delivered_seconds_after_receiver_up": round(delivered_after, 1), "retry_schedule_seconds": "1,1,1,…",
    })
