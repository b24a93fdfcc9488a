"""Production settings: refuse development secrets; `check --deploy` is clean."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "p" * 20 + "-production-secret-key-that-is-long-and-random-0123456789",
    "ALLOWED_HOSTS": "tickets.example.com",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
}


def manage(*args, **env):
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for themselves; a deployment would not.
    full_env = {k: v for k, v in os.environ.items() if k not in PRODUCTION and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    full_env.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings():
    # Django's own deployment checks (tag "security"); ours, which also need a migrated
    # database, collected static files and a broker, are tests/operator/test_check_production.py's.
    result = manage("check", "--deploy", "--tag", "security", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(("missing", "value"), [
    ("SECRET_KEY", ""),
    ("SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production-8f1c2d"),
    ("FIELD_ENCRYPTION_KEYS", ""),
    ("ALLOWED_HOSTS", ""),
])
def test_production_refuses_to_start_with_development_values(missing, value):
    result = manage("check", **{**PRODUCTION, missing: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


def test_private_webhook_targets_are_off_in_production():
    result = manage("shell", "-c", "from django.conf import settings; print(settings.WEBHOOK_ALLOW_PRIVATE_TARGETS)",
                    **PRODUCTION)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr
