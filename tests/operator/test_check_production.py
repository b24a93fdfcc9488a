"""`manage.py check --deploy`: Django's deployment checks and ours (``ievents/checks.py``,
tag ``ievents``), each problem in plain words, a non-zero exit on any.

Each case starts from a production environment where every check passes (the ``production``
fixture: DEBUG off, the hardening ``settings.py`` applies with DEBUG=0, a real Fernet key,
an https PUBLIC_BASE_URL, a collected-static manifest, the test database, the real Redis)
and breaks one thing, so the one problem it causes is the whole difference.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.checks import WARNING, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db.migrations.recorder import MigrationRecorder

pytestmark = [pytest.mark.broker, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parents[2]
KEY = Fernet.generate_key().decode()
SECRET = "production-" + "k3y-" * 12 + "0123456789"


@pytest.fixture
def production(settings, tmp_path, monkeypatch):
    """Every setting as production has it (ievents/settings.py with DEBUG=0)."""
    settings.DEBUG = False
    settings.SECRET_KEY = SECRET
    settings.ALLOWED_HOSTS = ["tickets.example.com"]
    settings.PUBLIC_BASE_URL = "https://tickets.example.com"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.X_FRAME_OPTIONS = "DENY"
    settings.FIELD_ENCRYPTION_KEYS = [KEY]
    monkeypatch.setenv("FIELD_ENCRYPTION_KEYS", KEY)
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
    settings.STATIC_ROOT.mkdir()
    (settings.STATIC_ROOT / "staticfiles.json").write_text('{"paths": {}, "version": "1.1"}')
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    return settings


def check_production() -> tuple[list[str], bool]:
    """Every problem ``check --deploy`` finds, as "id: message", and whether there were none."""
    problems = [f"{m.id}: {m.msg}" + (f" {m.hint}" if m.hint else "")
                for m in run_checks(include_deployment_checks=True) if m.level >= WARNING and not m.is_silenced()]
    return problems, not problems


def test_a_ready_production_passes_every_check(production):
    lines, passed = check_production()
    assert passed, "\n".join(lines)
    call_command("check", deploy=True, fail_level="WARNING")  # as the operator runs it: no SystemCheckError


def test_the_command_fails_and_names_the_problem(production):
    production.DEBUG = True
    with pytest.raises(SystemCheckError, match=r"\(ievents\.E001\) DEBUG is on\."):
        call_command("check", deploy=True, tags=["ievents"])


def assert_only_failure(*expected: str) -> None:
    lines, passed = check_production()
    assert not passed
    found = lines
    assert len(found) == len(expected), "\n".join(lines)
    for line, words in zip(found, expected, strict=True):
        assert words in line, "\n".join(lines)


def test_debug_on_fails(production):
    production.DEBUG = True
    lines, passed = check_production()
    assert not passed
    assert "ievents.E001: DEBUG is on. Set DEBUG=0." in lines
    assert any("security.W018" in line for line in lines)  # Django's check --deploy says it too


def test_a_missing_static_manifest_fails_with_the_command_to_run(production):
    (production.STATIC_ROOT / "staticfiles.json").unlink()
    assert_only_failure("staticfiles.json: without it every page is a server error. Run `python manage.py collectstatic")


def test_the_development_secret_key_fails(production):
    production.SECRET_KEY = production.DEV_SECRET_KEY
    assert_only_failure("SECRET_KEY is the development key")


def test_unset_encryption_keys_fail(production, monkeypatch):
    monkeypatch.delenv("FIELD_ENCRYPTION_KEYS")
    assert_only_failure("FIELD_ENCRYPTION_KEYS is not set")


def test_an_encryption_key_that_is_not_a_fernet_key_fails(production):
    production.FIELD_ENCRYPTION_KEYS = [KEY, "not-a-fernet-key"]
    assert_only_failure("FIELD_ENCRYPTION_KEYS: key 2 is not a Fernet key")


def test_a_plain_http_public_base_url_fails(production):
    production.PUBLIC_BASE_URL = "http://tickets.example.com"
    assert_only_failure("PUBLIC_BASE_URL is 'http://tickets.example.com'")


def test_a_public_base_url_outside_allowed_hosts_fails(production):
    production.PUBLIC_BASE_URL = "https://elsewhere.example.com"
    assert_only_failure("host 'elsewhere.example.com' is not in ALLOWED_HOSTS")


def test_a_deployment_check_warning_fails(production):
    production.SESSION_COOKIE_SECURE = False
    assert_only_failure("security.W012")


def test_an_unapplied_migration_fails(production):
    MigrationRecorder.Migration.objects.filter(app="checkout").order_by("-id").first().delete()
    assert_only_failure("ievents.E008: 1 migration(s) not applied (first: checkout.")


def test_a_missing_cache_table_fails(production):
    production.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache",
                                     "LOCATION": "no_such_cache_table"}}
    assert_only_failure("Cache table 'no_such_cache_table' is missing. Run `python manage.py createcachetable`")


def test_an_unreachable_broker_fails(production):
    production.CELERY_BROKER_URL = "redis://:hunter2@127.0.0.1:1/0"  # nothing listens on port 1
    lines, _ = check_production()
    assert_only_failure("Cannot reach the broker redis://:**@127.0.0.1:1/0")
    assert "hunter2" not in "\n".join(lines)


def test_the_development_filesystem_broker_fails(production):
    production.CELERY_BROKER_URL = "filesystem://"
    assert_only_failure("CELERY_BROKER_URL is the development filesystem broker")


def test_uncompiled_translations_fail_and_compiled_ones_pass(production):
    messages = production.LOCALE_PATHS[0] / "pt" / "LC_MESSAGES"
    messages.mkdir(parents=True)
    (messages / "django.po").write_text('msgid ""\nmsgstr ""\n')
    assert_only_failure("django.po is not compiled. Run `python manage.py compilemessages`")
    (messages / "django.mo").write_bytes(b"")
    os.utime(messages / "django.mo", (os.path.getmtime(messages / "django.po") + 1,) * 2)
    assert check_production()[1]


def test_an_unreachable_database_fails_in_plain_words():
    """As an operator runs it: a real process, DEBUG=0, a database nothing answers for."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DEBUG": "0", "SECRET_KEY": SECRET, "ALLOWED_HOSTS": "tickets.example.com",
                "FIELD_ENCRYPTION_KEYS": KEY, "PUBLIC_BASE_URL": "https://tickets.example.com",
                "DATABASE_URL": "postgres://ievents:s3cret@127.0.0.1:1/ievents"})
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--tag", "ievents"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "(ievents.E007) Cannot reach the database ievents at 127.0.0.1:1 (DATABASE_URL)" in said
    assert "Migrations and the cache table are checked once it answers." in said
    assert "s3cret" not in said
