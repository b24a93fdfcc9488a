"""Fault: PostgreSQL stops and starts again under a running web server and worker, once
shut down cleanly (``fast``) and once crashed (``immediate``: recovery from the WAL).

A private cluster (never the machine's shared one) holds this test's database; gunicorn
and a Celery worker keep their connections to it across the restart. While it is down an
attendee gets an error page at once (not a hang); once it is back, the very next requests
must succeed (stale connections are noticed and replaced), the worker must deliver again,
and nothing may be stuck or half-done.
"""

import time

import pytest
import requests

from tests.waiting import wait_for

from .stack import (
    Attendee,
    DedupReceiver,
    all_delivered,
    app_env,
    check_invariants,
    event_ids,
    manage,
    record_observation,
    seed_in,
    wait_until_nothing_more_can_be_sent,
)

BEFORE, AFTER = 2, 3


@pytest.mark.parametrize("shutdown", ["fast", "immediate"])
def test_web_and_worker_recover_from_a_postgres_restart_with_nothing_stuck(processes, private_postgres, shutdown):
    redis = processes.redis()
    database = private_postgres.create_database("ievents_faults")
    env = app_env(database, redis.url)
    manage("migrate", "--noinput", "-v0", env=env)
    manage("createcachetable", env=env)
    receiver = processes.add(DedupReceiver().start())
    setup = seed_in(env, receiver.url)
    receiver.secret = setup["secret"]
    web = processes.web(database, redis.url)
    worker = processes.worker("steadfast", database, redis.url, beat=True)

    for _ in range(BEFORE):
        Attendee(web.url, setup).buy()
    wait_for(lambda: all_delivered(database), 20, "the first purchases' events to be delivered")

    private_postgres.stop(shutdown)  # every connection of web and worker is cut
    started = time.monotonic()
    during = requests.get(web.url + setup["event_path"], timeout=30)
    outage_answer_seconds = time.monotonic() - started
    assert during.status_code == 500  # an error page, at once

    private_postgres.start()
    back_at = time.monotonic()
    first = Attendee(web.url, setup)
    first.buy()  # every page of it answers 200 on the first try
    first_purchase_seconds = time.monotonic() - back_at
    for _ in range(AFTER - 1):
        Attendee(web.url, setup).buy()
    wait_for(lambda: all_delivered(database), 30, "the worker to deliver again after the restart",
             explain=lambda: worker.output()[-4000:])
    delivered_after = time.monotonic() - back_at
    requests_when_delivered = len(receiver.requests)
    wait_until_nothing_more_can_be_sent([worker], queued=redis.queued)

    assert len(receiver.requests) == requests_when_delivered  # nothing was sent again

    events = event_ids(database)
    assert len(events) == (BEFORE + AFTER) * 3
    assert set(receiver.processed) == events and set(receiver.processed.values()) == {1}
    found = check_invariants(database)
    assert found.ok(), found.problems
    assert found.statuses == {"completed": BEFORE + AFTER}
    assert worker.process.poll() is None  # the same worker, still running

    record_observation(f"postgres_restart_{shutdown}", {
        "purchases_before": BEFORE, "purchases_after": AFTER,
        "outage_request_status": during.status_code, "outage_request_seconds": round(outage_answer_seconds, 2),
        "first_purchase_seconds_after_restart": round(first_purchase_seconds, 2),
        "all_delivered_seconds_after_restart": round(delivered_after, 1),
        "events": len(events), "processed_once": sum(receiver.processed.values()),
        "repeats": sum(receiver.repeats.values()), "requests_received": len(receiver.requests),
    })
