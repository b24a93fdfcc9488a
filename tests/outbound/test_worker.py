"""A real Celery worker on the real broker (Redis), on PostgreSQL, delivering to real local
receivers: the promise that no notification is lost, tested the way it can break.

Run with ``DATABASE_URL=postgres://… CELERY_BROKER_URL=redis://…``; skipped otherwise.
Retry waits are shortened to one second for the worker (``WEBHOOK_RETRY_SCHEDULE=1,1``).
"""


import pytest
from django.db import transaction
from standardwebhooks.webhooks import Webhook

from tests.servers import LocalServer, Reply
from tests.waiting import wait_for
from webhooks.models import Delivery, DeliveryAttempt

from .workers import CeleryWorker, purge_broker, wait_until_nothing_more_can_be_sent

pytestmark = [pytest.mark.postgres, pytest.mark.broker, pytest.mark.django_db(transaction=True)]

FAST = {
    "WEBHOOK_RETRY_SCHEDULE": "1,1",
    "WEBHOOK_SWEEP_SECONDS": "1",
    "WEBHOOK_LEASE_SECONDS": "3",
    "WEBHOOK_TIMEOUT_SECONDS": "2",
}


@pytest.fixture(autouse=True)
def empty_queue():
    purge_broker()
    yield
    purge_broker()


def worker(name="w1", *, beat=False, concurrency=4):
    return CeleryWorker(name=name, beat=beat, concurrency=concurrency, env=FAST)


def queued() -> int:
    from ievents.celery import app

    with app.connection_for_write() as conn:
        return conn.default_channel.client.llen("celery")


def settled(*statuses):
    return lambda: Delivery.objects.exists() and not Delivery.objects.exclude(status__in=statuses).exists()


def test_a_worker_delivers_an_event_that_standardwebhooks_verifies(receiver, endpoint_for, new_session):
    endpoint = endpoint_for(receiver.url)
    with worker():
        session = new_session()
        wait_for(settled("succeeded"), what="the delivery to succeed")
    request = receiver.requests[0]
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["data"]["object"]["id"] == session.public_id
    assert request.headers["webhook-id"] == payload["id"]
    assert len(receiver.requests) == 1


def test_a_receiver_failing_twice_then_succeeding_gets_one_event_three_times(endpoint_for, new_session):
    answers = [Reply(500), Reply(503), Reply(200)]
    with LocalServer(lambda _req: answers.pop(0) if len(answers) > 1 else answers[0]) as server:
        endpoint_for(server.url)
        with worker():
            new_session()
            wait_for(settled("succeeded"), what="the third attempt to succeed")
    assert len(server.requests) == 3
    assert len({r.headers["webhook-id"] for r in server.requests}) == 1
    delivery = Delivery.objects.get()
    assert [a.status_code for a in delivery.attempts.all()] == [500, 503, 200]


def test_a_receiver_that_always_fails_ends_failed_after_the_schedule(endpoint_for, new_session):
    with LocalServer(Reply(500)) as server:
        endpoint_for(server.url)
        with worker() as w:
            new_session()
            wait_for(settled("failed"), what="the delivery to be dead-lettered")
            wait_until_nothing_more_can_be_sent([w], queued=queued)  # a retry after the last attempt would run first
    assert len(server.requests) == 3
    delivery = Delivery.objects.get()
    assert delivery.attempts_count == 3 and delivery.next_attempt_at is None


def test_a_worker_killed_mid_delivery_still_ends_in_exactly_one_success(endpoint_for, new_session):
    answers = [Reply(200, delay=60), Reply(200)]  # the first request is never answered in time
    with LocalServer(lambda _req: answers.pop(0) if len(answers) > 1 else answers[0]) as server:
        endpoint_for(server.url)
        doomed = worker("doomed").start()
        try:
            new_session()
            wait_for(lambda: len(server.requests) == 1, what="the first request to arrive")
            doomed.kill()
        finally:
            doomed.stop()
        assert Delivery.objects.get().status == "pending"
        with worker("rescuer", beat=True):
            wait_for(settled("succeeded"), timeout=30, what="the sweep to hand the delivery to a live worker")
    delivery = Delivery.objects.get()
    attempts = list(delivery.attempts.all())
    assert [a.status_code for a in attempts] == [None, 200]
    assert "worker stopped" in attempts[0].error
    assert len(server.requests) == 2
    assert len({r.headers["webhook-id"] for r in server.requests}) == 1  # the receiver de-duplicates on it


def test_a_message_the_broker_lost_is_delivered_once_after_the_sweep(receiver, endpoint_for, new_session):
    endpoint_for(receiver.url)
    new_session()  # committed, its task enqueued, but no worker is running
    assert queued() == 1
    purge_broker()  # the broker loses it
    with worker(beat=True) as w:
        wait_for(settled("succeeded"), what="the sweep to find the lost delivery")
        wait_until_nothing_more_can_be_sent([w], queued=queued)  # sweeps that would send it twice
    assert len(receiver.requests) == 1
    assert DeliveryAttempt.objects.count() == 1


def test_two_workers_never_send_the_same_attempt_twice(endpoint_for, new_session):
    from webhooks.tasks import enqueue_delivery

    with LocalServer(Reply(200, delay=0.02)) as server:
        endpoint_for(server.url)
        with worker("alpha", concurrency=4) as alpha, worker("beta", concurrency=4) as beta:
            with transaction.atomic():
                for _ in range(30):
                    new_session()
            for pk in Delivery.objects.values_list("pk", flat=True):
                for _ in range(3):  # duplicate messages: both workers race for each delivery
                    enqueue_delivery(pk)
            wait_for(settled("succeeded"), timeout=30, what="30 deliveries")
            wait_until_nothing_more_can_be_sent([alpha, beta], queued=queued)  # every duplicate message handled
            logs = alpha.output(), beta.output()
    ids = [r.headers["webhook-id"] for r in server.requests]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert DeliveryAttempt.objects.count() == 30
    assert set(Delivery.objects.values_list("attempts_count", flat=True)) == {1}
    assert all("webhooks.tasks.deliver" in log for log in logs)  # both took part in the race


def test_during_a_rotation_the_worker_sends_both_signatures(receiver, endpoint_for, new_session):
    from webhooks.signing import rotate_secret

    endpoint = endpoint_for(receiver.url)
    old = endpoint.secret
    new = rotate_secret(endpoint)
    with worker():
        new_session()
        wait_for(settled("succeeded"), what="the delivery")
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(request.body, request.headers)
