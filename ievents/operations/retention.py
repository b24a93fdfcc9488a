"""How long each kind of record is kept, and the pass that removes what is older.

Logs grow with every request: a gate call per *Continue*, an inbound row per provider
message, attempts per notification. They are kept for a while (the organizer debugs an
integration, support answers "did you get my payment?"), then deleted. Orders, payments,
tickets and transitions are never deleted: they are the organizer's accounts. Orders lose
the person instead (``ievents.operations.erasure``): abandoned ones after PERSONAL_DATA_ABANDONED_DAYS,
every one PERSONAL_DATA_AFTER_EVENT_DAYS after its event.

The pass works in batches of RETENTION_BATCH_SIZE rows picked by primary key, each deleted
(or anonymised) in its own short transaction: it never holds many locks or one lock for
long, and the rows it touches are ones no checkout reads or writes any more, so checkouts
never wait on it (tests/retention/test_retention_under_load.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from checkout.models import CheckoutSession, PromoCodeFailure, Status
from ievents.models import IdempotencyRecord
from webhooks.models import Delivery, DeliveryAttempt, GateCall, InboundWebhook, OutboxEvent

from . import erasure

log = logging.getLogger(__name__)

# Orders nobody paid for and nobody will: their person is kept only a short while.
ABANDONED = [Status.EXPIRED, Status.CANCELED]


@dataclass(frozen=True)
class Rule:
    """One kind of record past its time: ``due(now)`` lists it oldest first; ``apply`` runs
    on one batch of primary keys, in its own transaction, and returns the rows it changed."""

    name: str
    days_setting: str
    due: Callable[[datetime], QuerySet]
    apply: Callable[[list[int]], int]

    @property
    def days(self) -> int:
        return getattr(settings, self.days_setting)


def _older_than(days_setting: str, now: datetime) -> datetime:
    return now - timedelta(days=getattr(settings, days_setting))


def _deleting(model) -> Callable[[list[int]], int]:
    def delete(ids: list[int]) -> int:
        deleted, _ = model.objects.filter(pk__in=ids).delete()
        return deleted
    return delete


def _deleted_when_old(name: str, days_setting: str, model, field: str) -> Rule:
    """A log whose rows are deleted once their ``field`` is ``days_setting`` days old."""
    def due(now: datetime) -> QuerySet:
        return model.objects.filter(**{f"{field}__lt": _older_than(days_setting, now)}).order_by(field)
    return Rule(name, days_setting, due, _deleting(model))


def outbox_events_due(now: datetime) -> QuerySet:
    """Events whose every delivery is over (succeeded, or failed for good): one still
    pending is kept whatever its age, so nothing the sweep would send disappears."""
    pending = Delivery.objects.filter(event=OuterRef("pk"), status=Delivery.Status.PENDING)
    cutoff = _older_than("RETENTION_OUTBOX_EVENT_DAYS", now)
    return OutboxEvent.objects.filter(created_at__lt=cutoff).filter(~Exists(pending)).order_by("created_at")


def abandoned_orders_due(now: datetime) -> QuerySet:
    cutoff = _older_than("PERSONAL_DATA_ABANDONED_DAYS", now)
    return (CheckoutSession.objects.filter(personal_data_erased_at__isnull=True, updated_at__lt=cutoff,
                                           status__in=ABANDONED, amount_paid=0)
            .order_by("updated_at"))


def orders_after_event_due(now: datetime) -> QuerySet:
    cutoff = _older_than("PERSONAL_DATA_AFTER_EVENT_DAYS", now)
    return CheckoutSession.objects.filter(personal_data_erased_at__isnull=True, event__starts_at__lt=cutoff)


def _anonymise_abandoned(ids: list[int]) -> int:
    # Re-checked under the rows' locks: a late payment may have completed one meanwhile.
    return erasure.erase_orders(ids, still=lambda orders: orders.filter(status__in=ABANDONED, amount_paid=0))


def _anonymise_after_event(ids: list[int]) -> int:
    return erasure.erase_orders(ids)


# In this order: attempts before the events that own them, so deleting an event finds few.
RULES = [
    _deleted_when_old("gate calls", "RETENTION_GATE_CALL_DAYS", GateCall, "created_at"),
    _deleted_when_old("inbound provider messages", "RETENTION_INBOUND_WEBHOOK_DAYS", InboundWebhook, "received_at"),
    _deleted_when_old("delivery attempts", "RETENTION_DELIVERY_ATTEMPT_DAYS", DeliveryAttempt, "started_at"),
    Rule("delivered outbox events", "RETENTION_OUTBOX_EVENT_DAYS", outbox_events_due, _deleting(OutboxEvent)),
    _deleted_when_old("promo codes that did not work", "RETENTION_PROMO_CODE_FAILURE_DAYS", PromoCodeFailure, "at"),
    # Idempotency-Key answers: counted from the end of their replay window (IDEMPOTENCY_KEY_TTL_SECONDS).
    _deleted_when_old("Idempotency-Key answers past their window", "RETENTION_IDEMPOTENCY_RECORD_DAYS",
                      IdempotencyRecord, "expires_at"),
    Rule("abandoned orders' personal data", "PERSONAL_DATA_ABANDONED_DAYS", abandoned_orders_due,
         _anonymise_abandoned),
    Rule("past events' orders' personal data", "PERSONAL_DATA_AFTER_EVENT_DAYS", orders_after_event_due,
         _anonymise_after_event),
]


def run_batch(rule: Rule, ids: list[int]) -> int:
    """One batch of ``rule``, in its own transaction; the rows changed (deletions count the
    rows their cascade removed too)."""
    with transaction.atomic():
        return rule.apply(ids)


def prune(*, now: datetime | None = None, dry_run: bool = False, batch_size: int | None = None,
          rules: list[Rule] | None = None) -> dict[str, int]:
    """Apply every rule until nothing is due; return ``{rule name: rows}``. With
    ``dry_run`` nothing changes and the counts are what would be handled."""
    now = now or timezone.now()
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    report = {}
    for rule in rules or RULES:
        if dry_run:
            report[rule.name] = rule.due(now).count()
            log.info("retention (dry run): %d %s older than %d days", report[rule.name], rule.name, rule.days)
            continue
        report[rule.name] = _prune_rule(rule, now, batch_size)
    return report


def _prune_rule(rule: Rule, now: datetime, batch_size: int) -> int:
    done = batches = 0
    seen_last: list[int] = []
    while True:
        ids = list(rule.due(now).values_list("pk", flat=True)[:batch_size])
        if not ids or ids == seen_last:  # the same rows twice: nothing the rule can do to them
            break
        done += run_batch(rule, ids)
        batches += 1
        seen_last = ids
        if batches % 50 == 0:
            log.info("retention: %s: %d rows so far", rule.name, done)
        if len(ids) < batch_size:
            break
    if done:
        log.info("retention: %s: %d rows in %d batches (older than %d days)", rule.name, done, batches, rule.days)
    return done
