"""Every change to an order told to its attendee, by email, in the language they bought in.

The outbox pattern, as for the organizer's notifications: ``queue`` writes an
``AttendeeEmail`` row in the transaction of the change it tells (a refund, a cancellation,
the tickets sent again…), so the email exists exactly when the change does. Once that
transaction commits, a worker is asked to send it (``checkout.tasks.send_attendee_email``);
whatever the broker lost or the mail server refused, the sweep (every
``CONFIRMATION_SWEEP_SECONDS``, in celery beat) sends later, for up to
``CONFIRMATION_GIVE_UP_HOURS``. A sender takes a lease on the row first (as the ticket
email does), so two never send the same email; ``key`` names the change, so one change
queued twice is still one row.

The emails are rendered when sent, under ``translation.override(row.language)``, from the
same layout as the receipt (``checkout/email/base.html``). ``emails_for(session)`` lists an
order's emails, queued or sent: its history in the admin, and what a test checks.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy, ngettext

from ievents.money import format_money

from . import emails, formatting, order_links
from .models import AttendeeEmail, CheckoutSession

log = logging.getLogger(__name__)
Kind = AttendeeEmail.Kind


def language_of(session: CheckoutSession) -> str:
    return session.language or settings.LANGUAGE_CODE


def queue(session: CheckoutSession, kind: str, key: str, *, to: str | None = None, params: dict | None = None,
          language: str | None = None) -> bool:
    """Write the email telling ``kind`` about ``session`` (in the caller's transaction) and
    have it sent once that commits. ``key``: the change it tells (``refund:rf_…``); the same
    key again changes nothing. False when there is no one to write to or it was queued."""
    to = (session.customer_email if to is None else to).strip()
    if not to:
        return False
    row = AttendeeEmail(organization_id=session.organization_id, session=session, kind=kind, key=key[:120], to=to,
                        language=language or language_of(session), params=params or {})
    return _insert(row)


def masked(email: str) -> str:
    """``n***@example.org``: enough for its owner to recognise, nothing for anyone else."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def queue_order_links(organization, email: str, *, language: str, address_key: str, quiet: bool = False) -> None:
    """Find my order: one row whatever the address, so the request costs the same whether or
    not it has orders; which orders, if any, is looked up by the sender, off the request.
    ``quiet``: over the address's limit, recorded as done and never sent."""
    row = AttendeeEmail(organization=organization, kind=Kind.ORDER_LINKS, to=email.strip(), language=language,
                        address_key=address_key, key=f"order_links:{uuid.uuid4().hex}")
    if quiet:
        row.sent_at, row.last_error = timezone.now(), "over the limit for this address: not sent"
        AttendeeEmail.objects.bulk_create([row])
        return
    _insert(row)


def _insert(row: AttendeeEmail) -> bool:
    if AttendeeEmail.objects.filter(key=row.key).exists():
        return False  # this change was told before: its email is the earlier row
    # Two writers of the same change at once: the unique key keeps one row, and the two
    # sends that follow meet at the lease.
    AttendeeEmail.objects.bulk_create([row], ignore_conflicts=True)
    key = row.key
    transaction.on_commit(lambda: _enqueue(key), robust=True)
    return True


def _enqueue(key: str) -> None:
    from .tasks import send_attendee_email  # not at the top: checkout.tasks imports this module

    try:
        send_attendee_email.apply_async((key,))
    except Exception:  # the broker's errors vary by transport; the sweep sends it later
        log.exception("could not enqueue attendee email %s; the sweep will send it", key)


# --- Sending ------------------------------------------------------------------------------
def send(key: str, now: datetime | None = None) -> bool:
    """Send the email ``key`` unless it was sent or another sender holds it. True if sent."""
    now = now or timezone.now()
    unsent = AttendeeEmail.objects.filter(key=key, sent_at__isnull=True)
    claimed = unsent.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)).update(
        lease_until=emails.lease_until(now))
    if not claimed:
        return False
    row = AttendeeEmail.objects.select_related("organization", "session__event", "session__organization").get(key=key)
    try:
        with translation.override(row.language or settings.LANGUAGE_CODE):
            message = build(row)
            if message is not None:
                message.send()
    except Exception as exc:  # any mail server failure: retried by the sweep once the lease is over
        log.warning("attendee email %s (%s) not sent, will retry: %s", row.pk, row.kind, type(exc).__name__)
        AttendeeEmail.objects.filter(pk=row.pk).update(attempts=row.attempts + 1,
                                                       last_error=type(exc).__name__[:200])
        return False
    AttendeeEmail.objects.filter(pk=row.pk).update(sent_at=timezone.now(), lease_until=None,
                                                   attempts=row.attempts + 1,
                                                   last_error="" if message is not None else "nothing to send")
    return message is not None


def sweep(now: datetime | None = None, limit: int = 200) -> int:
    """Send what should have gone out and did not (a lost task, a mail server down), oldest
    first, for up to CONFIRMATION_GIVE_UP_HOURS. Returns how many were sent."""
    now = now or timezone.now()
    forget_order_links(now)
    due = (AttendeeEmail.objects
           .filter(sent_at__isnull=True, created_at__gt=now - timedelta(hours=settings.CONFIRMATION_GIVE_UP_HOURS))
           .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
           .order_by("created_at").values_list("key", flat=True)[:limit])
    return sum(send(key, now=now) for key in list(due))


def forget_order_links(now: datetime) -> int:
    """Find my order's requests hold addresses people typed, orders or not: kept only as long
    as their rate limit and their sending need them, then deleted."""
    keep = max(timedelta(seconds=settings.FIND_ORDER_WINDOW_SECONDS),
               timedelta(hours=settings.CONFIRMATION_GIVE_UP_HOURS))
    return AttendeeEmail.objects.filter(kind=Kind.ORDER_LINKS, created_at__lt=now - keep).delete()[0]


@dataclass(frozen=True)
class Sent:
    kind: str
    key: str
    to: str
    sent_at: datetime | None


def emails_for(session: CheckoutSession | int) -> list[Sent]:
    """The emails of an order, queued or sent, oldest first: one per change told."""
    pk = session.pk if isinstance(session, CheckoutSession) else session
    return [Sent(*row) for row in AttendeeEmail.objects.filter(session_id=pk).order_by("id")
            .values_list("kind", "key", "to", "sent_at")]


# --- What each email says -------------------------------------------------------------------
REFUND_TIMING = {
    "card": gettext_lazy("The money goes back to the card you paid with; banks usually show it within 5 to 10 "
                         "working days."),
    "mbway": gettext_lazy("The money goes back to your MB WAY account, usually within a few working days."),
    "multibanco": gettext_lazy("A Multibanco payment cannot be reversed automatically: the organizer gives the money "
                               "back another way (usually a bank transfer) and will contact you if they need your "
                               "IBAN."),
    "sandbox": gettext_lazy("This was a test payment: no real money moved."),
    "outside": gettext_lazy("The organizer gave the money back outside iEvents (a bank transfer, say). If it has not "
                            "arrived, contact them."),
}


def refund_timing(method: str, outside: bool) -> str:
    if method == "sandbox":
        return str(REFUND_TIMING["sandbox"])
    if outside:
        return str(REFUND_TIMING["outside"])
    return str(REFUND_TIMING.get(method, REFUND_TIMING["card"]))


def build(row: AttendeeEmail) -> EmailMultiAlternatives | None:
    """The email a row stands for, in the active language; None when there is nothing to say."""
    if row.kind == Kind.ORDER_LINKS:
        return _order_links(row)
    session = row.session
    if row.kind == Kind.TICKETS:
        order = (CheckoutSession.objects.select_related("event", "organization")
                 .prefetch_related("tickets__ticket_type").get(pk=session.pk))
        ticket_email = emails.build(order)
        return emails.message(emails.TicketEmail(to=row.to, subject=ticket_email.subject, body=ticket_email.body,
                                                 html=ticket_email.html, images=ticket_email.images,
                                                 calendar=ticket_email.calendar, calendar_name=ticket_email.calendar_name))
    subject, lines = _notice(row, session)
    context = {**emails.order_context(session), "lines": lines, "heading": subject,
               "order_link": order_links.url_for(session) if session.customer_email else ""}
    return _message(row.to, subject, "checkout/email/notice", context)


def _money(params: dict, session: CheckoutSession, name: str = "amount") -> str:
    return format_money(params.get(name, 0), session.currency)


def _notice(row: AttendeeEmail, session: CheckoutSession) -> tuple[str, list[str]]:
    """The subject and the paragraphs of a notice."""
    p, event = row.params, session.event.name
    reference = formatting.order_reference(session.public_id)
    if row.kind == Kind.REFUND:
        amount = _money(p, session)
        lines = [gettext("We refunded %(amount)s of your order %(reference)s.") % {"amount": amount,
                                                                                  "reference": reference}]
        voided = p.get("voided", [])
        if p.get("full"):
            lines.append(gettext("Every ticket of this order is now void and will not be accepted at the door."))
        elif voided:
            lines.append(ngettext("This ticket is now void: %(codes)s.", "These tickets are now void: %(codes)s.",
                                  len(voided)) % {"codes": ", ".join(voided)}
                         + " " + gettext("Your other tickets are still valid."))
        lines.append(refund_timing(p.get("method", ""), p.get("outside", False)))
        return gettext("Refund of %(amount)s for %(event)s") % {"amount": amount, "event": event}, lines
    if row.kind == Kind.CANCELED:
        if p.get("by") == "organizer":
            lines = [gettext("The organizer canceled your order %(reference)s.") % {"reference": reference}]
            if p.get("reason"):
                lines.append(gettext("Their reason: %(reason)s") % {"reason": p["reason"]})
        else:
            lines = [gettext("Your order %(reference)s was canceled, as you asked.") % {"reference": reference}]
        if p.get("refunded"):
            lines.append(gettext("The %(amount)s you paid is being refunded.") % {"amount": _money(p, session,
                                                                                                "refunded")})
            lines.append(refund_timing(p.get("method", ""), p.get("outside", False)))
        else:
            lines.append(gettext("Nothing was charged, and the tickets it held were released."))
        return gettext("Your order for %(event)s was canceled") % {"event": event}, lines
    if row.kind == Kind.EMAIL_CHANGED:
        lines = [gettext("The email address of your order %(reference)s was changed to %(address)s. Its tickets "
                         "are now sent there.") % {"reference": reference, "address": p.get("new", "")},
                 gettext("If you did not ask for this, contact the organizer.")]
        return gettext("The email address of your order for %(event)s changed") % {"event": event}, lines
    if row.kind == Kind.REMINDER:
        deadline = p.get("deadline_at")
        when = formatting.datetime_in_zone(datetime.fromisoformat(deadline), session.event.timezone) if deadline else ""
        lines = [gettext("Your order %(reference)s is waiting for its Multibanco payment. Your tickets are held "
                         "until %(when)s.") % {"reference": reference, "when": when},
                 gettext("Entity: %(entity)s · Reference: %(mb_reference)s · Amount: %(amount)s") % {
                     "entity": p.get("entity", ""), "mb_reference": p.get("reference", ""),
                     "amount": _money(p, session)},
                 gettext("After that the reference expires and the tickets are released.")]
        return gettext("Reminder: pay for your tickets to %(event)s") % {"event": event}, lines
    if row.kind == Kind.FLAGGED:
        lines = [gettext("We received your payment for order %(reference)s, but could not issue its tickets "
                         "(the tickets sold out, or your details changed after the payment started).")
                 % {"reference": reference},
                 gettext("The organizer has been told and will refund you or contact you.")]
        return gettext("Your order for %(event)s needs the organizer") % {"event": event}, lines
    if row.kind == Kind.RESOLVED:
        lines = [gettext("The organizer looked into your order %(reference)s.") % {"reference": reference}]
        if p.get("note"):
            lines.append(gettext("Their note: %(note)s") % {"note": p["note"]})
        return gettext("News about your order for %(event)s") % {"event": event}, lines
    raise ValueError(f"unknown attendee email kind {row.kind!r}")


def _order_links(row: AttendeeEmail) -> EmailMultiAlternatives | None:
    orders = (CheckoutSession.objects.select_related("event", "organization")
              .filter(customer_email__iexact=row.to, personal_data_erased_at__isnull=True)
              .exclude(customer_email="").order_by("-created_at"))
    if row.organization_id is not None:
        orders = orders.filter(organization_id=row.organization_id)
    orders = list(orders[:20])
    if not orders:
        return None  # nobody learns that: the page said the same, and nothing is sent
    found = [{"event": order.event.name, "reference": formatting.order_reference(order.public_id),
              "when": formatting.datetime_in_zone(order.event.starts_at, order.event.timezone),
              "link": order_links.url_for(order)}
             for order in orders]
    if row.organization is not None:
        subject = gettext("Your orders with %(organizer)s") % {"organizer": row.organization.name}
    else:
        subject = gettext("Your orders")
    context = {"heading": subject, "orders": found, "days": settings.ORDER_LINK_MAX_AGE_DAYS}
    return _message(row.to, subject, "checkout/email/order_links", context)


def _message(to: str, subject: str, template: str, context: dict) -> EmailMultiAlternatives:
    out = EmailMultiAlternatives(subject, render_to_string(f"{template}.txt", context), settings.DEFAULT_FROM_EMAIL,
                                 [to])
    out.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return out
