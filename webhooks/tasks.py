"""Celery tasks for outbound delivery. Thin: the rules are in ``webhooks.delivery``.

Tasks carry only a delivery's primary key; the database says whether it is still due,
so a task delivered twice, late, or after a manual retry does no harm. A task also takes
along other due deliveries (one claim, one record for the batch), so most messages find
their delivery already sent by this process and end without a query.
"""

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(name="webhooks.tasks.deliver", ignore_result=True)
def deliver(delivery_id: int) -> int:
    """Deliver ``delivery_id`` if it is still due, with other due deliveries in the same
    batch (``delivery.deliver_batch``); returns how many were attempted."""
    from . import delivery

    return len(delivery.deliver_batch(delivery_id))


@shared_task(name="webhooks.tasks.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> int:
    from . import delivery

    return delivery.sweep()


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
