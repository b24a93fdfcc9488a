"""What an organizer does to an order from the admin: cancel it, send the tickets again,
resolve a flag. Money going back is ``payments.refunds``.

Every action is written to the order's history (``OrderAction``: what, who, the note), and
those that change the order's state go through ``checkout.state``, which records the
``Transition`` and announces it to the organizer's endpoints.
"""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from ievents.admin_money import format_money

from . import inventory, state
from . import services as checkout
from .models import CheckoutSession, OrderAction, Source, Status, Ticket


class OrderActionRefused(Exception):
    """The action does not apply to this order as it is now; the message says why, for people."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# Orders whose money can go back (``payments.refunds``) and whose tickets can be sent again.
PAID_STATES = {Status.PAID, Status.COMPLETED, Status.PARTIALLY_REFUNDED}
WITH_TICKETS = {Status.COMPLETED, Status.PARTIALLY_REFUNDED}

def money_text(minor: int, currency: str) -> str:
    """2500, "EUR" → "€25.00": the back office's way of writing money (``ievents.admin_money``)."""
    return format_money(minor, currency)


def who(user) -> str:
    return (user.get_full_name() or user.get_username()) if user is not None else "someone"


def record(session: CheckoutSession, kind: str, by, summary: str, note: str = "") -> OrderAction:
    return OrderAction.objects.create(session=session, kind=kind, by=by, summary=summary[:300], note=note[:500])


def can_cancel(session: CheckoutSession) -> bool:
    """Unpaid orders are canceled; paid ones only with a full refund of what is left."""
    return state.can_apply(session.status, "cancel") or (
        session.status in PAID_STATES and session.amount_paid > session.amount_refunded)


def available_actions(session: CheckoutSession) -> list[str]:
    """The actions that apply to the order as it is now, in the order its page shows them."""
    actions = []
    if session.status in PAID_STATES and session.amount_paid > session.amount_refunded:
        actions.append("refund")
    if can_cancel(session):
        actions.append("cancel")
    if session.status in WITH_TICKETS:
        actions.append("resend")
    if session.needs_attention:
        actions.append("resolve")
    return actions


def cancel_order(session: CheckoutSession, *, by, note: str = "") -> CheckoutSession:
    """Cancel an unpaid order: its tickets' hold ends (``checkout.services.cancel_session``).
    A paid order is canceled only with a full refund (``payments.refunds.cancel_paid_order``)."""
    note = note.strip()
    if session.status in PAID_STATES:
        raise OrderActionRefused("A paid order is canceled together with a full refund.")
    detail = f"Canceled by {who(by)}" + (f": {note}" if note else "")
    with transaction.atomic():
        try:
            canceled = checkout.cancel_session(session.pk, Source.ADMIN, detail=detail)
        except state.InvalidTransition:
            raise OrderActionRefused("This order can no longer be canceled.") from None
        record(canceled, OrderAction.Kind.CANCEL, by, f"Canceled by {who(by)}; the tickets held went back on sale",
               note)
    return canceled


def void_tickets(session: CheckoutSession, ticket_ids: list[int] | None, *, restock: bool) -> list[Ticket]:
    """Void the order's tickets given (every valid one when None). With ``restock`` their
    seats go back on sale. Runs under the order's lock, in its caller's transaction."""
    valid = Ticket.objects.filter(session=session, voided_at__isnull=True)
    if ticket_ids is not None:
        valid = valid.filter(pk__in=ticket_ids)
    voided = list(valid)
    if not voided:
        return []
    # A paid order whose hold had already ended (paid late, sold out) holds no seats to give back.
    restock = restock and not session.holds_released
    Ticket.objects.filter(pk__in=[t.pk for t in voided]).update(voided_at=timezone.now(), back_on_sale=restock)
    if restock:
        inventory.release(dict(Counter(t.ticket_type_id for t in voided)))
    return voided


def settle_full_refund(session: CheckoutSession, *, restock: bool) -> None:
    """All the order's money went back: its valid tickets are voided (their seats back on
    sale with ``restock``), and an order that never had tickets (paid, flagged, refunded)
    gives back the seats it still held — it has ended, nobody will use them. Runs under the
    order's lock, in its caller's transaction."""
    void_tickets(session, None, restock=restock)
    if not Ticket.objects.filter(session=session).exists():
        checkout.release_hold(session)


def resend_tickets(session: CheckoutSession, *, to: str | None = None, by) -> str:
    """Send the ticket email again, to the order's address or a corrected one (which then
    becomes the order's address, and the correction is recorded). Returns the address."""
    to = (to or "").strip()
    if session.status not in WITH_TICKETS:
        raise OrderActionRefused("Only a completed order has tickets to send.")
    if to:
        try:
            validate_email(to)
        except ValidationError:
            raise OrderActionRefused(f"“{to}” is not an email address.") from None
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().get(pk=session.pk)
        before = locked.customer_email
        if to and to.lower() != before.lower():
            CheckoutSession.objects.filter(pk=locked.pk).update(customer_email=to)
            record(locked, OrderAction.Kind.RESEND, by, f"Email corrected by {who(by)} from {before or '(none)'} to {to}")
    address = to or before
    if not address:
        raise OrderActionRefused("This order has no email address: give one to send the tickets to.")
    valid = Ticket.objects.filter(voided_at__isnull=True).select_related("ticket_type")
    order = (CheckoutSession.objects.select_related("event")
             .prefetch_related(Prefetch("tickets", queryset=valid)).get(pk=session.pk))
    if not order.tickets.all():
        raise OrderActionRefused("Every ticket of this order was voided: there is nothing to send.")
    email = checkout.confirmation_email(order)
    try:
        send_mail(email.subject, email.body, settings.DEFAULT_FROM_EMAIL, [address])
    except Exception as exc:  # any mail server failure is the organizer's to know, not a 500
        raise OrderActionRefused(f"The email could not be sent ({type(exc).__name__}); try again later.") from exc
    record(order, OrderAction.Kind.RESEND, by, f"Tickets sent again to {address} by {who(by)}")
    return address


def resolve_attention(session: CheckoutSession, *, by, note: str) -> CheckoutSession:
    """Clear the order's "needs attention" flag, saying what was done about it."""
    note = note.strip()
    if not note:
        raise OrderActionRefused("Say what was done about it: a note is required.")
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().get(pk=session.pk)
        if not locked.needs_attention:
            raise OrderActionRefused("This order is not flagged: there is nothing to resolve.")
        reason = locked.needs_attention
        CheckoutSession.objects.filter(pk=locked.pk).update(needs_attention="")
        record(locked, OrderAction.Kind.RESOLVE, by, f"Resolved by {who(by)}: “{reason}”", note)
        locked.needs_attention = ""
    return locked
