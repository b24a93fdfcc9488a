"""Periodic housekeeping. Thin wrappers: the rules are in ``ievents.retention``."""

from celery import shared_task

from . import retention


@shared_task(name="ievents.tasks.prune_records", ignore_result=True)
def prune_records() -> dict[str, int]:
    return retention.prune()
