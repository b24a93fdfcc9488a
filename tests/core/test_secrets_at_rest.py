"""Secrets are encrypted at rest, and keys can be rotated without losing them."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from ievents.crypto import DecryptionError, mask

pytestmark = pytest.mark.django_db


def _raw_secret(organization) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT signing_secret FROM ievents_organization WHERE id = %s", [organization.pk])
        return cursor.fetchone()[0]


def test_a_secret_is_stored_encrypted_and_read_back_in_plain(organization):
    secret = organization.signing_secret
    assert secret.startswith("whsec_")
    raw = _raw_secret(organization)
    assert raw.startswith("enc1:") and secret not in raw
    organization.refresh_from_db()
    assert organization.signing_secret == secret


def test_rotating_keys_keeps_every_secret_readable_under_the_new_key_alone(organization, settings):
    secret = organization.signing_secret
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys")
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    organization.refresh_from_db()
    assert organization.signing_secret == secret


def test_a_secret_under_an_unknown_key_is_an_error_not_garbage(organization, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError):
        organization.refresh_from_db()


def test_masking_shows_enough_to_recognise_and_not_enough_to_use():
    secret = "whsec_" + "A" * 40 + "wxyz"
    shown = mask(secret)
    assert shown.startswith("whsec_") and shown.endswith("wxyz") and "A" * 10 not in shown
    assert mask("abc") == "••••••" and mask("") == ""


@pytest.mark.parametrize("secret", [
    "anti-phishing-key-20", "k" * 7 + "abcd", "0123456789", "ep-notify-" + "c" * 22, "sk_live_" + "x" * 9,
    "whsec_" + "y" * 12, "1234567",
])
def test_a_mask_shows_at_most_the_last_4_characters_and_never_more_than_a_quarter(secret):
    shown = mask(secret)
    kind = next((p for p in ("whsec_", "sk_live_") if secret.startswith(p)), "")
    visible = shown.removeprefix(kind).lstrip("…•")
    assert secret.endswith(visible) and shown.startswith(kind)
    assert len(visible) <= 4 and len(visible) <= (len(secret) - len(kind)) // 4
    assert mask("anti-phishing-key-20") == "…y-20"  # was "anti-p…y-20": 10 of its 20 characters
