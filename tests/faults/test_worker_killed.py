"""Fault: the Celery worker is SIGKILLed while the receiver holds its requests open.

Attendees check out through gunicorn; a worker starts sending the ``checkout.session.created``
events; the receiver reads the first requests and never answers them; the worker is
killed (-9: no task finishes, no message is acknowledged) and a new one is started. The
deliveries it held must each end in exactly one processed event at a de-duplicating
receiver, with the lost attempt written down.
"""

import time

import pytest

from tests.waiting import wait_for
from webhooks.models import Delivery

from .stack import (
    Attendee,
    DedupReceiver,
    all_delivered,
    check_invariants,
    event_ids,
    record_observation,
    run_database_url,
    seed,
    wait_until_nothing_more_can_be_sent,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

ATTENDEES = 8
HELD = 4  # the killed worker's concurrency: every one of its threads is stuck in a send


def test_a_worker_killed_mid_delivery_ends_in_exactly_one_success_per_event(processes):
    database = run_database_url()
    receiver = processes.add(DedupReceiver(hold_first=HELD).start())
    setup = seed(receiver.url)
    receiver.secret = setup["secret"]
    redis = processes.redis()
    web = processes.web(database, redis.url)
    doomed = processes.worker("doomed", database, redis.url, beat=False, concurrency=HELD)

    sessions = [Attendee(web.url, setup).take_tickets() for _ in range(ATTENDEES)]
    wait_for(lambda: len(receiver.held) == HELD, 20, f"{HELD} requests held open by the receiver")
    doomed.kill()
    killed_at = time.monotonic()
    assert not receiver.processed  # nothing was answered: the killed worker delivered nothing

    rescuer = processes.worker("rescuer", database, redis.url, beat=True)
    wait_for(lambda: all_delivered(database), 40, "every delivery to succeed after the kill")
    recovered_after = time.monotonic() - killed_at
    wait_until_nothing_more_can_be_sent([rescuer], queued=redis.queued)  # a few more sweeps: nothing is sent again

    events = event_ids(database)
    assert len(events) == ATTENDEES and len(sessions) == ATTENDEES
    assert set(receiver.processed) == events
    assert set(receiver.processed.values()) == {1}
    assert not receiver.repeats and not receiver.bad_signatures
    for delivery in Delivery.objects.prefetch_related("attempts"):
        codes = [a.status_code for a in delivery.attempts.all()]
        if delivery.event.public_id in receiver.held:  # the lost attempt is history, then one success
            assert codes == [None, 200] and "worker stopped" in delivery.attempts.all()[0].error
        else:
            assert codes == [200]
    found = check_invariants(database)
    assert found.ok(), found.problems
    assert found.statuses == {"open": ATTENDEES}

    record_observation("worker_killed", {
        "attendees": ATTENDEES, "events": len(events), "held_when_killed": HELD,
        "requests_received": len(receiver.requests), "processed_once": sum(receiver.processed.values()),
        "repeats": sum(receiver.repeats.values()), "recovered_seconds": round(recovered_after, 1),
        "lease_seconds": 6, "attempts": found.attempts,
    })
