"""Delivering outbox events: claim with a lease, send, record.

The rules, in the order a delivery meets them:

1. **Claim.** A worker takes due deliveries under ``SELECT … FOR UPDATE SKIP LOCKED`` and
   sets ``lease_until``; while the lease lasts nobody else may send them. Claiming also
   reserves the attempt number (``attempts_count``), which fences late results: a worker
   whose lease ran out cannot fail a delivery another worker has since taken over.
2. **Send.** One POST through ``webhooks.http`` (total deadline, no redirects, capped
   response, address checked at connect time), signed with Standard Webhooks headers
   whose ``webhook-id`` is the event id, the same on every retry.
3. **Record.** Every attempt becomes a ``DeliveryAttempt`` row. 2xx: succeeded. Anything
   else: ``webhooks.retry_policy.decide`` says when to try again, whether the delivery is
   failed (the dead letter, retried only by hand) and whether the endpoint is disabled.

Waits live in the database (``next_attempt_at``): the periodic sweep enqueues what is due
(``overdue``), so a lost broker message or a killed worker only delays a delivery. This
module decides and writes; ``webhooks.tasks`` enqueues, using the ``retry_in`` of each
``DeliveryReport`` to hand short waits to the broker.

A worker does this in batches (``deliver_batch``): it claims the message's delivery and
other due ones, each with its own lease and attempt number; their POSTs go out side by
side; the successes are recorded together. Each member meets the rules above exactly as
a lone delivery would.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from ievents.models import Organization

from . import http, senders
from .models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from .retry_policy import acknowledged, decide
from .signing import sign_headers, signing_secrets

log = logging.getLogger(__name__)

TEST_EVENT_TYPE = "webhook_endpoint.test"
USER_AGENT = "iEvents-Webhooks/1.0"
# Stored response bodies and error texts are capped: the receiver's text is data, not ours.
STORED_RESPONSE_CHARS = 2000
LOST_ATTEMPT_ERROR = "No result: the worker stopped during this attempt (lease expired); sent again."

# A task claims its delivery and up to BATCH_SIZE - 1 other due ones, sends them side by
# side and records the successes together: a few statements per batch, not per delivery.
# Failures are rare and take the careful path, one at a time, under the row lock.
BATCH_SIZE = 16


class NotRetryable(Exception):
    """A manual retry that makes no sense now (already delivered, or in flight)."""


@dataclass(frozen=True)
class Claim:
    """What a worker holds while it sends: everything needed, nothing re-read."""

    delivery_id: int
    number: int
    url: str
    event_id: str
    body: bytes
    secrets: tuple[str, ...]
    single_shot: bool
    endpoint_id: int | None = None
    endpoint_failing: bool = False  # as of the claim: a success then clears ``failing_since``
    send_by: float = math.inf  # monotonic: a POST starting later could outlive the lease


@dataclass(frozen=True)
class DeliveryReport:
    """What became of one delivery after a worker's go at it."""

    delivery_id: int
    status: str
    attempt: int | None = None
    status_code: int | None = None
    error: str = ""
    retry_in: float | None = None  # pending: seconds until it is due again (the broker may be told)


# --- What is due -------------------------------------------------------------------------
def due(now: datetime | None = None):
    """Pending deliveries whose time has come and that no live worker holds."""
    now = now or timezone.now()
    return Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    )


def overdue(*, limit: int = 1000) -> list[int]:
    """Deliveries the sweep must enqueue: due for longer than one sweep interval, and those
    whose lease expired (their worker died mid-send).

    Fresh ones are left alone: their on-commit task or countdown is on its way, and the
    claim makes a duplicate harmless anyway; this only keeps duplicates rare.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_SWEEP_SECONDS)
    ids = list(due().filter(next_attempt_at__lte=cutoff).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    seen = set(ids)
    ids += [pk for pk in due().filter(lease_until__isnull=False).values_list("pk", flat=True)[:limit] if pk not in seen]
    return ids


# --- Claim ---------------------------------------------------------------------------------
def claim(delivery_id: int, *, even_if_disabled: bool = False) -> Claim | None:
    """Take the delivery for one attempt, or ``None`` if it is not ours to send now.

    The row must be due, pending and not leased; it leaves with the next attempt number
    and a lease (``SKIP LOCKED``: a row another worker is claiming at this instant is
    simply not ours). An endpoint's delivery goes to the endpoint's URL as it is now, so
    fixing a wrong URL also fixes the retries already scheduled."""
    held = claim_batch(delivery_id, others=0, even_if_disabled=even_if_disabled)
    return held[0] if held else None


def claim_batch(delivery_id: int, *, others: int | None = None, even_if_disabled: bool = False) -> list[Claim]:
    """Claim ``delivery_id`` if it is due and free, and up to ``others`` more due ones
    (``BATCH_SIZE - 1`` when not given), longest due first.

    The named delivery comes first when it was claimed. Every claim follows the rules of
    ``claim``. A delivery whose endpoint was disabled is failed instead of claimed (unless
    it is the named one and ``even_if_disabled``: a test event)."""
    now = timezone.now()
    # A lease shorter than the POST's deadline would let a second worker send while the
    # first is still waiting for the answer: whatever the setting, it outlasts the timeout.
    lease = max(settings.WEBHOOK_LEASE_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS + 1)
    # The last moment a POST of this batch may start and still end (deadline included)
    # within the lease; taken before the claim, so it errs on the early side.
    send_by = time.monotonic() + lease - settings.WEBHOOK_TIMEOUT_SECONDS
    with transaction.atomic():
        rows = _lock_due(delivery_id, BATCH_SIZE - 1 if others is None else others, now)
        _note_lost_attempts(rows, now)
        refused = [d for d in rows if d.endpoint is not None and not d.endpoint.enabled
                   and not (even_if_disabled and d.pk == delivery_id)]
        _fail_for_disabled_endpoints(refused, now)
        rows = [d for d in rows if d not in refused]
        _take(rows, now, now + timedelta(seconds=lease))
        organization_secrets = _organization_secrets(rows)
    return [
        Claim(
            delivery_id=d.pk,
            number=d.attempts_count,
            url=d.target_url,
            event_id=d.event_public_id,
            body=d.event_body.encode(),
            # The organization's secret signs only what goes to a session's own webhook_url.
            secrets=tuple(signing_secrets(d.endpoint) if d.endpoint is not None
                          else [organization_secrets[d.event_organization_id]]),
            single_shot=d.event_type == TEST_EVENT_TYPE,
            endpoint_id=d.endpoint_id,
            endpoint_failing=bool(d.endpoint and d.endpoint.failing_since),
            send_by=send_by,
        )
        for d in rows
    ]


# The columns a claim uses, of the delivery and its endpoint: a batch reads up to
# BATCH_SIZE rows of three tables, and converting the others (timestamps, ids) cost a
# fifth of the claim. ``tests/perf/test_delivery_queries.py`` fails if one is missing.
CLAIMED_FIELDS = (
    "attempts_count", "lease_until", "target_url", "endpoint_id",
    "endpoint__url", "endpoint__enabled", "endpoint__disabled_reason", "endpoint__failing_since",
    "endpoint__secret", "endpoint__previous_secret", "endpoint__previous_secret_expires_at",
)
# Of its event, only what is sent, as values: the payload as the JSON text the database
# holds, which is the body as it is; decoding it into objects only to encode them again
# cost about a tenth of a claim.
CLAIMED_EVENT = {
    "event_public_id": F("event__public_id"),
    "event_type": F("event__type"),
    "event_organization_id": F("event__organization_id"),
    "event_body": Cast("event__payload", TextField()),
}


def _lock_due(delivery_id: int, others: int, now: datetime) -> list[Delivery]:
    """The named delivery if it is due and free, then up to ``others`` of the longest-due
    others, locked; rows another worker is claiming at this instant are skipped."""
    locked = (due(now).select_for_update(skip_locked=True, of=("self",))
              .select_related("endpoint").only(*CLAIMED_FIELDS).annotate(**CLAIMED_EVENT))
    rows = list(locked.filter(pk=delivery_id))
    if others > 0:
        rows += locked.exclude(pk=delivery_id).order_by("next_attempt_at", "pk")[:others]
    return rows


def _note_lost_attempts(rows: list[Delivery], now: datetime) -> None:
    """A due row with a lease was claimed by a worker that never reported back: it died.
    Say so in the history, under the attempt number it had reserved."""
    lost = [DeliveryAttempt(delivery_id=d.pk, number=d.attempts_count, started_at=now, error=LOST_ATTEMPT_ERROR)
            for d in rows if d.lease_until is not None]
    if lost:
        DeliveryAttempt.objects.bulk_create(lost)


def _fail_for_disabled_endpoints(rows: list[Delivery], now: datetime) -> None:
    """No next attempt (as for every failed delivery): a failed row that kept its due time
    would stay in the range every batch scans for due deliveries."""
    for d in rows:
        Delivery.objects.filter(pk=d.pk).update(
            status=Delivery.Status.FAILED, lease_until=None, next_attempt_at=None, updated_at=now,
            last_error=f"Not sent: the endpoint is disabled ({d.endpoint.disabled_reason or 'by hand'})."[:500],
        )


def _take(rows: list[Delivery], now: datetime, lease_until: datetime) -> None:
    """Give each locked row its lease and its next attempt number, here and in memory."""
    if not rows:
        return
    Delivery.objects.filter(pk__in=[d.pk for d in rows]).update(
        attempts_count=F("attempts_count") + 1, lease_until=lease_until, updated_at=now)
    for d in rows:
        d.attempts_count += 1
        d.lease_until = lease_until
        if d.endpoint is not None and d.target_url != d.endpoint.url:  # the organizer changed the URL
            d.target_url = d.endpoint.url
            Delivery.objects.filter(pk=d.pk).update(target_url=d.target_url)


def _organization_secrets(rows: list[Delivery]) -> dict[int, str]:
    """The signing secrets of the organizations whose sessions' own URLs are in ``rows``."""
    wanted = {d.event_organization_id for d in rows if d.endpoint is None}
    if not wanted:
        return {}
    return dict(Organization.objects.filter(pk__in=wanted).values_list("pk", "signing_secret"))


# --- Send ----------------------------------------------------------------------------------
def send(claim: Claim) -> http.HttpResult:
    headers = sign_headers(claim.event_id, claim.body, list(claim.secrets))
    headers["Content-Type"] = "application/json"
    headers["User-Agent"] = USER_AGENT
    return http.post(claim.url, claim.body, headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                     max_bytes=settings.WEBHOOK_MAX_RESPONSE_BYTES)


@dataclass(frozen=True)
class Sent:
    """One claim's POST: its result and when it started; ``result`` is None when the POST
    was never started because the lease could no longer cover its deadline."""

    claim: Claim
    result: http.HttpResult | None
    started_at: datetime


def _send_in_time(claim: Claim) -> Sent:
    """POST ``claim`` unless its lease could no longer cover the POST's whole deadline."""
    if time.monotonic() > claim.send_by:
        return Sent(claim, None, timezone.now())
    started_at = timezone.now()
    return Sent(claim, send(claim), started_at)


def send_all(claims: list[Claim]) -> list[Sent]:
    """POST every claim. A batch's POSTs run side by side on the sender threads, so one
    slow receiver holds up only its own delivery, never the rest of the batch or its
    lease; a lone claim (an idle queue, a retry by hand) is sent right here. A POST that
    could only start too late for its lease is not started."""
    if len(claims) <= 1:
        return [_send_in_time(claim) for claim in claims]
    return senders.side_by_side(_send_in_time, claims)




def deliver(delivery_id: int, *, even_if_disabled: bool = False) -> DeliveryReport:
    """One attempt at ``delivery_id`` alone, if it is due and free: a retry by hand, a test
    event, ``sweep_deliveries --inline``. (A worker's task takes others along:
    ``deliver_batch``.)"""
    held = claim(delivery_id, even_if_disabled=even_if_disabled)
    if held is None:
        status = Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first() or "missing"
        return DeliveryReport(delivery_id, status)
    return record_all(send_all([held]))[0]


def deliver_batch(delivery_id: int, *, size: int | None = None) -> list[DeliveryReport]:
    """A worker's job for one message: ``delivery_id`` if it is due and free, and up to
    ``size - 1`` other due deliveries with it, sent side by side and recorded together.

    Nothing is done (not even a query) for a delivery this process is already sending or
    has seen succeed. Returns the reports of the deliveries attempted."""
    if senders.in_this_process.knows(delivery_id):
        return []
    held = claim_batch(delivery_id, others=(size or BATCH_SIZE) - 1)
    ids = [c.delivery_id for c in held]
    senders.in_this_process.sending(ids)
    reports: list[DeliveryReport] = []
    try:
        reports = record_all(send_all(held))
    finally:
        senders.in_this_process.done(ids, [r.delivery_id for r in reports if r.status == Delivery.Status.SUCCEEDED])
    return reports


# --- Record --------------------------------------------------------------------------------
def record_all(sent: list[Sent]) -> list[DeliveryReport]:
    """Record a batch's attempts: every success together, each failure on its own (under
    the row lock, as ``record`` does), and give back what was never started."""
    successes = [s for s in sent if s.result is not None and acknowledged(s.result)]
    never_started = [s.claim for s in sent if s.result is None]
    reports = {r.delivery_id: r for r in _record_successes(successes)}
    for s in sent:
        if s.result is not None and s.claim.delivery_id not in reports:
            reports[s.claim.delivery_id] = record(s.claim, s.result, s.started_at)
    if never_started:
        reports.update((r.delivery_id, r) for r in give_back(never_started))
    return [reports[s.claim.delivery_id] for s in sent]


def give_back(claims: list[Claim]) -> list[DeliveryReport]:
    """Undo claims whose POST was never started: no attempt happened, so the attempt
    number is returned with the lease, and the delivery is due again at once. A claim
    another worker has since taken over (its lease ran out) is left alone."""
    with transaction.atomic():
        for claim in claims:
            Delivery.objects.filter(pk=claim.delivery_id, status=Delivery.Status.PENDING,
                                    attempts_count=claim.number).update(
                attempts_count=claim.number - 1, lease_until=None, updated_at=timezone.now())
    log.warning("%d claimed deliveries were given back unsent: their lease could no longer cover a POST", len(claims))
    return [DeliveryReport(claim.delivery_id, Delivery.Status.PENDING, retry_in=0) for claim in claims]


def record(claim: Claim, result: http.HttpResult, started_at: datetime) -> DeliveryReport:
    """Write the attempt and apply what ``retry_policy.decide`` says follows it."""
    if acknowledged(result):
        return _record_successes([Sent(claim, result, started_at)])[0]
    error = result.error or f"HTTP {result.status_code}"
    attempt = DeliveryAttempt(
        delivery_id=claim.delivery_id, number=claim.number, started_at=started_at, duration_ms=result.elapsed_ms,
        status_code=result.status_code, error=error[:500], response_body=stored_text(result.body),
    )
    report = DeliveryReport(claim.delivery_id, Delivery.Status.PENDING, claim.number, result.status_code, error)
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=claim.delivery_id)
        attempt.save()
        # Only the current claim may schedule or dead-letter: a worker whose lease ran out
        # (and whose delivery another worker has taken over) only adds to the history.
        if delivery.status != Delivery.Status.PENDING or delivery.attempts_count != claim.number:
            return dataclasses.replace(report, status=delivery.status)
        now = timezone.now()
        decision = decide(result, attempt=claim.number, endpoint=delivery.endpoint, now=now,
                          single_shot=claim.single_shot)
        if delivery.endpoint is not None:
            _endpoint_failed(delivery.endpoint, now, disable_reason=decision.disable_reason)
        delivery.lease_until = None
        delivery.last_status_code = result.status_code
        delivery.last_error = error[:500]
        if decision.gives_up:
            delivery.status = Delivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + timedelta(seconds=decision.wait_seconds)
        delivery.save(update_fields=["status", "next_attempt_at", "lease_until", "last_status_code", "last_error",
                                     "updated_at"])
    return dataclasses.replace(report, status=delivery.status, retry_in=decision.wait_seconds)


def _record_successes(sent: list[Sent]) -> list[DeliveryReport]:
    """A success is a success even from a worker whose lease ran out: the receiver has it.
    So nothing needs re-reading or checking, only writing: every attempt row in one
    statement, every status in one per status code (usually one)."""
    if not sent:
        return []
    now = timezone.now()
    by_status_code = defaultdict(list)
    for s in sent:
        by_status_code[s.result.status_code].append(s.claim.delivery_id)
    recovered = {s.claim.endpoint_id for s in sent if s.claim.endpoint_failing}
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create([
            DeliveryAttempt(delivery_id=s.claim.delivery_id, number=s.claim.number, started_at=s.started_at,
                            duration_ms=s.result.elapsed_ms, status_code=s.result.status_code,
                            response_body=stored_text(s.result.body))
            for s in sent
        ])
        for status_code, ids in by_status_code.items():
            Delivery.objects.filter(pk__in=ids).exclude(status=Delivery.Status.SUCCEEDED).update(
                status=Delivery.Status.SUCCEEDED, lease_until=None, next_attempt_at=None,
                last_status_code=status_code, last_error="", updated_at=now)
        if recovered:
            WebhookEndpoint.objects.filter(pk__in=recovered, failing_since__isnull=False).update(failing_since=None)
    return [DeliveryReport(s.claim.delivery_id, Delivery.Status.SUCCEEDED, s.claim.number, s.result.status_code)
            for s in sent]


def stored_text(body: bytes) -> str:
    """A receiver's answer as we keep it: capped, decoded, without NULs (PostgreSQL text
    cannot hold them, and a hostile answer must not make the attempt unrecordable)."""
    return body[:STORED_RESPONSE_CHARS * 4].decode("utf-8", "replace")[:STORED_RESPONSE_CHARS].replace("\x00", "\ufffd")


# --- Endpoint health -----------------------------------------------------------------------
def _endpoint_failed(endpoint: WebhookEndpoint, now: datetime, *, disable_reason: str) -> None:
    """Start the endpoint's failure clock if it is not running; disable it if the policy says so."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    if disable_reason:
        disable_endpoint(endpoint, disable_reason)


def disable_endpoint(endpoint: WebhookEndpoint, reason: str, *, notify: bool = True) -> None:
    """Stop sending to ``endpoint``. Its organizer is emailed (when ``notify``) once the
    transaction commits, and only by whoever disabled it: two failures at once send one."""
    reason = reason[:300]
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(enabled=False, disabled_reason=reason)
    endpoint.enabled, endpoint.disabled_reason = False, reason
    if not changed:
        return
    log.warning("webhook endpoint %s disabled: %s", endpoint.public_id, reason)
    email = endpoint.organization.notification_email if notify else ""
    if email:
        transaction.on_commit(lambda: send_mail(
            "A webhook endpoint was disabled",
            f"We stopped sending notifications to {endpoint.url} ({endpoint.public_id}).\n\n"
            f"Why: {reason}\n\nFix the receiver, then enable the endpoint again in the admin or with\n"
            f"PATCH /v1/webhook_endpoints/{endpoint.public_id} {{\"enabled\": true}}. Failed deliveries\n"
            f"can be retried from the admin or with POST /v1/deliveries/<id>/retry.",
            settings.DEFAULT_FROM_EMAIL, [email],
        ), robust=True)


def enable_endpoint(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.enabled = True
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    endpoint.save(update_fields=["enabled", "disabled_reason", "failing_since"])
    return endpoint


# --- By hand: retry, test ------------------------------------------------------------------
def retry_now(delivery_id: int) -> Delivery:
    """Make a pending or failed delivery due at once (the dead letter's way back); the
    caller enqueues it (``webhooks.tasks.retry_delivery``).

    A failed delivery that is retried by hand gets one more attempt, not a new schedule.
    """
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.status == Delivery.Status.SUCCEEDED:
            raise NotRetryable("This delivery already succeeded.")
        if delivery.lease_until and delivery.lease_until > timezone.now():
            raise NotRetryable("This delivery is being sent right now.")
        delivery.status = Delivery.Status.PENDING
        delivery.next_attempt_at = timezone.now()
        delivery.lease_until = None
        delivery.save(update_fields=["status", "next_attempt_at", "lease_until", "updated_at"])
    return delivery


def send_test_event(endpoint: WebhookEndpoint) -> tuple[Delivery, DeliveryReport]:
    """Send one ``webhook_endpoint.test`` event to ``endpoint`` now, and report.

    It is signed and recorded like any delivery, works on a disabled endpoint (to check a
    fix before enabling), and is never retried.
    """
    with transaction.atomic():
        event = OutboxEvent(organization_id=endpoint.organization_id, type=TEST_EVENT_TYPE, payload={})
        event.payload = {
            "id": event.public_id,
            "type": TEST_EVENT_TYPE,
            "created": int(timezone.now().timestamp()),
            "data": {"object": {"object": "webhook_endpoint", "id": endpoint.public_id, "url": endpoint.url}},
        }
        event.save()
        delivery = Delivery.objects.create(event=event, endpoint=endpoint, target_url=endpoint.url,
                                           next_attempt_at=timezone.now())
    report = deliver(delivery.pk, even_if_disabled=True)
    return Delivery.objects.get(pk=delivery.pk), report
