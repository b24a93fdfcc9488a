"""Checkout timers and the ticket email. Thin wrappers: the rules are in ``checkout.services``."""

from celery import shared_task

from . import services


@shared_task
def release_expired_holds() -> int:
    return services.release_expired_holds()


@shared_task(name="checkout.tasks.sweep_confirmations", ignore_result=True)
def sweep_confirmations() -> int:
    return services.sweep_confirmations()
