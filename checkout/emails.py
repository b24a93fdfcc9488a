"""The attendee's ticket email: a receipt they can keep and show at the door.

An HTML part with one QR code per ticket (PNG images sent inside the message and shown by
``cid:``, so no mail client fetches anything from anywhere), a plain-text part saying the
same, and the event as a calendar file. Written in the language active when it is built:
the attendee's own when the return page sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.mime.image import MIMEImage

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy

from . import formatting, tickets

METHODS = {"card": gettext_lazy("Card"), "multibanco": "Multibanco", "mbway": "MB WAY"}


@dataclass(frozen=True)
class TicketEmail:
    to: str
    subject: str
    body: str  # the plain-text part
    html: str
    images: tuple[tuple[str, bytes], ...]  # (content id, PNG), one per ticket
    calendar: str


def _link(name: str, session) -> str:
    return settings.PUBLIC_BASE_URL + reverse(name, args=[session.public_id])


def _payment_and_organizer(session):
    """The order's payment and the organizer's name, in one read (the completion that sends
    the email holds neither). The latest payment is the one that paid: a session is paid
    once, and a retry is a newer payment (its new status may not be written yet when the
    completion builds the email, so it is not filtered on)."""
    from payments.models import Payment

    payment = Payment.objects.filter(session=session).select_related("session__organization").first()
    if payment is not None:
        return payment, payment.session.organization.name
    return None, session.organization.name


def paid_how(session, payment) -> str:
    """How the order was paid, as the receipt says it: "Card", "Multibanco", "MB WAY"…"""
    if session.is_free or payment is None:  # a free order says "Free" as its amount
        return ""
    if payment.method in METHODS:
        return str(METHODS[payment.method])
    return payment.get_provider_display()


def calendar_for(session) -> str:
    event = session.event
    link = _link("checkout:status", session)
    return tickets.calendar_file(
        uid=f"{event.public_id}.{session.public_id}@ievents", starts_at=event.starts_at, summary=event.name,
        location=event.venue, url=link,
        description=gettext("Your tickets: %(link)s") % {"link": link},
    )


def build(session, payment=None) -> TicketEmail:
    """The email for a completed session, from its tickets, event and payment.

    A completion in this request hands over what it holds, so nothing is read back: the
    tickets it just issued (``session.issued_tickets``, set by ``services._issue_tickets``)
    and the ``payment`` that paid (its organization came with the session's lock)."""
    event = session.event
    issued = getattr(session, "issued_tickets", None)
    if issued is None:
        issued = list(session.tickets.filter(voided_at__isnull=True).select_related("ticket_type"))
    if payment is not None:
        organizer = session.organization.name
    else:
        payment, organizer = _payment_and_organizer(session)
    context = {
        "session": session,
        "event": event,
        "organizer": organizer,
        "when": formatting.datetime_in_zone(event.starts_at, event.timezone),
        "amount": formatting.money(session.amount_paid or session.amount_total, session.currency),
        "paid_how": paid_how(session, payment),
        "reference": formatting.order_reference(session.public_id),
        "tickets": [{"code": t.code, "type": t.ticket_type.name, "cid": f"qr-{t.code}@ievents"} for t in issued],
        "link": _link("checkout:status", session),
        "calendar_link": _link("checkout:calendar", session),
    }
    return TicketEmail(
        to=session.customer_email,
        subject=gettext("Your tickets for %(event)s") % {"event": event.name},
        body=render_to_string("checkout/email/tickets.txt", context),
        html=render_to_string("checkout/email/tickets.html", context),
        images=tuple((t["cid"], tickets.qr_png(t["code"])) for t in context["tickets"]),
        calendar=calendar_for(session),
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
    out.attach("event.ics", email.calendar, "text/calendar")
    return out


def send(email: TicketEmail) -> None:
    message(email).send()
