"""The Celery app. Tasks are thin wrappers around service functions."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ievents.settings")

app = Celery("ievents")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
