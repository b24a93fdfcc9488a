"""The Celery app. Tasks are thin wrappers around service functions."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, celeryd_after_setup, task_postrun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ievents.settings")

app = Celery("ievents")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def drop_broken_database_connections(**_):
    """Close this thread's database connections that failed and are no longer usable.

    Celery's Django fixup keeps connections across tasks (``CELERY_DB_REUSE_MAX``) without
    Django's per-request checks, so after a database restart every later task in this
    thread failed on the dead connection. Django's own end-of-request check does it: a
    connection that saw an error is pinged now, one older than ``CONN_MAX_AGE`` is reopened,
    and (``CONN_HEALTH_CHECKS``) the next task that queries pings first, as a web request
    would: one ``SELECT 1`` per such task (a delivery batch's third transaction, beside its
    claim and its record), so a connection that died while idle never fails a task.
    """
    close_old_connections()


@celeryd_after_setup.connect
def size_the_delivery_senders(instance=None, **_):
    """A delivery task sends its batch on sender threads (``webhooks.delivery``): as many as
    this worker has, so ``--concurrency 16`` still means 16 POSTs in flight at most."""
    from webhooks import senders  # not at the top: this module loads before Django's apps (ievents/__init__.py)

    if instance is not None and instance.concurrency:
        senders.size_pool(instance.concurrency)


@after_setup_logger.connect
@after_setup_task_logger.connect
def mask_secrets_in_worker_logs(logger=None, **_):
    """A worker logs through handlers of Celery's own, not settings.LOGGING's: they get the
    same filter, so a provider URL with its key in a message is masked there too."""
    from .log_redaction import add_filter_once

    for handler in logger.handlers if logger is not None else ():
        add_filter_once(handler)
