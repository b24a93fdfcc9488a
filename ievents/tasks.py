"""Periodic housekeeping. Thin wrappers: the rules are in ``ievents.operations.retention``."""

from celery import shared_task
from django.core.management import call_command

from .operations import retention


@shared_task(name="ievents.tasks.prune_records", ignore_result=True)
def prune_records() -> dict[str, int]:
    return retention.prune()


@shared_task(name="ievents.tasks.clear_expired_sessions", ignore_result=True)
def clear_expired_sessions() -> None:
    """``manage.py clearsessions``: expired browser sessions (and the drafts they hold) go."""
    call_command("clearsessions")
