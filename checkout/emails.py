"""The attendee's ticket email: a receipt they can keep and show at the door, and its sending.

An HTML part with one QR code per ticket (PNG images sent inside the message and shown by
``cid:``, so no mail client fetches anything from anywhere), a plain-text part saying the
same, and the event as a calendar file. Written in the language the attendee bought in
(``CheckoutSession.language``), wherever it is sent from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.mime.image import MIMEImage

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext, gettext_lazy

from ievents.money import format_money

from . import formatting, order_links, tickets
from .models import CheckoutSession, Source, Status

log = logging.getLogger(__name__)

METHODS = {"card": gettext_lazy("Card"), "multibanco": "Multibanco", "mbway": "MB WAY"}
# Providers whose payments are not real money, whatever method they simulate.
TEST_PROVIDERS = {"sandbox": gettext_lazy("Test payment, no money moved")}


@dataclass(frozen=True)
class TicketEmail:
    to: str
    subject: str
    body: str  # the plain-text part
    html: str
    images: tuple[tuple[str, bytes], ...]  # (content id, PNG), one per ticket
    calendar: str
    calendar_name: str = "event.ics"


def _link(name: str, session) -> str:
    return settings.PUBLIC_BASE_URL + reverse(name, args=[session.public_id])


def order_link(session) -> str:
    """The attendee's link to their order: signed, carrying no internal id (checkout.order_links)."""
    return order_links.url_for(session)


def calendar_name(session) -> str:
    """A file name people can read: the event's name and the order's reference."""
    return f"{slugify(session.event.name) or 'event'}-{formatting.order_reference(session.public_id)}.ics"


def order_context(session) -> dict:
    """What every email about an order shows at its top: event, when, where, reference, organizer."""
    event = session.event
    return {
        "session": session,
        "event": event,
        "organizer": session.organization.name,
        "when": formatting.datetime_in_zone(event.starts_at, event.timezone),
        "reference": formatting.order_reference(session.public_id),
        "invoice": invoice_lines(session),
    }


def invoice_lines(session) -> list[str]:
    return [line for line in (session.invoice_name, session.invoice_tax_id, session.invoice_address) if line]


def _payment_and_organizer(session):
    """The order's payment and the organizer's name, in one read (the completion that sends
    the email holds neither). The latest payment is the one that paid: a session is paid
    once, and a retry is a newer payment (its new status may not be written yet when the
    completion builds the email, so it is not filtered on). Read through the relation payments
    declares on the session: checkout imports nothing of payments (docs/architecture.md)."""
    payment = session.payments.select_related("session__organization").first()
    if payment is not None:
        return payment, payment.session.organization.name
    return None, session.organization.name


def paid_how(session, payment) -> str:
    """How the order was paid, as the receipt says it: "Card", "Multibanco", "MB WAY"…"""
    if session.is_free or payment is None:  # a free order says "Free" as its amount
        return ""
    if payment.provider in TEST_PROVIDERS:  # a simulated card is no card
        return str(TEST_PROVIDERS[payment.provider])
    if payment.method in METHODS:
        return str(METHODS[payment.method])
    return payment.get_provider_display()


def calendar_for(session, link: str | None = None, issued: list | None = None) -> str:
    event = session.event
    link = link or order_link(session)
    # Each valid ticket and its holder, so a group's calendars say who holds which.
    if issued is None:
        issued = [t for t in session.tickets.all() if t.voided_at is None]
    held = [f"{t.code} · {t.holder_name}" if t.holder_name else t.code for t in issued]
    description = "\n".join([gettext("Your tickets: %(link)s") % {"link": link}, *held])
    return tickets.calendar_file(
        uid=f"{event.public_id}.{session.public_id}@ievents", starts_at=event.starts_at, ends_at=event.ends,
        summary=event.name, location=event.venue, url=link, description=description,
    )


def build(session, payment=None) -> TicketEmail:
    """The email for a completed session, from its tickets, event and payment, in the
    language the attendee bought in (the sweep sends it from a worker that has none).

    A completion in this request hands over what it holds, so nothing is read back: the
    tickets it just issued (``session.issued_tickets``, set by ``services._issue_tickets``)
    and the ``payment`` that paid (its organization came with the session's lock)."""
    with translation.override(session.language):
        return _build(session, payment)


def _build(session, payment=None) -> TicketEmail:
    event = session.event
    issued = getattr(session, "issued_tickets", None)
    if issued is None:
        issued = list(session.tickets.filter(voided_at__isnull=True).select_related("ticket_type"))
    if payment is not None:
        organizer = session.organization.name
    else:
        payment, organizer = _payment_and_organizer(session)
    link = order_link(session)
    context = {
        **order_context(session),
        "organizer": organizer,
        "amount": format_money(session.amount_paid or session.amount_total, session.currency, zero_is_free=True),
        "paid_how": paid_how(session, payment),
        "tickets": [{"code": t.code, "type": t.ticket_type.name, "holder": t.holder_name,
                     "cid": f"qr-{t.code}@ievents"} for t in issued],
        "link": link,
        "calendar_link": link + "calendar.ics",
    }
    return TicketEmail(
        to=session.customer_email,
        subject=gettext("Your tickets for %(event)s") % {"event": event.name},
        body=render_to_string("checkout/email/tickets.txt", context),
        html=render_to_string("checkout/email/tickets.html", context),
        images=tuple((t["cid"], tickets.qr_png(t["code"])) for t in context["tickets"]),
        calendar=calendar_for(session, link, issued),
        calendar_name=calendar_name(session),
    )


def message(email: TicketEmail) -> EmailMultiAlternatives:
    """The email as MIME: text and HTML alternatives, related to the QR images they show."""
    out = EmailMultiAlternatives(email.subject, email.body, settings.DEFAULT_FROM_EMAIL, [email.to])
    out.attach_alternative(email.html, "text/html")
    out.mixed_subtype = "related"  # the images belong to the HTML part
    for cid, png in email.images:
        image = MIMEImage(png, "png")
        image.add_header("Content-ID", f"<{cid}>")
        image.add_header("Content-Disposition", "inline", filename=cid.split("@")[0] + ".png")
        out.attach(image)
    out.attach(email.calendar_name, email.calendar, "text/calendar")
    return out


def send(email: TicketEmail) -> None:
    message(email).send()


# --- Sending it, at least once ---------------------------------------------------------------
# Sent at least once, never lost: a completed session without ``confirmation_sent_at`` is
# picked up by ``sweep_confirmations`` (every CONFIRMATION_SWEEP_SECONDS, in celery beat)
# until it is sent, so a mail server that is down or a process that dies only delays it. A
# sender takes a lease first, so two never send at once; one that dies after sending but
# before marking it sent makes the attendee get it twice, not never.
SENT_BY_THE_PAGE = {Source.ATTENDEE, Source.RETURN_PAGE}


def send_on_commit(session: CheckoutSession, source: str, payment=None) -> None:
    """Email the attendee their tickets once the transaction that issued them has committed.

    When the attendee is on our page (the return page, a free order) it is sent in their
    request, from the rows the completion already holds. Otherwise (a provider's webhook,
    the admin, the API) the next sweep sends it, seconds later: a provider waiting on our
    answer should wait neither for a mail server nor for a broker.
    """
    if sent_by_the_page(session, source):
        email = build(session, payment=payment)
        # Its lease was taken with the completion (``checkout.services._completion``): no sweep sends it meanwhile.
        transaction.on_commit(lambda: send_confirmation(session.pk, email, leased=True), robust=True)


def lease_until(now) -> datetime:
    """When a sender's claim on an email runs out, if it took the claim ``now``."""
    return now + timedelta(seconds=settings.CONFIRMATION_LEASE_SECONDS)


def sent_by_the_page(session: CheckoutSession, source: str) -> bool:
    """Whether the attendee's own request sends the ticket email (see ``send_on_commit``)."""
    return bool(session.customer_email) and source in SENT_BY_THE_PAGE


def send_confirmation(session_id: int, email: TicketEmail | None = None, now=None, *, leased: bool = False) -> bool:
    """Send the ticket email of a completed session unless it was sent or is being sent.
    True if this call sent it. ``email``: already built by the caller, else read here.
    ``leased``: the caller took the lease when it completed the session."""
    now = now or timezone.now()
    if not leased:
        unsent = CheckoutSession.objects.filter(pk=session_id, status=Status.COMPLETED,
                                                confirmation_sent_at__isnull=True)
        claimed = unsent.filter(
            Q(confirmation_lease_until__isnull=True) | Q(confirmation_lease_until__lt=now)
        ).update(confirmation_lease_until=lease_until(now))
        if not claimed:
            return False
    if email is None:
        email = build(CheckoutSession.objects.select_related("event")
                                   .prefetch_related("tickets__ticket_type").get(pk=session_id))
    try:
        send(email)
    except Exception as exc:  # any mail server failure: the sweep tries again once the lease is over
        log.warning("ticket email for session %s not sent, will retry: %s", session_id, exc)
        return False
    CheckoutSession.objects.filter(pk=session_id).update(confirmation_sent_at=timezone.now(),
                                                         confirmation_lease_until=None)
    return True


def sweep_confirmations(now=None, limit: int = 200) -> int:
    """Send the ticket emails that should have gone out by now and did not, oldest first.
    Returns how many were sent. Purchases older than CONFIRMATION_GIVE_UP_HOURS are left:
    the attendee has their codes on the status page, and a days-late email helps no one."""
    now = now or timezone.now()
    due = (CheckoutSession.objects
           .filter(status=Status.COMPLETED, confirmation_sent_at__isnull=True,
                   completed_at__gt=now - timedelta(hours=settings.CONFIRMATION_GIVE_UP_HOURS))
           .filter(Q(confirmation_lease_until__isnull=True) | Q(confirmation_lease_until__lt=now))
           .exclude(customer_email="")
           .order_by("completed_at").values_list("pk", flat=True)[:limit])
    return sum(send_confirmation(pk, now=now) for pk in list(due))
