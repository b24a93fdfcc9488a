"""Delivering outbox events: claim with a lease, send, record, then succeed, retry or give up.

The rules, in the order a delivery meets them:

1. **Claim.** A worker takes a due delivery under ``SELECT … FOR UPDATE SKIP LOCKED`` and
   sets ``lease_until``; while the lease lasts nobody else may send it. Claiming also
   reserves the attempt number (``attempts_count``), which fences late results: a worker
   whose lease ran out cannot fail a delivery another worker has since taken over.
2. **Send.** One POST through ``webhooks.http`` (total deadline, no redirects, capped
   response, address checked at connect time), signed with Standard Webhooks headers
   whose ``webhook-id`` is the event id, the same on every retry.
3. **Record.** Every attempt becomes a ``DeliveryAttempt`` row. 2xx: succeeded. Otherwise
   the next attempt waits ``WEBHOOK_RETRY_SCHEDULE[n]`` seconds (with jitter, at least
   what a 429/503 ``Retry-After`` asked); after the last one the delivery is ``failed``
   (the dead letter, retried only by hand). 410 Gone disables the endpoint at once; an
   endpoint without a success for ``WEBHOOK_DISABLE_AFTER_DAYS`` is disabled and its
   organizer emailed.

Waits live in the database (``next_attempt_at``): the periodic ``sweep`` enqueues what is
due, so a lost broker message or a killed worker only delays a delivery. Short waits are
also handed to the broker as a countdown, purely to be on time.

A worker does this in batches (``deliver_batch``): one statement claims the message's
delivery and other due ones, each with its own lease and attempt number; their POSTs go
out side by side; one statement records every success. Each member meets the rules above
exactly as a lone delivery would.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ievents.crypto import decrypt

from . import http
from .models import Delivery, DeliveryAttempt, OutboxEvent, WebhookEndpoint
from .signing import sign_headers, signing_secrets

log = logging.getLogger(__name__)

TEST_EVENT_TYPE = "webhook_endpoint.test"
USER_AGENT = "iEvents-Webhooks/1.0"
# Stored response bodies and error texts are capped: the receiver's text is data, not ours.
STORED_RESPONSE_CHARS = 2000
JITTER = 0.1  # ±10% on every wait, so failing endpoints' retries don't arrive in lockstep
# Waits up to this long are also given to the broker as a countdown (to be on time); the
# database stays the truth, and anything longer waits for the sweep alone.
BROKER_COUNTDOWN_MAX = 60
# A Retry-After longer than this is treated as this: we still want to try within the day.
RETRY_AFTER_MAX = 6 * 3600
LOST_ATTEMPT_ERROR = "No result: the worker stopped during this attempt (lease expired); sent again."


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
class Outcome:
    delivery_id: int
    status: str
    attempt: int | None = None
    status_code: int | None = None
    error: str = ""


# --- What is due -------------------------------------------------------------------------
def due(now: datetime | None = None):
    """Pending deliveries whose time has come and that no live worker holds."""
    now = now or timezone.now()
    return Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    )


def sweep(*, limit: int = 1000, enqueue=None) -> int:
    """Enqueue deliveries overdue by more than one sweep interval; return how many.

    Fresh ones are left alone: their on-commit task or countdown is on its way, and the
    claim makes a duplicate harmless anyway — this only keeps duplicates rare.
    """
    if enqueue is None:
        from .tasks import enqueue_delivery as enqueue
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_SWEEP_SECONDS)
    ids = list(due().filter(next_attempt_at__lte=cutoff).order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    # Leases that expired mean a worker died mid-send; they are due now, whatever the cutoff.
    seen = set(ids)
    ids += [pk for pk in due().filter(lease_until__isnull=False).values_list("pk", flat=True)[:limit] if pk not in seen]
    for position, pk in enumerate(ids):
        if enqueue(pk) is False:
            # The broker is down: every further try would wait for its timeout again. The
            # rows stay due; the next sweep tries again.
            log.warning("sweep: broker unavailable, %d due deliveries wait for the next sweep", len(ids) - position)
            return position
    if ids:
        log.info("sweep enqueued %d due deliveries", len(ids))
    return len(ids)


# --- Claim, send, record -----------------------------------------------------------------
# The claim and a success's record are the hot path (hundreds per second per worker). On
# PostgreSQL a task claims its delivery and up to BATCH_SIZE - 1 other due ones in one
# statement, sends them side by side, and records every success in one more statement:
# two statements per batch instead of two per delivery. Failures are rare and take the
# careful path, one at a time, under the row lock.
BATCH_SIZE = 16
# Threads that send the batches' POSTs, per process. A worker sizes them to its own
# ``--concurrency`` at start (``ievents.celery``), so it keeps as many POSTs in flight as
# it has threads, as when each thread sent one delivery. They only sign and POST: no
# database connection each.
SENDER_THREADS = 16

CLAIM_SQL = """
WITH named AS (
    -- The delivery the message is about, when it is due and free...
    SELECT id, endpoint_id, lease_until AS previous_lease FROM webhooks_delivery
     WHERE id = %(id)s AND status = 'pending' AND next_attempt_at <= %(now)s
       AND (lease_until IS NULL OR lease_until <= %(now)s)
       FOR UPDATE SKIP LOCKED
), more AS (
    -- ...and, to fill the batch, the longest-due others nobody holds.
    SELECT id, endpoint_id, lease_until AS previous_lease FROM webhooks_delivery
     WHERE id <> %(id)s AND status = 'pending' AND next_attempt_at <= %(now)s
       AND (lease_until IS NULL OR lease_until <= %(now)s)
     ORDER BY next_attempt_at, id LIMIT %(others)s
       FOR UPDATE SKIP LOCKED
), due AS (
    SELECT * FROM named UNION ALL SELECT * FROM more
), claimed AS (
    UPDATE webhooks_delivery AS d
       SET attempts_count = d.attempts_count + 1, lease_until = %(lease_until)s, updated_at = %(now)s,
           target_url = COALESCE(now_at.url, d.target_url)
      FROM due LEFT JOIN webhooks_webhookendpoint AS now_at ON now_at.id = due.endpoint_id
     WHERE d.id = due.id
 RETURNING d.id, d.attempts_count, due.previous_lease, d.target_url, d.endpoint_id, d.event_id
), lost AS (
    -- A previous claim that never reported back: its worker died. Say so in the history.
    INSERT INTO webhooks_deliveryattempt (delivery_id, number, started_at, duration_ms, status_code, response_body, error)
    SELECT id, attempts_count - 1, %(now)s, 0, NULL, '', %(lost_error)s FROM claimed WHERE previous_lease IS NOT NULL
)
SELECT c.id, c.attempts_count, c.target_url, c.endpoint_id,
       e.public_id, e.type, e.payload::text, o.signing_secret,
       ep.enabled, ep.disabled_reason, ep.secret, ep.previous_secret, ep.previous_secret_expires_at, ep.failing_since
  FROM claimed c
  JOIN webhooks_outboxevent e ON e.id = c.event_id
  JOIN ievents_organization o ON o.id = e.organization_id
  LEFT JOIN webhooks_webhookendpoint ep ON ep.id = c.endpoint_id
 ORDER BY c.id = %(id)s DESC, c.id
"""


@dataclass(frozen=True)
class _EndpointAsClaimed:
    """What a claim needs of its endpoint, as the claim read it. (An unsaved
    ``WebhookEndpoint`` would do, but building one generates a public id and a signing
    secret, only to overwrite them: for every delivery.)"""

    enabled: bool
    disabled_reason: str
    secret: str
    previous_secret: str
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None


@dataclass(frozen=True)
class _Claimed:
    """A claimed row and what sending it needs, however it was read."""

    delivery_id: int
    number: int
    url: str
    endpoint_id: int | None
    event_id: str
    event_type: str
    body: bytes
    organization_secret: str
    endpoint: WebhookEndpoint | _EndpointAsClaimed | None  # its secrets and state as claimed


def claim(delivery_id: int, *, even_if_disabled: bool = False) -> Claim | None:
    """Take the delivery for one attempt, or ``None`` if it is not ours to send now.

    Claiming is atomic: the row is due, pending and not leased, and it leaves with the
    next attempt number and a lease (``SKIP LOCKED``: a row another worker is claiming
    at this instant is simply not ours). An endpoint's delivery goes to the endpoint's URL
    as it is now, so fixing a wrong URL also fixes the retries already scheduled."""
    held = claim_batch(delivery_id, others=0, even_if_disabled=even_if_disabled)
    return held[0] if held else None


def claim_batch(delivery_id: int, *, others: int | None = None, even_if_disabled: bool = False) -> list[Claim]:
    """Claim ``delivery_id`` if it is due and free, and up to ``others`` more due ones
    (``BATCH_SIZE - 1`` when not given).

    The named delivery comes first when it was claimed. Every claim follows the rules of
    ``claim``; one statement takes them all on PostgreSQL (elsewhere, batches are of one:
    SQLite serialises writers anyway)."""
    now = timezone.now()
    # A lease shorter than the POST's deadline would let a second worker send while the
    # first is still waiting for the answer: whatever the setting, it outlasts the timeout.
    lease = max(settings.WEBHOOK_LEASE_SECONDS, settings.WEBHOOK_TIMEOUT_SECONDS + 1)
    # The last moment a POST of this batch may start and still end (deadline included)
    # within the lease; taken before the claim, so it errs on the early side.
    send_by = time.monotonic() + lease - settings.WEBHOOK_TIMEOUT_SECONDS
    lease_until = now + timedelta(seconds=lease)
    if connection.vendor == "postgresql":
        taken = _claim_postgresql(delivery_id, BATCH_SIZE - 1 if others is None else others, now, lease_until)
    else:
        taken = _claim_portable(delivery_id, now, lease_until)
    claims = []
    for row in taken:
        endpoint = row.endpoint
        if endpoint is not None and not endpoint.enabled and not (even_if_disabled and row.delivery_id == delivery_id):
            # No next attempt (as for every failed delivery): a failed row that kept its due
            # time would stay in the range every batch scans for due deliveries.
            Delivery.objects.filter(pk=row.delivery_id).update(
                status=Delivery.Status.FAILED, lease_until=None, next_attempt_at=None, attempts_count=row.number - 1,
                updated_at=now,
                last_error=f"Not sent: the endpoint is disabled ({endpoint.disabled_reason or 'by hand'})."[:500],
            )
            continue
        secrets = signing_secrets(endpoint) if endpoint is not None else [row.organization_secret]
        claims.append(Claim(
            delivery_id=row.delivery_id,
            number=row.number,
            url=row.url,
            event_id=row.event_id,
            body=row.body,
            secrets=tuple(secrets),
            single_shot=row.event_type == TEST_EVENT_TYPE,
            endpoint_id=row.endpoint_id,
            endpoint_failing=bool(endpoint and endpoint.failing_since),
            send_by=send_by,
        ))
    return claims


@contextmanager
def _claim_cursor():
    """A cursor in a transaction whose commit does not wait for the disk, for claims.

    A claim that a PostgreSQL crash loses is harmless: the delivery is simply due again
    and claimed anew (no attempt was recorded under it; one that was sent is sent again,
    which at-least-once delivery allows). Not waiting for the WAL flush keeps it off the
    path from commit to the receiver. Records of successes, by contrast, are committed
    durably (``_record_successes``): a lost one would make us send again what the
    receiver already has, and with batches their flush is shared by the whole batch."""
    if connection.in_atomic_block:  # inside a caller's transaction: never change its durability
        with connection.cursor() as cursor:
            yield cursor
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield cursor


def _claim_postgresql(delivery_id: int, others: int, now: datetime, lease_until: datetime) -> list[_Claimed]:
    with _claim_cursor() as cursor:
        cursor.execute(CLAIM_SQL, {"id": delivery_id, "others": others, "now": now, "lease_until": lease_until,
                                   "lost_error": LOST_ATTEMPT_ERROR})
        rows = cursor.fetchall()
    claimed = []
    for (pk, number, url, endpoint_id, event_id, event_type, payload_text, org_secret,
         enabled, disabled_reason, secret, previous_secret, previous_expires, failing_since) in rows:
        endpoint = None
        if endpoint_id is not None:
            endpoint = _EndpointAsClaimed(
                enabled=enabled, disabled_reason=disabled_reason, secret=decrypt(secret),
                previous_secret=decrypt(previous_secret) if previous_secret else "",
                previous_secret_expires_at=previous_expires, failing_since=failing_since,
            )
        # The organization's secret signs only what goes to a session's own webhook_url.
        claimed.append(_Claimed(pk, number, url, endpoint_id, event_id, event_type, payload_text.encode(),
                                decrypt(org_secret) if endpoint_id is None else "", endpoint))
    return claimed


def _claim_portable(delivery_id: int, now: datetime, lease_until: datetime) -> list[_Claimed]:
    """The same claim through the ORM, for SQLite (whose writers are serialised anyway)."""
    with transaction.atomic():
        delivery = (
            due(now).select_for_update(skip_locked=True, of=("self",))
            .select_related("event", "endpoint", "event__organization")
            .filter(pk=delivery_id).first()
        )
        if delivery is None:
            return []
        previous_lease = delivery.lease_until
        delivery.attempts_count += 1
        delivery.lease_until = lease_until
        if delivery.endpoint is not None:
            delivery.target_url = delivery.endpoint.url
        delivery.save(update_fields=["attempts_count", "lease_until", "target_url", "updated_at"])
        if previous_lease is not None:
            DeliveryAttempt.objects.create(delivery_id=delivery.pk, number=delivery.attempts_count - 1,
                                           started_at=now, error=LOST_ATTEMPT_ERROR)
    event = delivery.event
    return [_Claimed(delivery.pk, delivery.attempts_count, delivery.target_url, delivery.endpoint_id,
                     event.public_id, event.type, event_body(event), event.organization.signing_secret,
                     delivery.endpoint)]


def event_body(event: OutboxEvent) -> bytes:
    return json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False).encode()


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
    pool = _sender_pool()
    return [future.result() for future in [pool.submit(_send_in_time, claim) for claim in claims]]


_senders: ThreadPoolExecutor | None = None
_senders_lock = threading.Lock()


def _sender_pool() -> ThreadPoolExecutor:
    global _senders
    with _senders_lock:
        if _senders is None:
            _senders = ThreadPoolExecutor(max_workers=SENDER_THREADS, thread_name_prefix="webhook-send")
        return _senders


def size_sender_pool(threads: int) -> None:
    """Send at most ``threads`` POSTs at once in this process (before the first batch)."""
    global SENDER_THREADS
    SENDER_THREADS = max(1, threads)


def _forget_sender_pool() -> None:
    """A forked child (Celery prefork) must not inherit a pool whose threads did not survive the fork."""
    global _senders
    _senders = None


os.register_at_fork(after_in_child=_forget_sender_pool)


class _InThisProcess:
    """Deliveries this process is sending right now, or saw succeed moments ago.

    A message about one of them has nothing left to do (a batch took its delivery along,
    or it is a duplicate), so the task returns without a query. Only successes are
    remembered once sent (a failure may be retried by hand or scheduled), and only for
    one sweep interval: after that the database has the last word again, so a success
    this process saw but the database no longer holds (a backup restored, a record lost
    some other way) is sent again when the sweep's message comes, not skipped forever.
    """

    REMEMBERED = 20_000

    def __init__(self):
        self._lock = threading.Lock()
        self._sending: set[int] = set()
        self._succeeded: OrderedDict[int, float] = OrderedDict()  # delivery id -> when (monotonic), oldest first

    def knows(self, delivery_id: int) -> bool:
        with self._lock:
            if delivery_id in self._sending:
                return True
            when = self._succeeded.get(delivery_id)
            return when is not None and time.monotonic() - when < settings.WEBHOOK_SWEEP_SECONDS

    def sending(self, delivery_ids) -> None:
        with self._lock:
            self._sending.update(delivery_ids)

    def done(self, delivery_ids, succeeded_ids=()) -> None:
        now = time.monotonic()
        with self._lock:
            self._sending.difference_update(delivery_ids)
            for pk in succeeded_ids:
                self._succeeded[pk] = now
                self._succeeded.move_to_end(pk)
            while self._succeeded and (len(self._succeeded) > self.REMEMBERED
                                       or now - next(iter(self._succeeded.values())) >= settings.WEBHOOK_SWEEP_SECONDS):
                self._succeeded.popitem(last=False)


in_this_process = _InThisProcess()


def deliver(delivery_id: int, *, even_if_disabled: bool = False) -> Outcome:
    """One attempt at ``delivery_id`` alone, if it is due and free: a retry by hand, a test
    event, ``sweep_deliveries --inline``. (A worker's task takes others along:
    ``deliver_batch``.)"""
    held = claim(delivery_id, even_if_disabled=even_if_disabled)
    if held is None:
        status = Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first() or "missing"
        return Outcome(delivery_id, status)
    return record_all(send_all([held]))[0]


def deliver_batch(delivery_id: int, *, size: int | None = None) -> list[Outcome]:
    """A worker's job for one message: ``delivery_id`` if it is due and free, and up to
    ``size - 1`` other due deliveries with it, sent side by side and recorded together.

    Nothing is done (not even a query) for a delivery this process is already sending or
    has seen succeed. Returns the outcomes of the deliveries attempted."""
    if in_this_process.knows(delivery_id):
        return []
    held = claim_batch(delivery_id, others=(size or BATCH_SIZE) - 1)
    ids = [c.delivery_id for c in held]
    in_this_process.sending(ids)
    outcomes: list[Outcome] = []
    try:
        outcomes = record_all(send_all(held))
    finally:
        in_this_process.done(ids, [o.delivery_id for o in outcomes if o.status == Delivery.Status.SUCCEEDED])
    return outcomes


def record_all(sent: list[Sent]) -> list[Outcome]:
    """Record a batch's attempts: every success in one statement, each failure on its own
    (under the row lock, as ``record`` does), and hand back what was never started."""
    successes = [s for s in sent if s.result is not None and acknowledged(s.result)]
    never_started = [s.claim for s in sent if s.result is None]
    outcomes = {o.delivery_id: o for o in _record_successes(successes)}
    for s in sent:
        if s.result is not None and s.claim.delivery_id not in outcomes:
            outcomes[s.claim.delivery_id] = record(s.claim, s.result, s.started_at)
    if never_started:
        outcomes.update((o.delivery_id, o) for o in give_back(never_started))
    return [outcomes[s.claim.delivery_id] for s in sent]


def give_back(claims: list[Claim]) -> list[Outcome]:
    """Undo claims whose POST was never started: no attempt happened, so the attempt
    number is returned with the lease, and the delivery is enqueued again. A claim another
    worker has since taken over (its lease ran out) is left alone."""
    from .tasks import enqueue_delivery

    with transaction.atomic():
        for claim in claims:
            Delivery.objects.filter(pk=claim.delivery_id, status=Delivery.Status.PENDING,
                                    attempts_count=claim.number).update(
                attempts_count=claim.number - 1, lease_until=None, updated_at=timezone.now())
            transaction.on_commit(lambda pk=claim.delivery_id: enqueue_delivery(pk), robust=True)
    log.warning("%d claimed deliveries were given back unsent: their lease could no longer cover a POST", len(claims))
    return [Outcome(claim.delivery_id, Delivery.Status.PENDING) for claim in claims]


def record(claim: Claim, result: http.HttpResult, started_at: datetime) -> Outcome:
    """Write the attempt and decide what happens next."""
    if acknowledged(result):
        return _record_successes([Sent(claim, result, started_at)])[0]
    error = _describe_error(result)
    attempt = DeliveryAttempt(
        delivery_id=claim.delivery_id, number=claim.number, started_at=started_at, duration_ms=result.elapsed_ms,
        status_code=result.status_code, error=error[:500],
        response_body=stored_text(result.body),
    )
    after_commit = []
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=claim.delivery_id)
        attempt.save()
        # Only the current claim may schedule or dead-letter: a worker whose lease ran out
        # (and whose delivery another worker has taken over) only adds to the history.
        if delivery.status == Delivery.Status.PENDING and delivery.attempts_count == claim.number:
            after_commit = _after_failure(delivery, claim, result, error)
    for callback in after_commit:
        transaction.on_commit(callback, robust=True)
    return Outcome(claim.delivery_id, delivery.status, claim.number, result.status_code, error)


RECORD_SUCCESSES_SQL = """
WITH attempts AS (
    INSERT INTO webhooks_deliveryattempt (delivery_id, number, started_at, duration_ms, status_code, response_body, error)
    SELECT id, number, started_at, duration_ms, status_code, response_body, ''
      FROM unnest(%(ids)s::bigint[], %(numbers)s::integer[], %(started_at)s::timestamptz[],
                  %(durations)s::integer[], %(status_codes)s::integer[], %(response_bodies)s::text[])
           AS sent(id, number, started_at, duration_ms, status_code, response_body)
)
UPDATE webhooks_delivery AS d
   SET status = 'succeeded', lease_until = NULL, next_attempt_at = NULL, last_status_code = sent.status_code,
       last_error = '', updated_at = %(now)s
  FROM unnest(%(ids)s::bigint[], %(status_codes)s::integer[]) AS sent(id, status_code)
 WHERE d.id = sent.id AND d.status <> 'succeeded'
"""


def _record_successes(sent: list[Sent]) -> list[Outcome]:
    """A success is a success even from a worker whose lease ran out: the receiver has it.
    So nothing needs re-reading or checking, only writing (on PostgreSQL, one statement
    for the whole batch: every attempt row, every status)."""
    if not sent:
        return []
    now = timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # one statement: its own transaction, durable
            cursor.execute(RECORD_SUCCESSES_SQL, {
                "ids": [s.claim.delivery_id for s in sent],
                "numbers": [s.claim.number for s in sent],
                "started_at": [s.started_at for s in sent],
                "durations": [s.result.elapsed_ms for s in sent],
                "status_codes": [s.result.status_code for s in sent],
                "response_bodies": [stored_text(s.result.body) for s in sent],
                "now": now,
            })
    else:
        with transaction.atomic():
            for s in sent:
                DeliveryAttempt.objects.create(
                    delivery_id=s.claim.delivery_id, number=s.claim.number, started_at=s.started_at,
                    duration_ms=s.result.elapsed_ms, status_code=s.result.status_code,
                    response_body=stored_text(s.result.body))
                Delivery.objects.filter(pk=s.claim.delivery_id).exclude(status=Delivery.Status.SUCCEEDED).update(
                    status=Delivery.Status.SUCCEEDED, lease_until=None, next_attempt_at=None,
                    last_status_code=s.result.status_code, last_error="", updated_at=now,
                )
    recovered = {s.claim.endpoint_id for s in sent if s.claim.endpoint_failing}
    if recovered:
        WebhookEndpoint.objects.filter(pk__in=recovered, failing_since__isnull=False).update(failing_since=None)
    return [Outcome(s.claim.delivery_id, Delivery.Status.SUCCEEDED, s.claim.number, s.result.status_code, "")
            for s in sent]


def _after_failure(delivery: Delivery, claim: Claim, result: http.HttpResult, error: str) -> list:
    """Schedule the next attempt or dead-letter; look after the endpoint's health."""
    callbacks = []
    endpoint = delivery.endpoint
    gone = result.status_code == 410
    if endpoint is not None:
        callbacks += endpoint_failed(endpoint, gone=gone)
    wait = next_wait(claim.number, result)
    if gone or claim.single_shot or wait is None:
        _finish(delivery, Delivery.Status.FAILED, result, error)
        return callbacks
    delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
    delivery.lease_until = None
    delivery.last_status_code = result.status_code
    delivery.last_error = error[:500]
    delivery.save(update_fields=["next_attempt_at", "lease_until", "last_status_code", "last_error", "updated_at"])
    if wait <= BROKER_COUNTDOWN_MAX:
        from .tasks import enqueue_delivery

        callbacks.append(lambda pk=delivery.pk, wait=wait: enqueue_delivery(pk, countdown=wait))
    return callbacks


def _finish(delivery: Delivery, status: str, result: http.HttpResult, error: str) -> None:
    delivery.status = status
    delivery.lease_until = None
    delivery.next_attempt_at = None
    delivery.last_status_code = result.status_code
    delivery.last_error = error[:500]
    delivery.save(update_fields=["status", "lease_until", "next_attempt_at", "last_status_code", "last_error",
                                 "updated_at"])


def stored_text(body: bytes) -> str:
    """A receiver's answer as we keep it: capped, decoded, without NULs (PostgreSQL text
    cannot hold them, and a hostile answer must not make the attempt unrecordable)."""
    return body[:STORED_RESPONSE_CHARS * 4].decode("utf-8", "replace")[:STORED_RESPONSE_CHARS].replace("\x00", "\ufffd")


def acknowledged(result: http.HttpResult) -> bool:
    """2xx means the receiver has the event, even if its reply was longer than we keep."""
    status_2xx = result.status_code is not None and 200 <= result.status_code < 300
    return result.ok or (status_2xx and result.error_kind == "too_large")


def _describe_error(result: http.HttpResult) -> str:
    if acknowledged(result):
        return ""
    if result.error:
        return result.error
    if not result.ok:
        return f"HTTP {result.status_code}"
    return ""


# --- The schedule --------------------------------------------------------------------------
def next_wait(attempt: int, result: http.HttpResult | None = None) -> float | None:
    """Seconds before attempt ``attempt + 1``, or ``None`` when ``attempt`` was the last.

    ``WEBHOOK_RETRY_SCHEDULE`` lists the waits after attempts 1, 2, …; jitter spreads them
    by ±10%. A 429 or 503 with ``Retry-After`` is honoured when it asks for longer.
    """
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempt > len(schedule):
        return None
    wait = schedule[attempt - 1] * random.uniform(1 - JITTER, 1 + JITTER)
    if result is not None and result.status_code in (429, 503):
        asked = retry_after_seconds(result.headers)
        if asked is not None:
            wait = max(wait, min(asked, RETRY_AFTER_MAX))
    return wait


def retry_after_seconds(headers: dict[str, str], now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date), else ``None``."""
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
    return max((when - (now or timezone.now())).total_seconds(), 0.0)


# --- Endpoint health -----------------------------------------------------------------------
def endpoint_failed(endpoint: WebhookEndpoint, *, gone: bool = False) -> list:
    """Note a failure; disable the endpoint when it is gone or has failed for too long.

    Returns the callbacks to run on commit (the organizer's email)."""
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
    endpoint.refresh_from_db(fields=["failing_since", "enabled", "disabled_reason"])
    if not endpoint.enabled:
        return []
    if gone:
        reason = f"The endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC."
    elif now - endpoint.failing_since >= timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS):
        reason = f"Every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC."
    else:
        return []
    return disable_endpoint(endpoint, reason)


def disable_endpoint(endpoint: WebhookEndpoint, reason: str, *, notify: bool = True) -> list:
    endpoint.enabled = False
    endpoint.disabled_reason = reason[:300]
    endpoint.save(update_fields=["enabled", "disabled_reason"])
    log.warning("webhook endpoint %s disabled: %s", endpoint.public_id, reason)
    email = endpoint.organization.notification_email if notify else ""
    if not email:
        return []
    return [lambda: send_mail(
        "A webhook endpoint was disabled",
        f"We stopped sending notifications to {endpoint.url} ({endpoint.public_id}).\n\n"
        f"Why: {reason}\n\nFix the receiver, then enable the endpoint again in the admin or with\n"
        f"PATCH /v1/webhook_endpoints/{endpoint.public_id} {{\"enabled\": true}}. Failed deliveries\n"
        f"can be retried from the admin or with POST /v1/deliveries/<id>/retry.",
        settings.DEFAULT_FROM_EMAIL, [email],
    )]


def enable_endpoint(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.enabled = True
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    endpoint.save(update_fields=["enabled", "disabled_reason", "failing_since"])
    return endpoint


# --- By hand: retry, test ------------------------------------------------------------------
def retry_now(delivery_id: int) -> Delivery:
    """Make a pending or failed delivery due at once (the dead letter's way back).

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
        from .tasks import enqueue_delivery

        transaction.on_commit(lambda: enqueue_delivery(delivery_id), robust=True)
    return delivery


def send_test_event(endpoint: WebhookEndpoint) -> tuple[Delivery, Outcome]:
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
    outcome = deliver(delivery.pk, even_if_disabled=True)
    delivery.refresh_from_db()
    return delivery, outcome
