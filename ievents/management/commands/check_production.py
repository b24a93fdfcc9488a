"""Say, before a production start, what the environment still lacks: one line per check.

Run it where the web and worker processes will run, with their environment (``DEBUG=0``
and the rest of the README's "Production without Docker"). Every check prints ``ok`` or
``FAIL`` and, for a failure, what to do; any failure makes the exit status non-zero, so a
deployment script can stop there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import WARNING, run_checks
from django.core.files.storage import storages
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http.request import validate_host
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

DATABASE_CACHE = "django.core.cache.backends.db.DatabaseCache"


def deployment_checks() -> list[str]:
    messages = run_checks(include_deployment_checks=True)
    return [f"check --deploy: {m.id}: {m.msg}" for m in messages if m.level >= WARNING and not m.is_silenced()]


def debug_is_off() -> list[str]:
    return ["DEBUG is on: set DEBUG=0"] if settings.DEBUG else []


def secret_key() -> list[str]:
    key = settings.SECRET_KEY
    if key == settings.DEV_SECRET_KEY or key.startswith("django-insecure-"):
        return ["SECRET_KEY is the development key: set 50+ random characters of your own"]
    if len(key) < 50:
        return [f"SECRET_KEY has {len(key)} characters: set 50+ random characters"]
    return []


def encryption_keys() -> list[str]:
    if not os.environ.get("FIELD_ENCRYPTION_KEYS", "").strip():
        return ["FIELD_ENCRYPTION_KEYS is not set: secrets at rest would use a key derived from SECRET_KEY "
                "(development only); set one or more Fernet keys, comma-separated"]
    problems = []
    for number, key in enumerate(settings.FIELD_ENCRYPTION_KEYS, start=1):
        try:
            Fernet(key)
        except ValueError:
            problems.append(f"FIELD_ENCRYPTION_KEYS: key {number} is not a Fernet key (32 url-safe base64-encoded "
                            "bytes; make one with `python -c \"from cryptography.fernet import Fernet; "
                            "print(Fernet.generate_key().decode())\"`)")
    return problems


def public_base_url() -> list[str]:
    url = urlsplit(settings.PUBLIC_BASE_URL)
    problems = []
    if url.scheme != "https":
        problems.append(f"PUBLIC_BASE_URL is {settings.PUBLIC_BASE_URL!r}: attendees, emails and payment providers "
                        "need the site's https:// address")
    if not url.hostname or not validate_host(url.hostname, settings.ALLOWED_HOSTS):
        problems.append(f"PUBLIC_BASE_URL's host {url.hostname!r} is not in ALLOWED_HOSTS: its links would answer 400")
    return problems


def static_manifest() -> list[str]:
    storage = storages["staticfiles"]
    manifest_name = getattr(storage, "manifest_name", None)
    if manifest_name is None:
        return ["static files are not served from a manifest (STORAGES['staticfiles']): is DEBUG on?"]
    if not Path(storage.path(manifest_name)).is_file():
        return [f"no {storage.path(manifest_name)}: run `python manage.py collectstatic --noinput` "
                "(without it every page is a server error)"]
    return []


def translations_compiled() -> list[str]:
    folders = [Path(p) for p in settings.LOCALE_PATHS] + [Path(settings.BASE_DIR) / "locale"]
    problems = []
    for po in sorted({po for folder in folders if folder.is_dir() for po in folder.rglob("*.po")}):
        mo = po.with_suffix(".mo")
        if not mo.is_file() or mo.stat().st_mtime < po.stat().st_mtime:
            problems.append(f"{po} is not compiled: run `python manage.py compilemessages`")
    return problems


def database_reachable() -> list[str]:
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        where = f"{connection.settings_dict.get('HOST') or 'localhost'}:{connection.settings_dict.get('PORT') or ''}"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"cannot reach the database {connection.settings_dict['NAME']} at {where} (DATABASE_URL): "
                f"{first_line}"]
    return []


def migrations_applied() -> list[str]:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return ["migrations cannot be checked: the database is unreachable"]
    if plan:
        first = plan[0][0]
        return [f"{len(plan)} migration(s) not applied (first: {first.app_label}.{first.name}): "
                "run `python manage.py migrate`"]
    return []


def cache_table() -> list[str]:
    tables = [cache["LOCATION"] for cache in settings.CACHES.values() if cache["BACKEND"] == DATABASE_CACHE]
    try:
        existing = set(connection.introspection.table_names()) if tables else set()
    except DatabaseError:
        return ["the cache table cannot be checked: the database is unreachable"]
    return [f"cache table {table!r} is missing: run `python manage.py createcachetable`"
            for table in tables if table not in existing]


def broker_reachable() -> list[str]:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        return ["CELERY_BROKER_URL is the development filesystem broker: set redis://host:6379/0"]
    timeout = settings.BROKER_TIMEOUT_SECONDS
    broker = Connection(url, connect_timeout=timeout, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    try:
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # kombu raises each transport's own errors; any of them means unreachable
        return [f"cannot reach the broker {maybe_sanitize_url(url)} (CELERY_BROKER_URL): {exc}"]
    finally:
        broker.release()
    return []


CHECKS: list[tuple[str, Callable[[], list[str]]]] = [
    ("Django's deployment checks (check --deploy)", deployment_checks),
    ("DEBUG is off", debug_is_off),
    ("SECRET_KEY is a production key", secret_key),
    ("FIELD_ENCRYPTION_KEYS are set and valid", encryption_keys),
    ("PUBLIC_BASE_URL is https and an allowed host", public_base_url),
    ("static files collected (manifest present)", static_manifest),
    ("translations compiled", translations_compiled),
    ("database reachable", database_reachable),
    ("migrations applied", migrations_applied),
    ("cache table present", cache_table),
    ("broker reachable", broker_reachable),
]


class Command(BaseCommand):
    help = "Check a production environment before it starts; one line per check, non-zero exit on any failure."

    requires_system_checks = []  # it runs them itself, with the deployment checks, and reports them as lines

    def handle(self, **options):
        failures = 0
        for name, check in CHECKS:
            problems = check()
            failures += len(problems)
            if not problems:
                self.stdout.write(f"ok    {name}")
            for problem in problems:
                self.stdout.write(f"FAIL  {problem}")
        if failures:
            raise CommandError(f"{failures} problem(s): production is not ready.")
        self.stdout.write("Production is ready.")
