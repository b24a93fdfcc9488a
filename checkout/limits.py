"""Limits on taking tickets from the attendee pages, so nobody holds an event's inventory.

Three anonymous ``POST /e/<event>/`` could hold all 30 tickets of a type, and starting a
Multibanco payment stretched that hold to 48 hours. With no account to count by, the buyer
is the client address, and for each address and event:

- at most ``CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS`` tickets held at once (held: in a
  checkout that is neither paid nor ended, its hold not released);
- at most ``CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS`` checkouts opened in
  ``CHECKOUT_LIMIT_WINDOW_SECONDS`` (the rate of taking tickets);
- a hold stretched for a pending payment only when the provider gave a reference to pay,
  and never past ``CHECKOUT_MAX_PENDING_HOLD_HOURS`` after the checkout opened
  (``pending_hold_until``), however often a payment is started again.

The address is the connection's (``REMOTE_ADDR``), or, behind ``TRUSTED_PROXY_COUNT``
proxies, the one the nearest of them put in ``X-Forwarded-For``: a header anyone can send
is never trusted further than the proxies we run. An IPv6 address counts as its /64, the
network one subscriber is given. ``CHECKOUT_LIMITS_EXEMPT_ADDRESSES`` (a box office behind
one address) are not limited.

The API is exempt: its caller is the organizer's own server, known by its key, opening
checkouts for many attendees from one address.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from ievents.models import Event

from . import promo, services, state
from .models import CheckoutSession, PromoCode, PromoCodeFailure, Status

log = logging.getLogger(__name__)

# A session holding tickets that are not sold yet: payment may still come, or never.
HOLDING = state.LIVE | {Status.UNPAID}


class LimitReached(services.CheckoutError):
    """This address may not take (more) tickets for this event now; ``retry_after`` seconds."""

    code = "limit_reached"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = max(int(retry_after), 1)


# --- The client's address ---------------------------------------------------------------------
def client_address(request) -> str:
    """The client's IP address as far as we can trust it ("" when there is none)."""
    remote = request.META.get("REMOTE_ADDR", "")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0 and "HTTP_X_FORWARDED_FOR" in request.META:
        _warn_about_a_proxy_once(remote)
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            # Each trusted proxy appends the address it was connected from: the entry our
            # farthest proxy appended is the client; anything before it the client wrote.
            candidate = forwarded[-min(hops, len(forwarded))]
            if _ip(candidate) is not None:
                return candidate
    return remote if _ip(remote) is not None else ""


_proxy_warned = threading.Event()


def _warn_about_a_proxy_once(remote: str) -> None:
    # A proxy in front that nobody told us about makes every attendee one address (its
    # own), and the limits then refuse them together: say so once per process.
    if not _proxy_warned.is_set():
        _proxy_warned.set()
        log.warning("requests carry X-Forwarded-For (from %s) but TRUSTED_PROXY_COUNT is 0: the per-address "
                    "limits count the connection's address; behind a proxy, set TRUSTED_PROXY_COUNT", remote)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def address_key(address: str) -> str:
    """What the limits count by: an IPv4 address, or an IPv6 address's /64 ("" for none)."""
    ip = _ip(address)
    if ip is None:
        return ""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@lru_cache(maxsize=8)
def _exempt_networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def is_exempt(address: str) -> bool:
    ip = _ip(address)
    if ip is None:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _exempt_networks(tuple(settings.CHECKOUT_LIMITS_EXEMPT_ADDRESSES)))


# --- Taking tickets ------------------------------------------------------------------------------
def hold_tickets(event: Event, items: list[services.Item], *, address: str,
                 promo_code: PromoCode | None = None) -> CheckoutSession:
    """Open a checkout holding ``items`` for the client at ``address``, within its limits.

    Raises ``LimitReached``, or what ``services.create_session`` raises. The limits are
    counted after the hold, in its transaction (``create_session`` calls ``check`` for the
    address it is given: one transaction, no savepoint): the ticket types' row locks the
    hold takes make two requests for the same tickets count one after the other, so sending
    many at once does not get past the cap, and no other lock is taken. Over the limit, the
    whole checkout is rolled back.
    """
    key = address_key(address)
    limited = bool(key) and not is_exempt(address)
    return services.create_session(event, items, address_key=key if limited else "", promo_code=promo_code)


def check(event: Event, key: str, quantity: int, now: datetime | None = None, *,
          opened: CheckoutSession | None = None) -> None:
    """Raise ``LimitReached`` if the address ``key`` may not take ``quantity`` more tickets
    for ``event`` now. One statement: what it holds and what it opened lately, leaving out
    the checkout being ``opened`` now."""
    now = now or timezone.now()
    cap, rate = settings.CHECKOUT_MAX_HELD_TICKETS_PER_ADDRESS, settings.CHECKOUT_MAX_CHECKOUTS_PER_ADDRESS
    window = timedelta(seconds=settings.CHECKOUT_LIMIT_WINDOW_SECONDS)
    holding = Q(status__in=HOLDING, holds_released=False)
    recent = Q(created_at__gt=now - window)
    others = CheckoutSession.objects.filter(event=event, address_key=key)
    if opened is not None:
        others = others.exclude(pk=opened.pk)
    mine = others.aggregate(
        held=Sum("line_items__quantity", filter=holding, default=0),
        first_release=Min("expires_at", filter=holding),
        opened=Count("pk", filter=recent, distinct=True),
        first_opened=Min("created_at", filter=recent),
    )
    if cap and mine["held"] + quantity > cap:
        wait = (mine["first_release"] - now).total_seconds() if mine["first_release"] else 60
        if mine["held"]:
            raise LimitReached(ngettext(
                "You already hold %(held)d ticket for this event, and one connection may hold at most "
                "%(cap)d at a time. Finish or cancel the checkout you started, or wait until its hold ends "
                "(in about %(wait)s).",
                "You already hold %(held)d tickets for this event, and one connection may hold at most "
                "%(cap)d at a time. Finish or cancel the checkout you started, or wait until its hold ends "
                "(in about %(wait)s).", mine["held"]) % {"held": mine["held"], "cap": cap, "wait": _minutes(wait)},
                wait)
        raise LimitReached(ngettext("One connection may hold at most %(cap)d ticket for this event at a time.",
                                    "One connection may hold at most %(cap)d tickets for this event at a time.", cap)
                           % {"cap": cap}, 60)
    if rate and mine["opened"] >= rate:
        wait = (mine["first_opened"] + window - now).total_seconds()
        raise LimitReached(gettext(
            "Too many checkouts were started from your connection for this event. Please try again in about "
            "%(wait)s.") % {"wait": _minutes(wait)}, wait)


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    if minutes >= 120:
        hours = math.ceil(minutes / 60)
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


# --- Guessing promo codes -------------------------------------------------------------------------
def try_code(event: Event, typed: str, *, address: str, now: datetime | None = None) -> PromoCode:
    """The promo code ``typed`` on ``event``'s page from ``address``, within the limits on
    guessing: at most ``PROMO_CODE_MAX_FAILURES_PER_ADDRESS`` codes that did not work from one
    address, and ``PROMO_CODE_MAX_FAILURES_PER_EVENT`` from all together, in
    ``PROMO_CODE_FAILURE_WINDOW_SECONDS``. Raises ``LimitReached`` or ``promo.CodeRefused``
    (which is counted). A wrong, expired or used-up code takes the same statements: the
    count, one lookup, one insert."""
    now = now or timezone.now()
    key = address_key(address)
    limited = bool(key) and not is_exempt(address)
    if limited:
        _check_guessing(event, key, now)
    try:
        return promo.check_code(event, typed, now)
    except promo.CodeRefused:
        if limited:
            PromoCodeFailure.objects.create(event=event, address_key=key)
        raise


def _check_guessing(event: Event, key: str, now: datetime) -> None:
    window = timedelta(seconds=settings.PROMO_CODE_FAILURE_WINDOW_SECONDS)
    mine = Q(address_key=key)
    failures = PromoCodeFailure.objects.filter(event=event, at__gt=now - window).aggregate(
        mine=Count("pk", filter=mine), everyone=Count("pk"), first_mine=Min("at", filter=mine), first=Min("at"))
    if failures["mine"] >= settings.PROMO_CODE_MAX_FAILURES_PER_ADDRESS:
        wait = (failures["first_mine"] + window - now).total_seconds()
        raise LimitReached(gettext("Too many codes that do not work were tried from your connection for this event. "
                                   "Please try again in %(wait)s.") % {"wait": _minutes_text(wait)}, wait)
    if failures["everyone"] >= settings.PROMO_CODE_MAX_FAILURES_PER_EVENT:
        wait = (failures["first"] + window - now).total_seconds()
        raise LimitReached(gettext("Too many codes that do not work were tried for this event just now. "
                                   "Please try again in %(wait)s.") % {"wait": _minutes_text(wait)}, wait)


def _minutes_text(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return ngettext("about %(count)d minute", "about %(count)d minutes", minutes) % {"count": minutes}


# --- Holds stretched for a pending payment ------------------------------------------------------
def pending_hold_until(session: CheckoutSession, deadline: datetime) -> datetime:
    """How long a pending payment with ``deadline`` (a Multibanco reference's) may keep
    ``session``'s tickets: until the deadline, but never more than
    ``CHECKOUT_MAX_PENDING_HOLD_HOURS`` after the checkout opened."""
    return min(deadline, session.created_at + timedelta(hours=settings.CHECKOUT_MAX_PENDING_HOLD_HOURS))
