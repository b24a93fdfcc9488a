"""Links that open one order for its attendee, sent only to the order's email address.

A link carries the order's primary key and a digest of its email address, signed with the
project's secret (``django.core.signing``) and stamped with the time it was made: nobody
can make one, and it stops working after ``ORDER_LINK_MAX_AGE_DAYS``, when the order's
address changes, or once the attendee is erased. The attendee sees the order's reference
(``UGH-7V2``), never its internal id.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .models import CheckoutSession

SALT = "checkout.order_link"


class LinkInvalid(Exception):
    """The link was not made by us, has expired, or no longer matches its order."""


def _email_digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def token_for(session: CheckoutSession) -> str:
    return signing.dumps([session.pk, _email_digest(session.customer_email)], salt=SALT, compress=True)


def url_for(session: CheckoutSession) -> str:
    return settings.PUBLIC_BASE_URL + reverse("checkout:order", args=[token_for(session)])


def session_for(token: str) -> CheckoutSession:
    """The order a link opens; raises ``LinkInvalid``."""
    try:
        pk, digest = signing.loads(token, salt=SALT, max_age=settings.ORDER_LINK_MAX_AGE_DAYS * 86400)
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkInvalid from None
    session = (CheckoutSession.objects.select_related("event", "organization")
               .filter(pk=pk, personal_data_erased_at__isnull=True).first())
    if session is None or not session.customer_email or _email_digest(session.customer_email) != digest:
        raise LinkInvalid
    return session
