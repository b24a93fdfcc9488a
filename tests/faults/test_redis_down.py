"""Fault: Redis (the broker) stops while attendees check out and deliveries are due.

The outbox lives in PostgreSQL; the broker is only a transport. With Redis down, the
attendee's purchase must still go through (enqueuing on commit may fail, never the
request), the events are written and wait. Redis comes back empty (no persistence: every
queued message is lost) and the periodic sweep must deliver everything, once.
"""

import time

import pytest

from ievents.models import Event
from tests.waiting import wait_for
from webhooks.models import WebhookEndpoint

from .conftest import FAST
from .stack import (
    Attendee,
    DedupReceiver,
    all_delivered,
    all_overdue_for_the_sweep,
    check_invariants,
    delivery_statuses,
    event_ids,
    record_observation,
    run_database_url,
    seed,
    wait_until_nothing_more_can_be_sent,
)

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

BEFORE, DURING = 2, 4  # purchases with the broker up, then down
ENDPOINTS = 3


def test_checkouts_work_while_redis_is_down_and_the_sweep_delivers_everything_once_it_is_back(processes):
    database = run_database_url()
    receiver = processes.add(DedupReceiver().start())
    setup = seed(receiver.url)
    receiver.secret = setup["secret"]
    redis = processes.redis()
    web = processes.web(database, redis.url)
    worker = processes.worker("survivor", database, redis.url, beat=True)

    up_timings = []
    for _ in range(BEFORE):
        started = time.monotonic()
        Attendee(web.url, setup).buy()
        up_timings.append(time.monotonic() - started)
    wait_for(lambda: all_delivered(database), 20, "the first purchases' events to be delivered")
    delivered_before = len(receiver.processed)

    redis.stop()
    assert not redis.answers()
    down_timings, bought = [], []
    for _ in range(DURING):
        started = time.monotonic()
        bought.append(Attendee(web.url, setup).buy())  # every page answers 200, tickets shown
        down_timings.append(time.monotonic() - started)
    waiting = delivery_statuses(database)
    assert waiting["pending"] == DURING * 3  # created, paid, completed: written, not sent
    assert len(receiver.processed) == delivered_before
    # The broker is still down when the deliveries become overdue: only the sweep can send them.
    wait_for(lambda: all_overdue_for_the_sweep(database, float(FAST["WEBHOOK_SWEEP_SECONDS"])), 10,
             "the waiting deliveries to be overdue for the sweep")

    redis.start()
    back_at = time.monotonic()
    assert redis.queued() == 0  # it came back empty: every message sent to it is gone
    wait_for(lambda: all_delivered(database), 60, "the sweep to deliver what waited while Redis was down")
    recovered_after = time.monotonic() - back_at
    requests_when_delivered = len(receiver.requests)
    wait_until_nothing_more_can_be_sent([worker], queued=redis.queued)
    assert len(receiver.requests) == requests_when_delivered  # more sweeps sent nothing twice

    events = event_ids(database)
    assert len(events) == (BEFORE + DURING) * 3
    assert set(receiver.processed) == events and set(receiver.processed.values()) == {1}
    assert not receiver.bad_signatures
    found = check_invariants(database)
    assert found.ok(), found.problems
    assert found.statuses == {"completed": BEFORE + DURING}

    record_observation("redis_down", {
        "purchases_broker_up": BEFORE, "purchases_broker_down": DURING,
        "purchase_seconds_broker_up_max": round(max(up_timings), 2),
        "purchase_seconds_broker_down_max": round(max(down_timings), 2),
        "pending_while_down": waiting["pending"], "events": len(events),
        "processed_once": sum(receiver.processed.values()), "repeats": sum(receiver.repeats.values()),
        "requests_received": len(receiver.requests), "recovered_seconds_after_redis_back": round(recovered_after, 1),
    })


def test_a_frozen_broker_costs_attendees_at_most_its_timeout_and_loses_nothing(processes):
    """Redis stopped with SIGSTOP: it accepts connections but never answers. Without socket
    timeouts a publish waits forever and the attendee's request with it. Three endpoints:
    once a publish has failed, the rest of that commit's deliveries are left to the sweep
    instead of costing the attendee the timeout again each."""
    database = run_database_url()
    receivers = [processes.add(DedupReceiver().start()) for _ in range(ENDPOINTS)]
    setup = seed(receivers[0].url)
    receivers[0].secret = setup["secret"]
    for receiver in receivers[1:]:
        receiver.secret = WebhookEndpoint.objects.create(organization=Event.objects.get().organization,
                                                         url=receiver.url, enabled_events=["*"]).secret
    redis = processes.redis()
    timeout = 1.0
    web = processes.web(database, redis.url, BROKER_TIMEOUT_SECONDS=str(timeout))
    worker = processes.worker("patient", database, redis.url, beat=True, BROKER_TIMEOUT_SECONDS=str(timeout))

    redis.freeze()
    attendee = Attendee(web.url, setup, timeout=30)
    attendee.get(setup["event_path"])
    started = time.monotonic()
    attendee.post({setup["qty_field"]: "1"})  # commits checkout.session.created
    taking = time.monotonic() - started
    attendee.session_id = attendee.page.url.rstrip("/").rsplit("/", 1)[-1]
    attendee.give_details()
    attendee.post({"provider": "sandbox"})
    started = time.monotonic()
    attendee.post({"outcome": "success"})  # commits .paid and .completed, each its own enqueue
    paying = time.monotonic() - started
    assert "ticket-code" in attendee.page.text
    # One event: one publish that fails after at most two tries of the timeout each (one
    # retry), not one per endpoint. The margin covers the request's own work.
    assert taking < 2 * timeout + 0.5, taking
    assert paying < 2 * 2 * timeout + 0.5, paying
    assert delivery_statuses(database)["pending"] == 3 * ENDPOINTS

    redis.thaw()
    thawed_at = time.monotonic()
    wait_for(lambda: all_delivered(database), 60, "delivery once the broker answers again")
    recovered_after = time.monotonic() - thawed_at
    requests_when_delivered = sum(len(r.requests) for r in receivers)
    wait_until_nothing_more_can_be_sent([worker], queued=redis.queued)
    assert sum(len(r.requests) for r in receivers) == requests_when_delivered
    events = event_ids(database)
    for receiver in receivers:
        assert set(receiver.processed) == events and set(receiver.processed.values()) == {1}
        assert not receiver.bad_signatures
    found = check_invariants(database)
    assert found.ok(), found.problems
    assert found.statuses == {"completed": 1}
    record_observation("redis_frozen", {
        "broker_timeout_seconds": timeout, "endpoints": ENDPOINTS, "take_tickets_seconds": round(taking, 2),
        "pay_seconds": round(paying, 2), "events": len(events),
        "processed_once": sum(sum(r.processed.values()) for r in receivers),
        "repeats": sum(sum(r.repeats.values()) for r in receivers),
        "recovered_seconds_after_thaw": round(recovered_after, 1),
    })
