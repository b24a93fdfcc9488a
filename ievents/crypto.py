"""Secrets at rest: an encrypted text field and the key ring behind it.

``FIELD_ENCRYPTION_KEYS`` is a comma-separated list of Fernet keys. The first one
encrypts; every one decrypts, so rotating a key is: put the new key first, run
``manage.py rotate_encryption_keys`` to re-encrypt, then drop the old key.
"""

import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

PREFIX = "enc1:"


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _keyring(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def keyring() -> MultiFernet:
    return _keyring(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return PREFIX + keyring().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token.startswith(PREFIX):
        raise DecryptionError("value is not an encrypted token")
    try:
        return keyring().decrypt(token[len(PREFIX):].encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("no configured key decrypts this value") from exc


# Prefixes that say what kind of secret it is and nothing of its value (Standard Webhooks,
# Stripe): shown, so an organizer can tell which secret a field holds.
KIND_PREFIXES = ("whsec_", "sk_live_", "sk_test_", "rk_live_", "rk_test_")


def mask(secret: str) -> str:
    """What a form or list shows of a secret: enough to recognise it, not to use it.

    At most its last 4 characters, and never more than a quarter of what follows a kind
    prefix, so a short secret is not all but guessed from its hint."""
    if not secret:
        return ""
    prefix = next((p for p in KIND_PREFIXES if secret.startswith(p)), "")
    rest = secret[len(prefix):]
    shown = min(4, len(rest) // 4)
    return f"{prefix}…{rest[-shown:]}" if shown else f"{prefix}••••••"


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python code sees plaintext."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)


def new_public_id(prefix: str) -> str:
    """An unguessable public identifier such as ``cs_3kT…`` (128+ bits of randomness)."""
    return f"{prefix}_{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}"
