"""Periodic payment jobs. Thin: the rule is in ``payments.reminders``."""

from celery import shared_task

from . import reminders


@shared_task(name="payments.tasks.remind_pending_payments", ignore_result=True)
def remind_pending_payments() -> int:
    return reminders.remind_pending_payments()
