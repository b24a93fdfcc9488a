"""Find my order: an attendee who lost their email asks for links to their orders.

The page never says whether an address has orders, and answers in the same time either way:
a request writes one row (``AttendeeEmail`` of kind ``order_links``) whatever the address,
and the orders are looked up later, off the request, by the sender
(``checkout.attendee_emails``), which emails one signed link per order
(``checkout.order_links``) to that address only, or nothing when it has none.

Limits, counted from those rows: at most ``FIND_ORDER_MAX_PER_EMAIL`` requests per address in
``FIND_ORDER_WINDOW_SECONDS`` (more are answered the same and send nothing, so nobody can
flood a mailbox), and ``FIND_ORDER_MAX_PER_CLIENT`` per client address, counted as the
checkout's limits count it (``checkout.limits.address_key``), over which the page says to wait.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import attendee_emails, limits
from .models import AttendeeEmail


class TooManyRequests(Exception):
    """This client asked too often; ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        super().__init__("too many requests")
        self.retry_after = max(int(retry_after), 1)


def request_order_links(organization, email: str, *, address: str, language: str) -> None:
    """Queue the links to ``email``'s orders with ``organization`` (None: every organization's).
    Raises ``TooManyRequests`` when the client is over its limit."""
    email = email.strip().lower()
    key = limits.address_key(address)
    since = timezone.now() - timedelta(seconds=settings.FIND_ORDER_WINDOW_SECONDS)
    recent = AttendeeEmail.objects.filter(kind=AttendeeEmail.Kind.ORDER_LINKS, created_at__gt=since)
    if key and not limits.is_exempt(address) and \
            recent.filter(address_key=key).count() >= settings.FIND_ORDER_MAX_PER_CLIENT:
        raise TooManyRequests(settings.FIND_ORDER_WINDOW_SECONDS)
    # Over the address's limit the request is still written (it counts for the client's
    # limit, and costs what any other does) but sends nothing; the page says the same.
    quiet = recent.filter(to=email).count() >= settings.FIND_ORDER_MAX_PER_EMAIL
    with transaction.atomic():
        attendee_emails.queue_order_links(organization, email, language=language, address_key=key, quiet=quiet)
