"""Checkout timers. Thin wrappers: the rules are in ``checkout.services``."""

from celery import shared_task

from . import services


@shared_task
def release_expired_holds() -> int:
    return services.release_expired_holds()
