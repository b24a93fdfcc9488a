"""The retry policy as a pure decision (``webhooks.retry_policy.decide``): no database, no
network, the clock passed in. The delivery tests check that the decision is applied."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from webhooks import retry_policy
from webhooks.http import HttpResult
from webhooks.models import WebhookEndpoint
from webhooks.retry_policy import RetryDecision, acknowledged, decide

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def schedule(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [30, 120, 600]
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 5


@pytest.fixture
def no_jitter(monkeypatch):
    monkeypatch.setattr(retry_policy.random, "uniform", lambda low, high: 1.0)


def endpoint(**fields) -> WebhookEndpoint:
    return WebhookEndpoint(url="https://hooks.example.com/", **fields)


def failed(status_code=500, **headers) -> HttpResult:
    return HttpResult(status_code, b"", 5, headers=headers)


@pytest.mark.parametrize(("attempt", "wait"), [(1, 30), (2, 120), (3, 600)])
def test_each_failed_attempt_waits_as_the_schedule_says(no_jitter, attempt, wait):
    assert decide(failed(), attempt=attempt, endpoint=endpoint(), now=NOW) == RetryDecision(wait)


def test_after_the_last_scheduled_attempt_the_delivery_has_failed():
    decision = decide(failed(), attempt=4, endpoint=endpoint(), now=NOW)
    assert decision.gives_up and decision.disable_reason == ""


@pytest.mark.parametrize("extreme", ["low", "high"])
def test_jitter_spreads_a_wait_by_at_most_a_tenth_either_way(monkeypatch, extreme):
    asked = []

    def uniform(low, high):
        asked.append((low, high))
        return low if extreme == "low" else high

    monkeypatch.setattr(retry_policy.random, "uniform", uniform)
    wait = decide(failed(), attempt=2, endpoint=endpoint(), now=NOW).wait_seconds
    assert asked == [(0.9, 1.1)]
    assert wait == pytest.approx(108 if extreme == "low" else 132)


@pytest.mark.parametrize("status", [429, 503])
def test_a_longer_retry_after_is_honoured_on_429_and_503(no_jitter, status):
    assert decide(failed(status, **{"Retry-After": "300"}), attempt=1, endpoint=endpoint(), now=NOW).wait_seconds == 300
    as_date = format_datetime(NOW + timedelta(minutes=20), usegmt=True)
    assert decide(failed(status, **{"retry-after": as_date}), attempt=1, endpoint=None, now=NOW).wait_seconds == 1200


@pytest.mark.parametrize("value", ["1", "soon", "Mon, 99 Foo 2020", ""])
def test_a_shorter_or_garbled_retry_after_keeps_the_schedule(no_jitter, value):
    assert decide(failed(503, **{"Retry-After": value}), attempt=1, endpoint=endpoint(), now=NOW).wait_seconds == 30


def test_retry_after_on_other_statuses_is_ignored(no_jitter):
    assert decide(failed(500, **{"Retry-After": "3000"}), attempt=1, endpoint=endpoint(), now=NOW).wait_seconds == 30


def test_an_absurd_retry_after_is_capped(no_jitter):
    decision = decide(failed(429, **{"Retry-After": "99999999"}), attempt=1, endpoint=endpoint(), now=NOW)
    assert decision.wait_seconds == retry_policy.RETRY_AFTER_MAX


def test_410_gone_gives_up_and_disables_the_endpoint_at_once():
    decision = decide(failed(410), attempt=1, endpoint=endpoint(enabled=True), now=NOW)
    assert decision.gives_up and "410 Gone" in decision.disable_reason


def test_410_from_a_session_url_gives_up_with_no_endpoint_to_disable():
    assert decide(failed(410), attempt=1, endpoint=None, now=NOW) == RetryDecision(None)


def test_an_endpoint_failing_for_the_disable_period_is_disabled_and_the_delivery_still_retried(no_jitter):
    since = NOW - timedelta(days=5)
    decision = decide(failed(), attempt=1, endpoint=endpoint(enabled=True, failing_since=since), now=NOW)
    assert decision.wait_seconds == 30 and "failed since 2026-11-29 12:00" in decision.disable_reason


def test_an_endpoint_failing_for_less_stays_enabled():
    since = NOW - timedelta(days=5) + timedelta(seconds=1)
    assert decide(failed(), attempt=1, endpoint=endpoint(enabled=True, failing_since=since), now=NOW).disable_reason == ""


def test_a_first_failure_starts_the_clock_rather_than_disabling():
    assert decide(failed(), attempt=1, endpoint=endpoint(enabled=True, failing_since=None), now=NOW).disable_reason == ""


def test_an_endpoint_already_disabled_is_not_disabled_again():
    gone = endpoint(enabled=False, failing_since=NOW - timedelta(days=30))
    assert decide(failed(410), attempt=1, endpoint=gone, now=NOW) == RetryDecision(None)


def test_a_test_event_is_never_retried():
    assert decide(failed(), attempt=1, endpoint=endpoint(), now=NOW, single_shot=True).gives_up


@pytest.mark.parametrize(("result", "expected"), [
    (HttpResult(200, b"", 5), True),
    (HttpResult(204, b"", 5), True),
    (HttpResult(200, b"x" * 10, 5, error="too large", error_kind="too_large"), True),  # the receiver has it
    (HttpResult(500, b"", 5), False),
    (HttpResult(302, b"", 5), False),
    (HttpResult(None, b"", 5, error="timeout", error_kind="timeout"), False),
])
def test_only_a_2xx_acknowledges(result, expected):
    assert acknowledged(result) is expected
