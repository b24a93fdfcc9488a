"""What follows a delivery attempt: the whole retry policy, as one decision.

``acknowledged`` says whether the receiver has the event. For an attempt it did not
acknowledge, ``decide`` says when to try again (or never) and whether the endpoint must
be disabled:

- the next attempt waits ``WEBHOOK_RETRY_SCHEDULE[n]`` seconds after attempt ``n + 1``,
  spread by ±``JITTER`` so failing endpoints' retries do not arrive in lockstep;
- a 429 or 503 with ``Retry-After`` waits at least what it asked (at most
  ``RETRY_AFTER_MAX``); on other statuses the header is ignored;
- after the last scheduled attempt the delivery is failed: the dead letter, retried only
  by hand. A test event is never retried;
- 410 Gone fails the delivery and disables its endpoint at once; an endpoint that has
  failed without a success for ``WEBHOOK_DISABLE_AFTER_DAYS`` is disabled.

The function only decides; ``webhooks.delivery`` applies the decision to the rows and
``webhooks.tasks`` hands short waits to the broker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from .http import HttpResult
    from .models import WebhookEndpoint

JITTER = 0.1
# A Retry-After longer than this is treated as this: we still want to try within the day.
RETRY_AFTER_MAX = 6 * 3600


@dataclass(frozen=True)
class RetryDecision:
    """What to do after an attempt the receiver did not acknowledge."""

    wait_seconds: float | None  # until the next attempt; None: no more attempts, the delivery has failed
    disable_reason: str = ""  # set: disable the endpoint, telling its organizer this

    @property
    def gives_up(self) -> bool:
        return self.wait_seconds is None


def acknowledged(result: HttpResult) -> bool:
    """2xx means the receiver has the event, even if its reply was longer than we keep."""
    status_2xx = result.status_code is not None and 200 <= result.status_code < 300
    return result.ok or (status_2xx and result.error_kind == "too_large")


def decide(result: HttpResult, *, attempt: int, endpoint: WebhookEndpoint | None, now: datetime,
           single_shot: bool = False) -> RetryDecision:
    """The decision after failed attempt number ``attempt`` (1 for the first) of a delivery
    to ``endpoint`` (None for a session's own ``webhook_url``). ``single_shot``: a test
    event, never retried."""
    gone = result.status_code == 410
    disable_reason = ""
    if endpoint is not None and endpoint.enabled:
        failing_since = endpoint.failing_since or now  # this failure starts the clock
        if gone:
            disable_reason = f"The endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC."
        elif now - failing_since >= timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS):
            disable_reason = f"Every delivery failed since {failing_since:%Y-%m-%d %H:%M} UTC."
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if gone or single_shot or attempt > len(schedule):
        return RetryDecision(None, disable_reason)
    wait = schedule[attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if result.status_code in (429, 503):
        asked = retry_after_seconds(result.headers, now)
        if asked is not None:
            wait = max(wait, min(asked, RETRY_AFTER_MAX))
    return RetryDecision(wait, disable_reason)


def retry_after_seconds(headers: dict[str, str], now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (delta-seconds or an HTTP date), else ``None``."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)
