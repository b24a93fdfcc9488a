"""What a production environment must have before it starts, as Django system checks.

Registered with ``deploy=True`` and the tag ``ievents``, so they run with Django's own
deployment checks: ``python manage.py check --deploy --fail-level WARNING`` (or only ours,
``… --tag ievents``) where the web and worker processes will run, with their environment.
Each problem is an ``Error`` saying what is wrong and, as its hint, what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, register
from django.core.files.storage import storages
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http.request import validate_host
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

DATABASE_CACHE = "django.core.cache.backends.db.DatabaseCache"
TAG = "ievents"


def production_check(function):
    """Register ``function`` (returning a list of ``Error``) as a deployment check of ours."""
    return register(TAG, deploy=True)(function)


@production_check
def debug_is_off(app_configs=None, **kwargs) -> list[Error]:
    return [Error("DEBUG is on.", hint="Set DEBUG=0.", id="ievents.E001")] if settings.DEBUG else []


@production_check
def secret_key(app_configs=None, **kwargs) -> list[Error]:
    key = settings.SECRET_KEY
    if key == settings.DEV_SECRET_KEY or key.startswith("django-insecure-"):
        return [Error("SECRET_KEY is the development key.", hint="Set 50+ random characters of your own.",
                      id="ievents.E002")]
    if len(key) < 50:
        return [Error(f"SECRET_KEY has {len(key)} characters.", hint="Set 50+ random characters.", id="ievents.E002")]
    return []


@production_check
def encryption_keys(app_configs=None, **kwargs) -> list[Error]:
    if not os.environ.get("FIELD_ENCRYPTION_KEYS", "").strip():
        return [Error("FIELD_ENCRYPTION_KEYS is not set: secrets at rest would use a key derived from SECRET_KEY "
                      "(development only).", hint="Set one or more Fernet keys, comma-separated.", id="ievents.E003")]
    problems = []
    for number, key in enumerate(settings.FIELD_ENCRYPTION_KEYS, start=1):
        try:
            Fernet(key)
        except ValueError:
            problems.append(Error(
                f"FIELD_ENCRYPTION_KEYS: key {number} is not a Fernet key (32 url-safe base64-encoded bytes).",
                hint='Make one with `python -c "from cryptography.fernet import Fernet; '
                     'print(Fernet.generate_key().decode())"`.', id="ievents.E003"))
    return problems


@production_check
def public_base_url(app_configs=None, **kwargs) -> list[Error]:
    url = urlsplit(settings.PUBLIC_BASE_URL)
    problems = []
    if url.scheme != "https":
        problems.append(Error(f"PUBLIC_BASE_URL is {settings.PUBLIC_BASE_URL!r}: attendees, emails and payment "
                              "providers need the site's https:// address.", id="ievents.E004"))
    if not url.hostname or not validate_host(url.hostname, settings.ALLOWED_HOSTS):
        problems.append(Error(f"PUBLIC_BASE_URL's host {url.hostname!r} is not in ALLOWED_HOSTS: its links would "
                              "answer 400.", id="ievents.E004"))
    return problems


@production_check
def static_manifest(app_configs=None, **kwargs) -> list[Error]:
    storage = storages["staticfiles"]
    manifest_name = getattr(storage, "manifest_name", None)
    if manifest_name is None:
        return [Error("Static files are not served from a manifest (STORAGES['staticfiles']): is DEBUG on?",
                      id="ievents.E005")]
    if not Path(storage.path(manifest_name)).is_file():
        return [Error(f"No {storage.path(manifest_name)}: without it every page is a server error.",
                      hint="Run `python manage.py collectstatic --noinput`.", id="ievents.E005")]
    return []


@production_check
def translations_compiled(app_configs=None, **kwargs) -> list[Error]:
    folders = [Path(p) for p in settings.LOCALE_PATHS] + [Path(settings.BASE_DIR) / "locale"]
    problems = []
    for po in sorted({po for folder in folders if folder.is_dir() for po in folder.rglob("*.po")}):
        mo = po.with_suffix(".mo")
        if not mo.is_file() or mo.stat().st_mtime < po.stat().st_mtime:
            problems.append(Error(f"{po} is not compiled.", hint="Run `python manage.py compilemessages`.",
                                  id="ievents.E006"))
    return problems


@production_check
def database_ready(app_configs=None, **kwargs) -> list[Error]:
    """Reachable, migrated, with its cache table: what the first request needs."""
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        where = f"{connection.settings_dict.get('HOST') or 'localhost'}:{connection.settings_dict.get('PORT') or ''}"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Error(f"Cannot reach the database {connection.settings_dict['NAME']} at {where} (DATABASE_URL): "
                      f"{first_line}", hint="Migrations and the cache table are checked once it answers.",
                      id="ievents.E007")]
    problems = []
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        first = plan[0][0]
        problems.append(Error(f"{len(plan)} migration(s) not applied (first: {first.app_label}.{first.name}).",
                              hint="Run `python manage.py migrate`.", id="ievents.E008"))
    tables = [cache["LOCATION"] for cache in settings.CACHES.values() if cache["BACKEND"] == DATABASE_CACHE]
    existing = set(connection.introspection.table_names()) if tables else set()
    problems += [Error(f"Cache table {table!r} is missing.", hint="Run `python manage.py createcachetable`.",
                       id="ievents.E009") for table in tables if table not in existing]
    return problems


@production_check
def broker_reachable(app_configs=None, **kwargs) -> list[Error]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        return [Error("CELERY_BROKER_URL is the development filesystem broker.", hint="Set redis://host:6379/0.",
                      id="ievents.E010")]
    timeout = settings.BROKER_TIMEOUT_SECONDS
    broker = Connection(url, connect_timeout=timeout, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    try:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # kombu raises each transport's own errors; any of them means unreachable
        return [Error(f"Cannot reach the broker {maybe_sanitize_url(url)} (CELERY_BROKER_URL): {exc}",
                      id="ievents.E010")]
    finally:
        broker.release()
    return []
