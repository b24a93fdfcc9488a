"""Login throttling for the back office: what django-axes counts by, and what a locked-out
person reads.

axes counts failed logins per account and per client address (settings:
``LOGIN_FAILURE_LIMIT``, ``LOGIN_LOCKOUT_MINUTES``). The address is the one every other
limit trusts (``checkout.limits.client_address``: ``REMOTE_ADDR``, or behind
``TRUSTED_PROXY_COUNT`` proxies the entry the nearest of them appended to
X-Forwarded-For), so a forged header earns no fresh guesses. An IPv6 address counts as its
/64, the network one subscriber is given, written as that network's first address (axes
stores an address, not a network).

This is an entry point (settings name it for axes), so it may use the checkout's helpers.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.admin import site as admin_site
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext

from checkout.limits import address_key, client_address


def login_address(request) -> str | None:
    """The address axes counts a login attempt by (None: there is none to count): what the
    checkout limits count by (``address_key``), an IPv6 /64 written as its first address."""
    return address_key(client_address(request)).split("/")[0] or None


def lockout_message() -> str:
    minutes = max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return ngettext(
        "Too many failed login attempts for this account or from this connection. For your safety, logging "
        "in is paused for %(minutes)d minute after the last attempt. Try again then, or ask the platform's "
        "operator to unlock it.",
        "Too many failed login attempts for this account or from this connection. For your safety, logging "
        "in is paused for %(minutes)d minutes after the last attempt. Try again then, or ask the platform's "
        "operator to unlock it.",
        minutes,
    ) % {"minutes": minutes}


def locked_out(request, response=None, credentials=None):
    """axes' lock-out response: the login page again, saying why, with 429 Too Many Requests."""
    context = {
        **admin_site.each_context(request),
        "title": gettext("Logging in is paused"),
        "lockout_message": lockout_message(),
    }
    # axes swaps this in on the way out, after the template-response phase: render it now.
    return TemplateResponse(request, "admin/locked_out.html", context, status=429).render()
