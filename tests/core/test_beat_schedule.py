"""Every task celery beat runs is one a worker knows by that name."""

from django.conf import settings

from ievents.celery import app


def test_every_scheduled_task_is_registered():
    app.loader.import_default_modules()  # what a worker does at start: each app's tasks module
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled - set(app.tasks) == set()
