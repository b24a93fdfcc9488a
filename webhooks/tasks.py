"""Celery tasks for outbound delivery, and every place a delivery is handed to the broker.

Thin: ``webhooks.delivery`` decides and writes; this module enqueues. Tasks carry only a
delivery's primary key; the database says whether it is still due, so a task delivered
twice, late, or after a manual retry does no harm. A task also takes along other due
deliveries (one claim, one record for the batch), so most messages find their delivery
already sent by this process and end without a query.
"""

import logging

from celery import shared_task
from django.db import transaction

from . import delivery

log = logging.getLogger(__name__)

# Waits up to this long are also given to the broker as a countdown (to be on time); the
# database stays the truth, and anything longer waits for the sweep alone.
BROKER_COUNTDOWN_MAX = 60


@shared_task(name="webhooks.tasks.deliver", ignore_result=True)
def deliver(delivery_id: int) -> int:
    """Deliver ``delivery_id`` if it is still due, with other due deliveries in the same
    batch (``delivery.deliver_batch``); returns how many were attempted."""
    reports = delivery.deliver_batch(delivery_id)
    for report in reports:
        if report.retry_in is not None and report.retry_in <= BROKER_COUNTDOWN_MAX:
            enqueue_delivery(report.delivery_id, countdown=report.retry_in or None)
    return len(reports)


@shared_task(name="webhooks.tasks.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> int:
    """Enqueue every overdue delivery (lost broker messages, dead workers); return how many."""
    return enqueue_all(delivery.overdue())


def enqueue_all(delivery_ids: list[int]) -> int:
    """Enqueue each delivery, stopping at the first the broker refuses: every further try
    would wait for its timeout again. The rest stay due for the next sweep."""
    for position, pk in enumerate(delivery_ids):
        if not enqueue_delivery(pk):
            log.warning("sweep: broker unavailable, %d due deliveries wait for the next sweep",
                        len(delivery_ids) - position)
            return position
    if delivery_ids:
        log.info("sweep enqueued %d due deliveries", len(delivery_ids))
    return len(delivery_ids)


def retry_delivery(delivery_id: int):
    """Retry by hand (``delivery.retry_now``), handed to a worker once that commits."""
    retried = delivery.retry_now(delivery_id)
    transaction.on_commit(lambda: enqueue_delivery(delivery_id), robust=True)
    return retried


def enqueue_delivery(delivery_id: int, countdown: float | None = None) -> bool:
    """Hand a delivery to the broker; False if it could not. A broker that is down only
    delays it: the sweep finds every due delivery in the database, so the error is logged,
    not raised."""
    try:
        deliver.apply_async((delivery_id,), countdown=countdown)
    except Exception:  # the broker's errors vary by transport; none may undo a commit
        log.exception("could not enqueue delivery %s; the sweep will pick it up", delivery_id)
        return False
    return True
