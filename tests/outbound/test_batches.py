"""Batches: one task claims its delivery and other due ones, sends them side by side and
records them together (``delivery.deliver_batch``). Every rule of a single delivery holds
for each member: its own lease and attempt number, its own outcome.

The same code runs on SQLite and PostgreSQL; only the race between two workers needs
PostgreSQL's row locks (``SKIP LOCKED``) to mean anything.
"""

import dataclasses
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.servers import LocalServer, Reply, refused_url
from webhooks import delivery as service
from webhooks import senders
from webhooks.http import HttpResult
from webhooks.models import Delivery, DeliveryAttempt


@pytest.fixture(autouse=True)
def fresh_process_memory(monkeypatch):
    """Each test starts as a new worker process would: remembering no delivery."""
    monkeypatch.setattr(senders, "in_this_process", senders.InThisProcess())


def due_ids():
    return list(Delivery.objects.order_by("pk").values_list("pk", flat=True))


# --- Claiming ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_a_batch_claims_the_named_delivery_first_then_the_longest_due_others(endpoint_for, new_session):
    endpoint_for("http://127.0.0.1:9/hook")
    for _ in range(5):
        new_session()
    first, second, third, fourth, fifth = due_ids()
    Delivery.objects.filter(pk=fifth).update(next_attempt_at=timezone.now() + timedelta(hours=1))  # not due

    held = service.claim_batch(third, others=2)

    assert [c.delivery_id for c in held] == [third, first, second]
    assert {c.number for c in held} == {1}
    assert list(service.due().order_by("pk").values_list("pk", flat=True)) == [fourth]
    assert not Delivery.objects.filter(pk__in=[third, first, second], lease_until__isnull=True).exists()


@pytest.mark.django_db
def test_a_batch_still_takes_other_due_deliveries_when_its_own_is_held(endpoint_for, new_session):
    endpoint_for("http://127.0.0.1:9/hook")
    for _ in range(3):
        new_session()
    first, second, third = due_ids()
    assert service.claim(first) is not None  # another worker has it

    held = service.claim_batch(first, others=5)

    assert [c.delivery_id for c in held] == [second, third]


@pytest.mark.django_db
def test_each_message_sends_its_own_delivery_if_no_batch_took_it_so_none_waits_for_the_sweep(
        settings, endpoint_for, new_session):
    """A batch takes others along; the messages about those end without a query. Each
    message still claims its own delivery first, so one whose batch-mates' messages all
    came first is not left for the sweep."""
    settings.WEBHOOK_SWEEP_SECONDS = 60
    with LocalServer(Reply(200)) as server:
        endpoint_for(server.url)
        for _ in range(5):
            new_session()
        ids = due_ids()
        reports = []
        for pk in [ids[4], ids[0], ids[1], ids[2], ids[3]]:  # one message each, in this order
            reports += service.deliver_batch(pk, size=2)
    assert sorted(r.delivery_id for r in reports) == ids and len(server.requests) == 5
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_batches_at_once_never_share_a_delivery(endpoint_for, new_session):
    endpoint_for("http://127.0.0.1:9/hook")
    for _ in range(40):
        new_session()
    ids = due_ids()
    start = threading.Barrier(4)
    claimed: list[list[int]] = []

    def worker(named):
        try:
            start.wait()
            for pk in named:
                claimed.append([c.delivery_id for c in service.claim_batch(pk, others=7)])
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [pk for batch in claimed for pk in batch]
    assert sorted(every) == ids  # each delivery claimed exactly once, by one batch
    assert set(Delivery.objects.values_list("attempts_count", flat=True)) == {1}


@pytest.mark.django_db
def test_a_batch_records_a_lost_attempt_for_each_member_whose_lease_ran_out(endpoint_for, new_session):
    endpoint_for("http://127.0.0.1:9/hook")
    for _ in range(3):
        new_session()
    first, second, third = due_ids()
    service.claim_batch(first, others=1)  # a worker takes first and second, then dies
    Delivery.objects.filter(pk__in=[first, second]).update(lease_until=timezone.now() - timedelta(seconds=1))

    held = service.claim_batch(third, others=5)

    assert sorted((c.delivery_id, c.number) for c in held) == [(first, 2), (second, 2), (third, 1)]
    lost = DeliveryAttempt.objects.order_by("delivery_id")
    assert [(a.delivery_id, a.number, a.error) for a in lost] == [
        (first, 1, service.LOST_ATTEMPT_ERROR), (second, 1, service.LOST_ATTEMPT_ERROR)]


@pytest.mark.django_db
def test_a_batch_fails_its_members_whose_endpoint_was_disabled(endpoint_for, new_session):
    live = endpoint_for("http://127.0.0.1:9/live")
    gone = endpoint_for("http://127.0.0.1:9/gone")
    new_session()
    gone.enabled, gone.disabled_reason = False, "410 Gone"
    gone.save()
    to_live = Delivery.objects.get(endpoint=live).pk

    held = service.claim_batch(to_live)

    assert [c.delivery_id for c in held] == [to_live]
    failed = Delivery.objects.get(endpoint=gone)
    assert failed.status == "failed" and failed.attempts_count == 0 and "disabled" in failed.last_error
    assert failed.next_attempt_at is None and failed.lease_until is None


# --- Sending and recording -----------------------------------------------------------------------
@pytest.mark.django_db
def test_a_batch_with_mixed_outcomes_records_each_delivery_right(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [60, 60]
    with LocalServer(Reply(200)) as ok, LocalServer(Reply(500)) as broken, LocalServer(Reply(410)) as gone:
        endpoints = {
            "ok": endpoint_for(ok.url), "broken": endpoint_for(broken.url), "gone": endpoint_for(gone.url),
            "refused": endpoint_for(refused_url()),
        }
        new_session()
        new_session()
        named = Delivery.objects.filter(endpoint=endpoints["broken"]).order_by("pk").first().pk

        outcomes = service.deliver_batch(named)

    assert len(outcomes) == 8 and outcomes[0].delivery_id == named
    by_endpoint = {name: list(Delivery.objects.filter(endpoint=e)) for name, e in endpoints.items()}
    for d in by_endpoint["ok"]:
        assert (d.status, d.last_status_code, d.lease_until, d.next_attempt_at) == ("succeeded", 200, None, None)
    for d in by_endpoint["broken"] + by_endpoint["refused"]:
        assert d.status == "pending" and d.lease_until is None
        assert d.next_attempt_at > timezone.now() + timedelta(seconds=50)  # the schedule's next wait
    assert {d.last_status_code for d in by_endpoint["broken"]} == {500}
    assert all("Connection failed" in d.last_error for d in by_endpoint["refused"])
    assert {d.status for d in by_endpoint["gone"]} == {"failed"}
    endpoints["gone"].refresh_from_db()
    assert not endpoints["gone"].enabled
    attempts = DeliveryAttempt.objects.all()
    assert len(attempts) == 8 and {a.number for a in attempts} == {1}
    assert {(a.delivery.endpoint_id, a.status_code) for a in attempts} == {
        (endpoints["ok"].pk, 200), (endpoints["broken"].pk, 500), (endpoints["gone"].pk, 410),
        (endpoints["refused"].pk, None)}
    assert len(ok.requests) == len(broken.requests) == len(gone.requests) == 2


@pytest.mark.django_db
def test_one_slow_receiver_does_not_hold_up_the_rest_of_its_batch(settings, endpoint_for, new_session):
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    with LocalServer(Reply(200, delay=1.0)) as slow, LocalServer(Reply(200)) as fast:
        endpoint_for(slow.url)
        endpoint_for(fast.url)
        for _ in range(3):
            new_session()
        outcomes = service.deliver_batch(due_ids()[0])
        # Every fast delivery reached its receiver before the slow receiver answered once.
        first_slow_answer = min(r.at for r in slow.requests) + 1.0
    assert len(outcomes) == 6 and {o.status for o in outcomes} == {"succeeded"}
    assert max(r.at for r in fast.requests) < first_slow_answer


@pytest.mark.django_db
def test_a_batch_member_whose_lease_could_no_longer_cover_a_post_is_given_back_unsent(endpoint_for, new_session):
    with LocalServer(Reply(200)) as server:
        endpoint_for(server.url)
        for _ in range(3):
            new_session()
        first, second, third = due_ids()
        held = service.claim_batch(first, others=2)
        # The batch waited too long (a saturated sender pool): the last member's lease
        # would end before a POST started now could time out.
        held[-1] = dataclasses.replace(held[-1], send_by=time.monotonic() - 1)
        outcomes = service.record_all(service.send_all(held))
    assert [o.status for o in outcomes] == ["succeeded", "succeeded", "pending"]
    assert len(server.requests) == 2
    late = Delivery.objects.get(pk=third)
    assert (late.status, late.attempts_count, late.lease_until) == ("pending", 0, None)
    assert not late.attempts.exists()
    assert outcomes[2].retry_in == 0  # the task enqueues it again at once, not only at the next sweep
    assert service.due().filter(pk=third).exists()


@pytest.mark.django_db
def test_a_given_back_claim_another_worker_has_taken_over_is_left_alone(endpoint_for, new_session):
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    pk = due_ids()[0]
    stale = service.claim(pk)
    Delivery.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    current = service.claim(pk)

    service.give_back([stale])

    delivery = Delivery.objects.get(pk=pk)
    assert delivery.attempts_count == current.number == 2 and delivery.lease_until is not None


@pytest.mark.django_db
def test_a_lease_expiring_mid_batch_lets_late_results_change_only_history(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0]
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    new_session()
    first, second = due_ids()
    stale = service.claim_batch(first, others=1)  # this worker stalls past its lease...
    Delivery.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    current = service.claim_batch(first, others=1)  # ...and another takes both over
    assert [c.number for c in current] == [2, 2]

    now = timezone.now()
    service.record_all([service.Sent(stale[0], HttpResult(200, b"", 5), now),   # the receiver has it: it counts
                        service.Sent(stale[1], HttpResult(500, b"", 5), now)])  # only history
    assert Delivery.objects.get(pk=first).status == "succeeded"
    second_row = Delivery.objects.get(pk=second)
    assert (second_row.status, second_row.attempts_count) == ("pending", 2) and second_row.lease_until is not None

    service.record_all([service.Sent(current[0], HttpResult(500, b"", 5), now),
                        service.Sent(current[1], HttpResult(200, b"", 5), now)])
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}  # a late failure undoes nothing
    assert DeliveryAttempt.objects.exclude(error=service.LOST_ATTEMPT_ERROR).count() == 4  # 2 stale, 2 current
    assert DeliveryAttempt.objects.filter(error=service.LOST_ATTEMPT_ERROR).count() == 2


# --- Messages the batch made redundant --------------------------------------------------------------
@pytest.mark.django_db
def test_a_message_for_a_delivery_this_process_just_sent_ends_without_a_query(
        settings, endpoint_for, new_session, django_assert_num_queries):
    settings.WEBHOOK_SWEEP_SECONDS = 60
    with LocalServer(Reply(200)) as server:
        endpoint_for(server.url)
        for _ in range(3):
            new_session()
        first, second, third = due_ids()
        assert len(service.deliver_batch(first)) == 3
        with django_assert_num_queries(0):
            assert service.deliver_batch(third) == []
    assert len(server.requests) == 3


@pytest.mark.django_db
def test_a_success_is_remembered_only_for_a_sweep_interval(settings, endpoint_for, new_session,
                                                           django_assert_num_queries):
    """After that the database has the last word: a success it no longer holds (a backup
    restored, a record lost some other way) is sent again when the sweep's message comes."""
    with LocalServer(Reply(200)) as server:
        endpoint_for(server.url)
        new_session()
        pk = due_ids()[0]
        settings.WEBHOOK_SWEEP_SECONDS = 60
        service.deliver_batch(pk)
        settings.WEBHOOK_SWEEP_SECONDS = 0  # the interval has passed
        Delivery.objects.filter(pk=pk).update(status="pending", next_attempt_at=timezone.now())  # the record is gone
        outcomes = service.deliver_batch(pk)
    assert [o.status for o in outcomes] == ["succeeded"] and len(server.requests) == 2


@pytest.mark.django_db
def test_a_failed_delivery_is_not_remembered(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    settings.WEBHOOK_SWEEP_SECONDS = 60
    with LocalServer(Reply(500)) as server:
        endpoint_for(server.url)
        new_session()
        pk = due_ids()[0]
        service.deliver_batch(pk)
        outcomes = service.deliver_batch(pk)  # the retry's message: due again at once
    assert [o.status for o in outcomes] == ["failed"] and len(server.requests) == 2
