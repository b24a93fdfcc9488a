"""What an organizer does to an order from the admin: cancel it, send the tickets again,
resolve a flag. Money going back is ``payments.refunds``.

Every action is written to the order's history (``OrderAction``: what, who, the note), and
those that change the order's state go through ``checkout.state``, which records the
``Transition`` and announces it to the organizer's endpoints.
"""

from __future__ import annotations

from collections import Counter

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from . import attendee_emails, inventory, state
from . import services as checkout
from .models import PAID_STATUSES, WITH_VALID_TICKETS, CheckoutSession, OrderAction, Source, Ticket


class OrderActionRefused(Exception):
    """The action does not apply to this order as it is now; the message says why, for people."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# Orders whose money can go back (``payments.refunds``) and whose tickets can be sent again.

def who(user) -> str:
    # Written into the order's stored history, which is kept in English.
    return (user.get_full_name() or user.get_username()) if user is not None else "someone"


def record(session: CheckoutSession, kind: str, by, summary: str, note: str = "") -> OrderAction:
    return OrderAction.objects.create(session=session, kind=kind, by=by, summary=summary[:300], note=note[:500])


def can_cancel(session: CheckoutSession) -> bool:
    """Unpaid orders are canceled; paid ones only with a full refund of what is left."""
    return state.can_apply(session.status, "cancel") or (
        session.status in PAID_STATUSES and session.amount_paid > session.amount_refunded)


def available_actions(session: CheckoutSession) -> list[str]:
    """The actions that apply to the order as it is now, in the order its page shows them."""
    actions = []
    if session.status in PAID_STATUSES and session.amount_paid > session.amount_refunded:
        actions.append("refund")
    if can_cancel(session):
        actions.append("cancel")
    if session.status in WITH_VALID_TICKETS:
        actions.append("resend")
    if session.needs_attention:
        actions.append("resolve")
    return actions


def cancel_order(session: CheckoutSession, *, by, note: str = "") -> CheckoutSession:
    """Cancel an unpaid order: its tickets' hold ends (``checkout.services.cancel_session``).
    A paid order is canceled only with a full refund (``payments.refunds.cancel_paid_order``)."""
    note = note.strip()
    if session.status in PAID_STATUSES:
        raise OrderActionRefused(gettext("A paid order is canceled together with a full refund."))
    detail = f"Canceled by {who(by)}" + (f": {note}" if note else "")
    with transaction.atomic():
        try:
            canceled = checkout.cancel_session(session.pk, Source.ADMIN, detail=detail)
        except state.InvalidTransition:
            raise OrderActionRefused(gettext("This order can no longer be canceled.")) from None
        record(canceled, OrderAction.Kind.CANCEL, by, f"Canceled by {who(by)}; the tickets held went back on sale",
               note)
        attendee_emails.queue(canceled, attendee_emails.Kind.CANCELED, f"canceled:{canceled.pk}:{canceled.version}",
                              params={"by": "organizer", "reason": note})
    return canceled


def cancel_by_attendee(session: CheckoutSession) -> CheckoutSession:
    """The attendee gives up an unpaid order: its hold ends, and they get a note saying that
    nothing was charged. Raises ``state.InvalidTransition`` when it can no longer be canceled."""
    with transaction.atomic():
        canceled = checkout.cancel_session(session.pk, Source.ATTENDEE, detail="canceled by the attendee")
        attendee_emails.queue(canceled, attendee_emails.Kind.CANCELED, f"canceled:{canceled.pk}:{canceled.version}",
                              params={"by": "attendee"})
    return canceled


def record_refunded(locked: CheckoutSession, total: int) -> None:
    """The money given back on the order so far is ``total``: the one writer of
    ``amount_refunded``, which never goes down nor past what was paid. A refund from the
    admin passes what the order showed plus its own amount; a provider's news its own total.
    ``locked``: read under its lock in this transaction (both callers hold it)."""
    locked.amount_refunded = max(locked.amount_refunded, min(total, locked.amount_paid))
    CheckoutSession.objects.filter(pk=locked.pk).update(amount_refunded=locked.amount_refunded)


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


def settle_full_refund(session: CheckoutSession, *, restock: bool) -> list[Ticket]:
    """All the order's money went back: its valid tickets are voided (their seats back on
    sale with ``restock``), and an order that never had tickets (paid, flagged, refunded)
    gives back the seats it still held — it has ended, nobody will use them. Runs under the
    order's lock, in its caller's transaction."""
    voided = void_tickets(session, None, restock=restock)
    if not Ticket.objects.filter(session=session).exists():
        checkout.release_hold(session)
    return voided


def resend_tickets(session: CheckoutSession, *, to: str | None = None, by) -> str:
    """Send the ticket email again, to the order's address or a corrected one (which then
    becomes the order's address, the correction is recorded, and the old address gets a
    notice). Queued with the change (``checkout.attendee_emails``). Returns the address."""
    to = (to or "").strip()
    if session.status not in WITH_VALID_TICKETS:
        raise OrderActionRefused(gettext("Only a completed order has tickets to send."))
    if to:
        try:
            validate_email(to)
        except ValidationError:
            raise OrderActionRefused(gettext("“%(email)s” is not an email address.") % {"email": to}) from None
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().get(pk=session.pk)
        before = locked.customer_email
        address = to or before
        if not address:
            raise OrderActionRefused(gettext("This order has no email address: give one to send the tickets to."))
        if not Ticket.objects.filter(session=locked, voided_at__isnull=True).exists():
            raise OrderActionRefused(gettext("Every ticket of this order was voided: there is nothing to send."))
        if to and to.lower() != before.lower():
            CheckoutSession.objects.filter(pk=locked.pk).update(customer_email=to)
            locked.customer_email = to
            changed = record(locked, OrderAction.Kind.RESEND, by,
                             f"Email corrected by {who(by)} from {before or '(none)'} to {to}")
            if before:
                attendee_emails.queue(locked, attendee_emails.Kind.EMAIL_CHANGED, f"email_changed:{changed.pk}",
                                      to=before, params={"new": attendee_emails.masked(to)})
        sent = record(locked, OrderAction.Kind.RESEND, by, f"Tickets sent again to {address} by {who(by)}")
        attendee_emails.queue(locked, attendee_emails.Kind.TICKETS, f"tickets:{sent.pk}", to=address)
    return address


def resend_to_attendee(session: CheckoutSession) -> bool:
    """The attendee asks for their tickets again (from their order's link): the receipt,
    to the order's address only. False when the order has no valid tickets."""
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().get(pk=session.pk)
        if locked.status not in WITH_VALID_TICKETS or not locked.customer_email or not Ticket.objects.filter(
                session=locked, voided_at__isnull=True).exists():
            return False
        sent = record(locked, OrderAction.Kind.RESEND, None, f"Tickets sent again to {locked.customer_email}, "
                                                            "asked by the attendee")
        return attendee_emails.queue(locked, attendee_emails.Kind.TICKETS, f"tickets:{sent.pk}")


def resolve_attention(session: CheckoutSession, *, by, note: str, tell_attendee: bool = False) -> CheckoutSession:
    """Clear the order's "needs attention" flag, saying what was done about it; with
    ``tell_attendee``, the note is emailed to the attendee too."""
    note = note.strip()
    if not note:
        raise OrderActionRefused(gettext("Say what was done about it: a note is required."))
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().get(pk=session.pk)
        if not locked.needs_attention:
            raise OrderActionRefused(gettext("This order is not flagged: there is nothing to resolve."))
        reason = locked.needs_attention
        CheckoutSession.objects.filter(pk=locked.pk).update(needs_attention="")
        action = record(locked, OrderAction.Kind.RESOLVE, by, f"Resolved by {who(by)}: “{reason}”", note)
        if tell_attendee:
            attendee_emails.queue(locked, attendee_emails.Kind.RESOLVED, f"resolved:{action.pk}", params={"note": note})
        locked.needs_attention = ""
    return locked
