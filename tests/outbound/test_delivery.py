"""The delivery service against real local HTTP receivers (no worker: the service is called
directly, as a worker would). Worker and broker behaviour is in ``test_worker.py``."""

import json
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.servers import LocalServer, Reply, refused_url
from webhooks import delivery as service
from webhooks import senders
from webhooks.models import Delivery, DeliveryAttempt, OutboxEvent
from webhooks.signing import rotate_secret

pytestmark = pytest.mark.django_db


def only_delivery(endpoint=None):
    qs = Delivery.objects.all() if endpoint is None else Delivery.objects.filter(endpoint=endpoint)
    return qs.get()


def sequence(*replies):
    """A respond function answering each request with the next reply, the last forever."""
    replies = list(replies)

    def respond(_request):
        return replies.pop(0) if len(replies) > 1 else replies[0]

    return respond


# --- Signing and payload -------------------------------------------------------------------
def test_a_delivery_is_signed_so_standardwebhooks_verifies_it(receiver, endpoint_for, new_session):
    endpoint = endpoint_for(receiver.url)
    session = new_session()
    outcome = service.deliver(only_delivery(endpoint).pk)

    assert outcome.status == "succeeded"
    request = receiver.requests[0]
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    event = OutboxEvent.objects.get()
    assert request.headers["webhook-id"] == payload["id"] == event.public_id
    assert payload["type"] == "checkout.session.created"
    assert payload["data"]["object"]["id"] == session.public_id
    assert payload["data"]["object"]["version"] == session.version
    assert isinstance(payload["created"], int)
    assert request.headers["content-type"] == "application/json"


def test_the_body_is_the_events_payload_and_the_same_bytes_on_every_attempt(settings, endpoint_for, new_session,
                                                                            ticket_type):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    ticket_type.name = "Zoë Ångström"  # not ASCII: the receiver reads back what was written
    ticket_type.save()
    with LocalServer(sequence(Reply(500), Reply(200))) as server:
        endpoint_for(server.url)
        new_session()
        pk = only_delivery().pk
        service.deliver(pk)
        assert service.deliver(pk).status == "succeeded"
    first, second = (r.body for r in server.requests)
    assert first == second
    payload = json.loads(first)
    assert payload == OutboxEvent.objects.get().payload
    assert payload["data"]["object"]["line_items"][0]["name"] == "Zoë Ångström"


def test_a_signature_with_another_secret_does_not_verify(receiver, endpoint_for, new_session):
    from ievents.models import new_signing_secret

    endpoint_for(receiver.url)
    new_session()
    service.deliver(only_delivery().pk)
    request = receiver.requests[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(request.body, request.headers)


def test_a_session_webhook_url_gets_its_events_signed_with_the_organization_secret(receiver, organization, new_session):
    session = new_session(webhook_url=receiver.url)
    service.deliver(only_delivery().pk)
    request = receiver.requests[0]
    payload = Webhook(organization.signing_secret).verify(request.body, request.headers)
    assert payload["data"]["object"]["id"] == session.public_id
    assert Delivery.objects.get().endpoint is None


def test_after_a_rotation_both_the_old_and_the_new_secret_verify(receiver, endpoint_for, new_session):
    endpoint = endpoint_for(receiver.url)
    old = endpoint.secret
    new = rotate_secret(endpoint)
    new_session()
    service.deliver(only_delivery().pk)
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(request.body, request.headers)["id"] == request.headers["webhook-id"]


def test_once_the_overlap_ends_only_the_new_secret_signs(receiver, endpoint_for, new_session):
    endpoint = endpoint_for(receiver.url)
    old = endpoint.secret
    new = rotate_secret(endpoint)
    endpoint.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    endpoint.save()
    new_session()
    service.deliver(only_delivery().pk)
    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request.body, request.headers)


# --- The outbox --------------------------------------------------------------------------------
def test_the_outbox_writes_one_delivery_per_subscribed_enabled_target(endpoint_for, new_session):
    every = endpoint_for("http://127.0.0.1:9/every")
    paid_only = endpoint_for("http://127.0.0.1:9/paid", events=["checkout.session.paid"])
    created_only = endpoint_for("http://127.0.0.1:9/created", events=["checkout.session.created"])
    endpoint_for("http://127.0.0.1:9/off", enabled=False)

    new_session(webhook_url="http://127.0.0.1:9/session")

    targets = set(Delivery.objects.values_list("target_url", flat=True))
    assert targets == {every.url, created_only.url, "http://127.0.0.1:9/session"}
    assert not Delivery.objects.filter(endpoint=paid_only).exists()
    assert all(d.status == "pending" and d.next_attempt_at for d in Delivery.objects.all())


def test_the_delivery_task_is_enqueued_only_when_the_transaction_commits(
        endpoint_for, new_session, django_capture_on_commit_callbacks, monkeypatch):
    from django.db import transaction

    from webhooks import tasks

    enqueued = []
    monkeypatch.setattr(tasks.deliver, "apply_async", lambda args, countdown=None: enqueued.append(args[0]))
    endpoint_for("http://127.0.0.1:9/hook")

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                new_session()
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert enqueued == [] and not Delivery.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        new_session()
    assert enqueued == [only_delivery().pk]


def test_a_broker_that_refuses_the_task_does_not_undo_the_commit(
        endpoint_for, new_session, django_capture_on_commit_callbacks, monkeypatch):
    from webhooks import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.deliver, "apply_async", broker_down)
    endpoint_for("http://127.0.0.1:9/hook")
    with django_capture_on_commit_callbacks(execute=True):
        session = new_session()
    assert only_delivery().status == "pending"  # the sweep will find it
    assert OutboxEvent.objects.get().session == session


# --- Retries, the schedule, the dead letter --------------------------------------------------
def test_a_receiver_failing_twice_then_succeeding_gets_the_same_event_id_three_times(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    with LocalServer(sequence(Reply(500), Reply(502), Reply(200))) as server:
        endpoint_for(server.url)
        new_session()
        pk = only_delivery().pk
        outcomes = [service.deliver(pk) for _ in range(3)]
    assert [o.status for o in outcomes] == ["pending", "pending", "succeeded"]
    assert len({r.headers["webhook-id"] for r in server.requests}) == 1
    assert len(server.requests) == 3
    attempts = list(DeliveryAttempt.objects.filter(delivery_id=pk).values_list("number", "status_code"))
    assert attempts == [(1, 500), (2, 502), (3, 200)]
    assert service.deliver(pk).status == "succeeded" and len(server.requests) == 3  # nothing more is sent


def test_a_receiver_that_always_fails_ends_failed_after_the_last_attempt(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0]
    with LocalServer(Reply(500, "boom")) as server:
        endpoint_for(server.url)
        new_session()
        pk = only_delivery().pk
        statuses = [service.deliver(pk).status for _ in range(4)]
    assert statuses == ["pending", "pending", "failed", "failed"]
    assert len(server.requests) == 3
    dead = Delivery.objects.get(pk=pk)
    assert (dead.status, dead.attempts_count, dead.next_attempt_at, dead.last_status_code) == ("failed", 3, None, 500)
    assert dead.last_error == "HTTP 500"


def test_the_next_attempt_waits_as_the_policy_decided_and_not_before(settings, endpoint_for, new_session, monkeypatch):
    from webhooks import retry_policy

    monkeypatch.setattr(retry_policy.random, "uniform", lambda low, high: high)  # the longest jitter
    settings.WEBHOOK_RETRY_SCHEDULE = [100, 1000]
    with LocalServer(Reply(500)) as server:
        endpoint_for(server.url)
        new_session()
        pk = only_delivery().pk
        before = timezone.now()
        first = service.deliver(pk)
        after = timezone.now()
        again = service.deliver(pk)
    delivery = Delivery.objects.get(pk=pk)
    assert again.status == "pending" and len(server.requests) == 1
    assert first.retry_in == pytest.approx(110)
    assert before + timedelta(seconds=110) <= delivery.next_attempt_at <= after + timedelta(seconds=110)
    assert delivery.lease_until is None


def test_the_default_schedule_spans_about_a_day_over_eight_attempts():
    from django.conf import settings

    assert len(settings.WEBHOOK_RETRY_SCHEDULE) + 1 >= 8
    assert 20 * 3600 <= sum(settings.WEBHOOK_RETRY_SCHEDULE) <= 30 * 3600


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_honoured_when_longer_than_the_schedule(settings, endpoint_for, new_session, status):
    settings.WEBHOOK_RETRY_SCHEDULE = [10]
    with LocalServer(Reply(status, headers={"Retry-After": "300"})) as server:
        endpoint_for(server.url)
        new_session()
        before = timezone.now()
        service.deliver(only_delivery().pk)
    wait = (only_delivery().next_attempt_at - before).total_seconds()
    assert 299 <= wait <= 302


def test_retry_after_as_an_http_date_is_honoured(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [10]
    when = timezone.now() + timedelta(minutes=20)
    with LocalServer(Reply(429, headers={"Retry-After": format_datetime(when, usegmt=True)})) as server:
        endpoint_for(server.url)
        new_session()
        service.deliver(only_delivery().pk)
    assert abs((only_delivery().next_attempt_at - when).total_seconds()) <= 2


def test_a_shorter_or_garbled_retry_after_does_not_shorten_the_schedule(settings, endpoint_for, new_session):
    from webhooks.models import WebhookEndpoint

    settings.WEBHOOK_RETRY_SCHEDULE = [600]
    for value in ("1", "soon", "Mon, 99 Foo 2020"):
        WebhookEndpoint.objects.all().delete()
        with LocalServer(Reply(503, headers={"Retry-After": value})) as server:
            endpoint_for(server.url)
            new_session()
            before = timezone.now()
            service.deliver(Delivery.objects.get().pk)
        assert (Delivery.objects.get().next_attempt_at - before).total_seconds() >= 540, value


def test_retry_after_on_other_statuses_is_ignored(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [10]
    with LocalServer(Reply(500, headers={"Retry-After": "3000"})) as server:
        endpoint_for(server.url)
        new_session()
        before = timezone.now()
        service.deliver(only_delivery().pk)
    assert (only_delivery().next_attempt_at - before).total_seconds() <= 12


# --- Network trouble is an attempt like any other --------------------------------------------
def test_a_refused_connection_is_recorded_as_a_failed_attempt(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    endpoint_for(refused_url())
    new_session()
    outcome = service.deliver(only_delivery().pk)
    attempt = DeliveryAttempt.objects.get()
    assert outcome.status == "pending" and attempt.status_code is None
    assert "refused" in attempt.error.lower()
    assert only_delivery().last_error == attempt.error


def test_a_receiver_that_hangs_is_cut_off_at_the_timeout(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    with LocalServer(Reply(hang=True)) as server:
        endpoint_for(server.url)
        new_session()
        service.deliver(only_delivery().pk)
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None and "timeout" in attempt.error.lower()
    assert attempt.duration_ms < 5000  # bounded by the deadline, not by the server


def test_a_huge_2xx_reply_counts_as_received_and_is_stored_capped(endpoint_for, new_session):
    with LocalServer(Reply(200, "ok", huge=5_000_000)) as server:
        endpoint_for(server.url)
        new_session()
        outcome = service.deliver(only_delivery().pk)
    attempt = DeliveryAttempt.objects.get()
    assert outcome.status == "succeeded"
    assert len(attempt.response_body) <= service.STORED_RESPONSE_CHARS and attempt.error == ""


def test_a_hostile_reply_body_is_stored_as_capped_text(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    with LocalServer(Reply(400, b"<script>alert(1)</script>\xff\xfe" + b"A" * 10_000)) as server:
        endpoint_for(server.url)
        new_session()
        service.deliver(only_delivery().pk)
    attempt = DeliveryAttempt.objects.get()
    assert attempt.response_body.startswith("<script>") and len(attempt.response_body) == service.STORED_RESPONSE_CHARS
    assert attempt.status_code == 400


def test_a_private_address_is_refused_at_send_time_in_production(settings, new_session, organization):
    from webhooks.models import WebhookEndpoint

    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    with LocalServer(Reply(200)) as server:
        # Saved while private targets were allowed; production refuses it when sending.
        WebhookEndpoint.objects.create(organization=organization, url=server.url, enabled_events=["*"])
        new_session()
        settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
        settings.DEBUG = False
        service.deliver(only_delivery().pk)
    assert server.requests == []
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None and attempt.error


# --- Endpoint health --------------------------------------------------------------------------
def test_410_gone_disables_the_endpoint_at_once_and_fails_the_delivery(
        settings, endpoint_for, new_session, django_capture_on_commit_callbacks):
    settings.WEBHOOK_RETRY_SCHEDULE = [0, 0, 0]
    with LocalServer(Reply(410)) as server:
        endpoint = endpoint_for(server.url)
        new_session()
        new_session()
        first, second = Delivery.objects.order_by("pk")
        with django_capture_on_commit_callbacks(execute=True):
            assert service.deliver(first.pk).status == "failed"
        assert service.deliver(second.pk).status == "failed"
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert len(server.requests) == 1  # the second was not sent to a disabled endpoint
    second.refresh_from_db()
    assert "disabled" in second.last_error and second.attempts_count == 0
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ops@acme.test"]


def test_an_endpoint_failing_for_five_days_is_disabled_and_its_organizer_emailed(
        settings, endpoint_for, new_session, django_capture_on_commit_callbacks):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    with LocalServer(Reply(500)) as server:
        endpoint = endpoint_for(server.url, failing_since=timezone.now() - timedelta(days=5, minutes=1))
        new_session()
        with django_capture_on_commit_callbacks(execute=True):
            service.deliver(only_delivery().pk)
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "failed since" in endpoint.disabled_reason
    assert len(mail.outbox) == 1
    assert endpoint.url in mail.outbox[0].body and mail.outbox[0].to == ["ops@acme.test"]


def test_an_endpoint_failing_for_four_days_stays_enabled(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    with LocalServer(Reply(500)) as server:
        endpoint = endpoint_for(server.url, failing_since=timezone.now() - timedelta(days=4))
        new_session()
        service.deliver(only_delivery().pk)
    endpoint.refresh_from_db()
    assert endpoint.enabled and mail.outbox == []


def test_the_first_failure_starts_the_clock_and_a_success_stops_it(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    with LocalServer(sequence(Reply(500), Reply(204))) as server:
        endpoint = endpoint_for(server.url)
        new_session()
        pk = only_delivery().pk
        service.deliver(pk)
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None
        service.deliver(pk)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.enabled


# --- Leases --------------------------------------------------------------------------------------
def test_a_claimed_delivery_cannot_be_claimed_again_while_its_lease_lasts(endpoint_for, new_session):
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    pk = only_delivery().pk
    assert service.claim(pk) is not None
    assert service.claim(pk) is None
    assert not service.due().filter(pk=pk).exists()


def test_an_expired_lease_is_taken_over_and_the_lost_attempt_recorded(endpoint_for, new_session):
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    pk = only_delivery().pk
    first = service.claim(pk)
    Delivery.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    second = service.claim(pk)
    assert (first.number, second.number) == (1, 2)
    lost = DeliveryAttempt.objects.get(delivery_id=pk)
    assert lost.number == 1 and lost.error == service.LOST_ATTEMPT_ERROR


def test_a_late_failure_from_an_expired_lease_changes_nothing_but_history(settings, endpoint_for, new_session):
    from webhooks.http import HttpResult

    settings.WEBHOOK_RETRY_SCHEDULE = [0]  # one failure would be the last but one
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    pk = only_delivery().pk
    stale = service.claim(pk)
    Delivery.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    current = service.claim(pk)

    service.record(stale, HttpResult(500, b"", 5), timezone.now())
    delivery = Delivery.objects.get(pk=pk)
    assert delivery.status == "pending" and delivery.lease_until is not None  # still the current worker's

    service.record(current, HttpResult(200, b"", 5), timezone.now())
    assert Delivery.objects.get(pk=pk).status == "succeeded"


def test_a_late_success_from_an_expired_lease_still_counts(endpoint_for, new_session):
    from webhooks.http import HttpResult

    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    pk = only_delivery().pk
    stale = service.claim(pk)
    Delivery.objects.filter(pk=pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    current = service.claim(pk)
    service.record(stale, HttpResult(200, b"", 5), timezone.now())
    assert Delivery.objects.get(pk=pk).status == "succeeded"
    service.record(current, HttpResult(500, b"", 5), timezone.now())
    assert Delivery.objects.get(pk=pk).status == "succeeded"  # a later failure does not undo it


# --- The sweep ------------------------------------------------------------------------------------
def test_the_sweep_enqueues_overdue_free_deliveries_only(settings, endpoint_for, new_session):
    settings.WEBHOOK_SWEEP_SECONDS = 10
    endpoint_for("http://127.0.0.1:9/hook")
    for _ in range(5):
        new_session()
    overdue, fresh, future, leased, expired_lease = Delivery.objects.order_by("pk")
    now = timezone.now()
    Delivery.objects.filter(pk=overdue.pk).update(next_attempt_at=now - timedelta(seconds=30))
    Delivery.objects.filter(pk=fresh.pk).update(next_attempt_at=now)
    Delivery.objects.filter(pk=future.pk).update(next_attempt_at=now + timedelta(hours=1))
    Delivery.objects.filter(pk=leased.pk).update(next_attempt_at=now - timedelta(seconds=30),
                                                 lease_until=now + timedelta(seconds=30))
    Delivery.objects.filter(pk=expired_lease.pk).update(lease_until=now - timedelta(seconds=1))
    Delivery.objects.create(event=overdue.event, target_url="http://127.0.0.1:9/x", status="succeeded",
                            next_attempt_at=now - timedelta(hours=1))

    assert sorted(service.overdue()) == sorted([overdue.pk, expired_lease.pk])


# --- By hand ---------------------------------------------------------------------------------------
def test_a_dead_letter_retried_by_hand_gets_one_more_attempt(settings, endpoint_for, new_session,
                                                              django_capture_on_commit_callbacks, monkeypatch):
    from webhooks import tasks

    monkeypatch.setattr(tasks.deliver, "apply_async", lambda *a, **k: None)
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    with LocalServer(sequence(Reply(500), Reply(500), Reply(500), Reply(200))) as server:
        endpoint_for(server.url)
        new_session()
        pk = only_delivery().pk
        service.deliver(pk)
        assert service.deliver(pk).status == "failed"
        with django_capture_on_commit_callbacks(execute=True):
            service.retry_now(pk)
        assert service.deliver(pk).status == "failed"  # one more attempt, not a new schedule
        service.retry_now(pk)
        assert service.deliver(pk).status == "succeeded"
    assert len(server.requests) == 4
    with pytest.raises(service.NotRetryable):
        service.retry_now(pk)


def test_a_delivery_in_flight_cannot_be_retried_by_hand(endpoint_for, new_session):
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    pk = only_delivery().pk
    service.claim(pk)
    with pytest.raises(service.NotRetryable):
        service.retry_now(pk)


def test_a_test_event_reaches_even_a_disabled_endpoint_once_and_is_never_retried(endpoint_for):
    with LocalServer(Reply(500)) as server:
        endpoint = endpoint_for(server.url, enabled=False, disabled_reason="410")
        delivery, outcome = service.send_test_event(endpoint)
    assert delivery.status == "failed" and outcome.status_code == 500
    assert len(server.requests) == 1
    body = json.loads(server.requests[0].body)
    assert body["type"] == service.TEST_EVENT_TYPE and body["data"]["object"]["id"] == endpoint.public_id
    Webhook(endpoint.secret).verify(server.requests[0].body, server.requests[0].headers)
    endpoint.refresh_from_db()
    assert not endpoint.enabled


def test_the_sweep_command_delivers_overdue_deliveries_inline_without_a_broker(settings, endpoint_for, new_session):
    from io import StringIO

    from django.core.management import call_command

    settings.WEBHOOK_SWEEP_SECONDS = 5
    with LocalServer(Reply(200)) as server:
        endpoint_for(server.url)
        new_session()
        new_session()
        Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=10))
        out = StringIO()
        call_command("sweep_deliveries", "--inline", stdout=out)
    assert "Attempted 2 overdue deliveries: 2 succeeded." in out.getvalue()
    assert len(server.requests) == 2 and set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_retries_go_to_the_endpoint_url_as_it_is_now(settings, endpoint_for, new_session):
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    with LocalServer(Reply(404)) as wrong, LocalServer(Reply(200)) as right:
        endpoint = endpoint_for(wrong.url)
        new_session()
        pk = only_delivery().pk
        service.deliver(pk)
        endpoint.url = right.url.replace("/hook", "/fixed")
        endpoint.save()
        assert service.deliver(pk).status == "succeeded"
    assert len(wrong.requests) == 1 and [r.path for r in right.requests] == ["/fixed"]
    assert only_delivery().target_url == endpoint.url


@pytest.mark.parametrize("status", [200, 500])
def test_an_answer_with_nul_bytes_is_still_recorded(settings, endpoint_for, new_session, status):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    with LocalServer(Reply(status, b"ok\x00\x00<evil>")) as server:
        endpoint_for(server.url)
        new_session()
        service.deliver(only_delivery().pk)
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code == status and "\x00" not in attempt.response_body
    assert attempt.response_body.startswith("ok") and attempt.response_body.endswith("<evil>")


def test_the_sweep_stops_at_the_first_enqueue_the_broker_refuses(settings, endpoint_for, new_session, monkeypatch):
    from webhooks import tasks

    settings.WEBHOOK_SWEEP_SECONDS = 1
    endpoint_for("http://127.0.0.1:9/hook")
    for _ in range(3):
        new_session()
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=10))
    tries = []

    def broker_down(*args, **kwargs):
        tries.append(args)
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.deliver, "apply_async", broker_down)
    assert tasks.sweep_deliveries() == 0
    assert len(tries) == 1 and service.due().count() == 3  # still due for the next sweep


def test_a_lease_always_outlasts_the_post_deadline(settings, endpoint_for, new_session):
    settings.WEBHOOK_LEASE_SECONDS = 1
    settings.WEBHOOK_TIMEOUT_SECONDS = 10
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    before = timezone.now()
    service.claim(only_delivery().pk)
    assert (only_delivery().lease_until - before).total_seconds() >= 11


def test_the_worker_task_delivers_its_delivery_and_then_has_nothing_left_to_do(endpoint_for, new_session, monkeypatch):
    """The task's path (``deliver_batch``), on whichever database runs the tests."""
    from webhooks import tasks

    monkeypatch.setattr(senders, "in_this_process", senders.InThisProcess())
    with LocalServer(Reply(200)) as server:
        endpoint_for(server.url)
        new_session()
        pk = only_delivery().pk
        assert tasks.deliver(pk) == 1
        assert tasks.deliver(pk) == 0  # a duplicate message
    assert only_delivery().status == "succeeded" and len(server.requests) == 1


@pytest.mark.parametrize(("schedule", "enqueued_again"), [([5], True), ([600], False)])
def test_the_task_hands_a_short_retry_to_the_broker_and_leaves_a_long_one_to_the_sweep(
        settings, endpoint_for, new_session, monkeypatch, schedule, enqueued_again):
    from webhooks import retry_policy, tasks

    monkeypatch.setattr(senders, "in_this_process", senders.InThisProcess())
    monkeypatch.setattr(retry_policy.random, "uniform", lambda low, high: 1.0)
    enqueued = []
    monkeypatch.setattr(tasks.deliver, "apply_async", lambda args, countdown=None: enqueued.append((args[0], countdown)))
    settings.WEBHOOK_RETRY_SCHEDULE = schedule
    with LocalServer(Reply(500)) as server:
        endpoint_for(server.url)
        new_session()
        pk = only_delivery().pk
        assert tasks.deliver(pk) == 1
    assert len(server.requests) == 1
    assert enqueued == ([(pk, 5)] if enqueued_again else [])


def test_a_retry_by_hand_is_enqueued_only_once_it_commits(endpoint_for, new_session, monkeypatch,
                                                         django_capture_on_commit_callbacks):
    from webhooks import tasks

    enqueued = []
    monkeypatch.setattr(tasks.deliver, "apply_async", lambda args, countdown=None: enqueued.append(args[0]))
    endpoint_for("http://127.0.0.1:9/hook")
    new_session()
    pk = only_delivery().pk
    Delivery.objects.filter(pk=pk).update(status="failed", next_attempt_at=None)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tasks.retry_delivery(pk)
    assert enqueued == [] and only_delivery().status == "pending"
    for callback in callbacks:
        callback()
    assert enqueued == [pk]
