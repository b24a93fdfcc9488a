"""The guards in front of the gate: the rate limit and the circuit breaker."""

import html
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from payments.models import Payment
from tests.conftest import make_event
from tests.servers import Reply
from webhooks import gate as gate_module
from webhooks.models import GateCall, GateSettings

from .conftest import start_checkout, submit_details
from .test_gate_checkout import alert_of, pay

pytestmark = pytest.mark.django_db


# --- Rate limit ----------------------------------------------------------------------------------
@override_settings(GATE_RATE_LIMIT_PER_SESSION=3, GATE_RATE_LIMIT_PER_IP=100)
def test_probing_emails_in_one_session_is_stopped_after_the_limit(client, event, gate, gate_server):
    server = gate_server(Reply(403, {"message": "Not on the list."}))
    session = start_checkout(client, event)
    for n in range(3):
        assert alert_of(submit_details(client, session, email=f"guess{n}@acme.test")) == "Not on the list."
    response = submit_details(client, session, email="guess3@acme.test")
    assert alert_of(response) == html.escape(gate_module.RATE_LIMITED_MESSAGE, quote=True)
    assert 'value="guess3@acme.test"' in response.content.decode()  # what was typed is kept
    assert len(server.requests) == 3  # the fourth guess never reached the gate
    assert GateCall.objects.count() == 3


@override_settings(GATE_RATE_LIMIT_PER_SESSION=2, GATE_RATE_LIMIT_PER_IP=100)
def test_the_rate_limit_also_stops_an_allowed_email_and_voids_its_approval(client, event, gate, gate_server):
    gate_server(Reply(200, {}))
    session = start_checkout(client, event)
    submit_details(client, session, email="a@acme.test")
    submit_details(client, session, email="b@acme.test")
    response = submit_details(client, session, email="c@acme.test")
    assert alert_of(response) == html.escape(gate_module.RATE_LIMITED_MESSAGE, quote=True)
    assert pay(client, session)["Location"] == f"/c/{session.public_id}/"
    assert not Payment.objects.exists()


@override_settings(GATE_RATE_LIMIT_PER_SESSION=1, GATE_RATE_LIMIT_PER_IP=100)
def test_a_first_continue_reads_no_session_count_and_still_uses_up_the_sessions_share(client, event, gate,
                                                                                       gate_server):
    """Details saved once are the only ones the session has had judged: no count is read for
    them (webhooks.gate.recent_calls), and their call is the one the next details meet."""
    server = gate_server(Reply(403, {"message": "No."}))
    session = start_checkout(client, event)
    assert alert_of(submit_details(client, session, email="first@acme.test")) == "No."
    response = submit_details(client, session, email="second@acme.test")
    assert alert_of(response) == html.escape(gate_module.RATE_LIMITED_MESSAGE, quote=True)
    assert len(server.requests) == 1


@override_settings(GATE_RATE_LIMIT_PER_SESSION=100, GATE_RATE_LIMIT_PER_IP=3)
def test_new_sessions_from_one_ip_cannot_get_around_the_limit(client, event, gate, gate_server):
    server = gate_server(Reply(403, {"message": "No."}))
    for n in range(3):
        submit_details(client, start_checkout(client, event, qty=1), email=f"g{n}@x.test")
    response = submit_details(client, start_checkout(client, event, qty=1), email="g3@x.test")
    assert alert_of(response) == html.escape(gate_module.RATE_LIMITED_MESSAGE, quote=True)
    assert len(server.requests) == 3

    # Another attendee, on another address, is not affected.
    other = start_checkout(client, event, qty=1)
    response = submit_details(client, other, email="someone@x.test", remote_addr="203.0.113.9")
    assert alert_of(response) == "No."
    assert len(server.requests) == 4


@override_settings(GATE_RATE_LIMIT_PER_SESSION=2, GATE_RATE_LIMIT_PER_IP=2)
def test_a_busy_event_does_not_count_against_one_attendee(client, event, gate, gate_server):
    """The counts are per session and per address for this event: many other attendees'
    recent calls, and this address's calls for another event, weigh nothing."""
    server = gate_server(Reply(200, {}))
    other_event = make_event(event.organization, name="Other")
    others = [GateCall(event=event, outcome="allowed", decision="allow", client_ip=f"198.51.100.{n}")
              for n in range(1, 60)]
    others += [GateCall(event=other_event, outcome="allowed", decision="allow", client_ip="127.0.0.1")
               for _ in range(5)]
    GateCall.objects.bulk_create(others)
    session = start_checkout(client, event)
    assert submit_details(client, session).status_code == 302
    assert submit_details(client, session, email="b@example.com").status_code == 302
    assert alert_of(submit_details(client, session, email="c@example.com")) == html.escape(
        gate_module.RATE_LIMITED_MESSAGE, quote=True)  # its own two calls are the limit
    assert len(server.requests) == 2


@override_settings(GATE_RATE_LIMIT_PER_SESSION=2, GATE_RATE_LIMIT_WINDOW_SECONDS=600)
def test_the_limit_is_a_sliding_window_over_recent_calls(client, event, gate, gate_server):
    server = gate_server(Reply(403, {"message": "No."}))
    session = start_checkout(client, event)
    for _ in range(3):
        submit_details(client, session)
    assert len(server.requests) == 2
    first = GateCall.objects.order_by("id").first()
    GateCall.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=601))
    assert alert_of(submit_details(client, session)) == "No."  # one call left the window: one more try
    assert alert_of(submit_details(client, session)) == html.escape(gate_module.RATE_LIMITED_MESSAGE, quote=True)
    assert len(server.requests) == 3


@override_settings(GATE_RATE_LIMIT_PER_SESSION=2)
def test_test_requests_do_not_count_towards_the_rate_limit(client, event, gate, gate_server):
    gate_server(Reply(200, {}))
    for _ in range(3):
        gate_module.send_test_request(GateSettings.objects.get(pk=gate.pk))
    assert submit_details(client, start_checkout(client, event)).status_code == 302


# --- Circuit breaker ---------------------------------------------------------------------------------
def _fail_n_times(client, event, n):
    """``n`` attendees, each on their own address (one client alone cannot open the breaker)."""
    for number in range(n):
        submit_details(client, start_checkout(client, event, qty=1), remote_addr=f"203.0.113.{number + 1}")


@override_settings(GATE_BREAKER_FAILURES=3, GATE_BREAKER_COOLDOWN_SECONDS=30)
def test_the_breaker_opens_after_consecutive_failures_and_applies_the_policy_without_calling(
        client, event, gate, gate_server):
    GateSettings.objects.filter(pk=gate.pk).update(timeout_ms=500)
    server = gate_server(Reply(hang=True))
    _fail_n_times(client, event, 3)
    assert len(server.requests) == 3
    gate.refresh_from_db()
    assert gate.consecutive_failures == 3 and gate.breaker_open_until > timezone.now()

    session = start_checkout(client, event, qty=1)
    response = submit_details(client, session)
    assert alert_of(response) == html.escape(gate.error_message, quote=True)
    assert len(server.requests) == 3  # not called: the attendee did not wait for the timeout
    call = GateCall.objects.order_by("-id").first()
    assert call.breaker_open and call.outcome == "error" and call.latency_ms == 0 and call.status_code is None
    assert not Payment.objects.exists()

    GateSettings.objects.filter(pk=gate.pk).update(on_error="allow")
    assert submit_details(client, session).status_code == 302
    assert len(server.requests) == 3


@override_settings(GATE_RATE_LIMIT_PER_SESSION=2, GATE_RATE_LIMIT_PER_IP=100)
def test_with_the_breaker_open_the_policy_answers_uncounted_and_its_decisions_count_once_it_closes(
        client, event, gate, gate_server):
    """Nothing to probe while the gate is not asked: the policy answers every attendee alike,
    without the rate limit's counts. Its decisions are logged, and weigh once the gate is asked."""
    server = gate_server(Reply(200, {}))
    GateSettings.objects.filter(pk=gate.pk).update(on_error="allow",
                                                   breaker_open_until=timezone.now() + timedelta(minutes=5))
    session = start_checkout(client, event)
    for n in range(3):  # one more than the session's limit
        assert submit_details(client, session, email=f"g{n}@acme.test").status_code == 302
    assert not server.requests and GateCall.objects.filter(session=session, breaker_open=True).count() == 3

    GateSettings.objects.filter(pk=gate.pk).update(breaker_open_until=None)  # closed: the gate is asked again
    response = submit_details(client, session, email="g3@acme.test")
    assert alert_of(response) == html.escape(gate_module.RATE_LIMITED_MESSAGE, quote=True)
    assert not server.requests
    assert pay(client, session)["Location"] == f"/c/{session.public_id}/"  # its approval went with the refusal


@override_settings(GATE_BREAKER_FAILURES=3, GATE_BREAKER_COOLDOWN_SECONDS=30)
def test_a_denial_is_an_answer_and_resets_the_failure_count(client, event, gate, gate_server):
    replies = iter([Reply(500), Reply(500), Reply(403, {"message": "No."}), Reply(500), Reply(500), Reply(200, {})])
    server = gate_server(lambda req: next(replies))
    _fail_n_times(client, event, 5)
    gate.refresh_from_db()
    assert gate.consecutive_failures == 2 and gate.breaker_open_until is None
    assert submit_details(client, start_checkout(client, event, qty=1)).status_code == 302
    assert len(server.requests) == 6


@override_settings(GATE_BREAKER_FAILURES=2, GATE_BREAKER_COOLDOWN_SECONDS=30, GATE_BREAKER_MIN_CLIENTS=2)
def test_after_the_cool_down_a_successful_probe_closes_the_breaker(client, event, gate, gate_server):
    answers = {"next": Reply(500)}
    server = gate_server(lambda req: answers["next"])
    _fail_n_times(client, event, 2)
    _fail_n_times(client, event, 2)  # open: not called
    assert len(server.requests) == 2

    answers["next"] = Reply(200, {})
    GateSettings.objects.filter(pk=gate.pk).update(breaker_open_until=timezone.now() - timedelta(seconds=1))
    session = start_checkout(client, event, qty=1)
    assert submit_details(client, session).status_code == 302  # the probe went through
    assert len(server.requests) == 3
    gate.refresh_from_db()
    assert gate.consecutive_failures == 0 and gate.breaker_open_until is None
    assert submit_details(client, start_checkout(client, event, qty=1)).status_code == 302
    assert len(server.requests) == 4


@override_settings(GATE_BREAKER_FAILURES=2, GATE_BREAKER_COOLDOWN_SECONDS=30, GATE_BREAKER_MIN_CLIENTS=2)
def test_a_failed_probe_opens_the_breaker_again_for_a_new_cool_down(client, event, gate, gate_server):
    server = gate_server(Reply(503))
    _fail_n_times(client, event, 2)
    GateSettings.objects.filter(pk=gate.pk).update(breaker_open_until=timezone.now() - timedelta(seconds=1))
    _fail_n_times(client, event, 1)  # the probe
    assert len(server.requests) == 3
    gate.refresh_from_db()
    assert gate.breaker_open_until > timezone.now() + timedelta(seconds=20)
    _fail_n_times(client, event, 2)
    assert len(server.requests) == 3


@override_settings(GATE_BREAKER_FAILURES=1, GATE_BREAKER_COOLDOWN_SECONDS=30)
def test_only_one_caller_wins_the_probe_once_the_cool_down_is_over(gate):
    GateSettings.objects.filter(pk=gate.pk).update(breaker_open_until=timezone.now() - timedelta(seconds=1))
    first, second = GateSettings.objects.get(pk=gate.pk), GateSettings.objects.get(pk=gate.pk)  # two requests at once
    assert gate_module.breaker_admits(first) is True  # the probe
    assert gate_module.breaker_admits(second) is False  # everyone else, until the probe answers
    assert gate_module.breaker_admits(GateSettings.objects.get(pk=gate.pk)) is False
    gate_module.record_breaker_result(first, GateCall.Outcome.ALLOWED)
    assert gate_module.breaker_admits(GateSettings.objects.get(pk=gate.pk)) is True


def test_test_requests_do_not_move_the_breaker(gate, gate_server):
    gate_server(Reply(500))
    for _ in range(10):
        call = gate_module.send_test_request(GateSettings.objects.get(pk=gate.pk))
        assert call.is_test and call.outcome == "error"
    gate.refresh_from_db()
    assert gate.consecutive_failures == 0 and gate.breaker_open_until is None


def test_without_a_client_address_only_the_session_limit_applies(event, gate, gate_server, open_session):
    from checkout import services

    gate_server(Reply(200, {}))
    session = services.save_attendee_details(open_session, name="Ana", email="ana@acme.test", answers={})
    decision = gate_module.run_gate(session, client_ip="")
    assert decision.allowed and GateCall.objects.get().client_ip is None


# --- Issue 21: IPv6 by /64, and a breaker one client cannot open ------------------------------------
@override_settings(GATE_RATE_LIMIT_PER_SESSION=100, GATE_RATE_LIMIT_PER_IP=3)
def test_ipv6_addresses_rotated_within_one_64_share_the_gates_address_limit(client, event, gate, gate_server):
    server = gate_server(Reply(403, {"message": "No."}))
    for host in ("a", "b", "c"):
        submit_details(client, start_checkout(client, event, qty=1), remote_addr=f"2001:db8:1:2::{host}")
    response = submit_details(client, start_checkout(client, event, qty=1), remote_addr="2001:db8:1:2:ffff::d")
    assert alert_of(response) == html.escape(gate_module.RATE_LIMITED_MESSAGE, quote=True)
    assert len(server.requests) == 3
    assert set(GateCall.objects.values_list("address_key", flat=True)) == {"2001:db8:1:2::/64"}
    # Another /64 is another client.
    other = submit_details(client, start_checkout(client, event, qty=1), remote_addr="2001:db8:1:3::a")
    assert alert_of(other) == "No."


@override_settings(GATE_BREAKER_FAILURES=3, GATE_BREAKER_COOLDOWN_SECONDS=30, GATE_BREAKER_MIN_CLIENTS=3,
                   GATE_RATE_LIMIT_PER_IP=100, GATE_RATE_LIMIT_PER_SESSION=100)
def test_one_client_whose_details_make_the_gate_fail_cannot_open_the_breaker(client, event, gate, gate_server):
    server = gate_server(lambda request: Reply(500) if b"evil@" in request.body else Reply(200, {}))
    for _ in range(6):  # one attendee (one /64), six failures
        submit_details(client, start_checkout(client, event, qty=1), email="evil@x.test", remote_addr="2001:db8::1")
    gate.refresh_from_db()
    assert gate.consecutive_failures == 6 and gate.breaker_open_until is None
    # Everyone else is still asked, and let through on the gate's answer.
    assert submit_details(client, start_checkout(client, event, qty=1), remote_addr="203.0.113.50").status_code == 302
    assert len(server.requests) == 7
    # Failures from three different clients do open it.
    for number in range(3):
        submit_details(client, start_checkout(client, event, qty=1), email="evil@x.test",
                       remote_addr=f"198.51.100.{number + 1}")
    gate.refresh_from_db()
    assert gate.breaker_open_until is not None
