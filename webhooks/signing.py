"""Standard Webhooks signatures for everything we send (the gate and notifications).

Headers: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64>``,
the HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` under a ``whsec_…`` secret. During a
rotation the signature header carries one ``v1,…`` per secret, space-separated, so a
receiver verifying with either the old or the new secret accepts the request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from ievents.models import new_signing_secret

# How long a rotated-out secret keeps signing alongside the new one.
ROTATION_OVERLAP = timedelta(hours=24)


def sign_headers(msg_id: str, body: bytes, secrets: list[str], *, at: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with every secret given."""
    if not secrets:
        raise ValueError("at least one signing secret is needed")
    at = at or datetime.now(tz=UTC)
    text = body.decode()
    signatures = " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=text) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def signing_secrets(owner) -> list[str]:
    """The secrets ``owner`` (a gate or an endpoint) signs with now: the current one,
    and the previous one while its overlap lasts."""
    secrets = [owner.secret]
    expires = getattr(owner, "previous_secret_expires_at", None)
    if owner.previous_secret and expires and expires > timezone.now():
        secrets.append(owner.previous_secret)
    return secrets


def rotate_secret(owner) -> str:
    """Give ``owner`` a new secret; the old one keeps signing for ``ROTATION_OVERLAP``."""
    owner.previous_secret = owner.secret
    owner.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
    owner.secret = new_signing_secret()
    owner.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return owner.secret
