"""Refunds from the admin: money given back through the provider's refund API, or made
outside it and recorded here (a paid Multibanco reference has no refund API).

The rules, in one place:

- only a paid order is refunded, and never more than is left (paid − refunded);
- the order's row is locked from the check to the record, the provider's call included,
  so two clicks, two organizers, or the provider's own news of this refund arriving
  meanwhile wait for it and then find it recorded;
- each click carries an idempotency key (the form's token): the same form sent twice
  refunds once, and the provider is given a key derived from it where it takes one;
- the order moves to ``partially_refunded`` or ``refunded`` through ``checkout.state``
  (which records the transition and announces ``checkout.session.refunded``); refunded
  tickets are voided, and their seats go back on sale only when the organizer says so;
- the provider's later news of a refund we recorded changes nothing
  (``already_recorded``, asked by ``payments.services.apply_update``).

The provider is called under the order's lock, and so a slow provider holds that order's
webhooks for at most ``PAYMENT_PROVIDER_TIMEOUT``: a price worth paying for an action an
organizer takes by hand, against money going back twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext

from checkout import attendee_emails, promo, state
from checkout.models import PAID_STATUSES, CheckoutSession, OrderAction, Source
from checkout.order_actions import (
    OrderActionRefused,
    record,
    record_refunded,
    settle_full_refund,
    void_tickets,
    who,
)
from ievents.money import format_money

from .base import PaymentUpdate, ProviderError, RefundResult, UpdateKind
from .models import Payment, Refund
from .registry import get_provider


class RefundRefused(Exception):
    """This refund cannot be made as asked; the message says why, for people."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RefundFailed(Exception):
    """The provider refused or could not be reached: no money moved and nothing was recorded."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RefundPlan:
    """What a refund of this order would be, for the confirmation page."""

    refundable: int  # minor units left to refund
    currency: str
    payment: Payment | None
    through_provider: bool  # False: only a refund made outside can be recorded
    provider_label: str


def paid_payment(session: CheckoutSession) -> Payment | None:
    """The payment whose money the order kept (the newest that succeeded)."""
    return (Payment.objects.filter(session=session, status__in=[Payment.Status.SUCCEEDED, Payment.Status.REFUNDED])
            .order_by("-id").first())


def refundable_amount(session: CheckoutSession) -> int:
    if session.status not in PAID_STATUSES:
        return 0
    return max(session.amount_paid - session.amount_refunded, 0)


def plan(session: CheckoutSession) -> RefundPlan:
    payment = paid_payment(session)
    through, label = False, ""
    if payment is not None:
        provider = get_provider(payment.provider, session.organization)
        through, label = provider.can_refund(payment), provider.label
    return RefundPlan(refundable_amount(session), session.currency, payment, through, label)


def refund(session: CheckoutSession, amount: int, *, by, note: str = "", restock: bool = False, key: str,
           tickets: list[int] | None = None, outside: bool = False, canceling: bool = False) -> Refund:
    """Give ``amount`` (minor units) of the order's money back, and record it.

    ``outside``: the money went back another way (a bank transfer); recorded with a note.
    ``tickets``: for a partial refund, the tickets it voids (a full refund voids them all).
    ``restock``: put the voided tickets' seats back on sale. ``key``: one per click.
    ``canceling``: the refund cancels the order, and the attendee is told that (once).
    Raises ``RefundRefused`` (not refundable as asked) or ``RefundFailed`` (the provider).
    """
    note = note.strip()[:500]
    if not key:
        raise ValueError("a refund needs an idempotency key")
    if outside and not note:
        raise RefundRefused(gettext("Say how the money was given back: a note is required for a refund made outside."))
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update(of=("self",)).select_related("organization").get(pk=session.pk)
        done = Refund.objects.filter(idempotency_key=key).first()
        if done is not None:
            if done.session_id != locked.pk:
                raise RefundRefused(gettext("This form was already used for another order: open the refund page again."))
            return done  # the same click, twice
        left = refundable_amount(locked)
        if left <= 0:
            raise RefundRefused(gettext("This order has nothing left to refund."))
        if amount <= 0:
            raise RefundRefused(gettext("Give an amount above zero."))
        if amount > left:
            raise RefundRefused(gettext("At most %(amount)s is left to refund.") % {
                "amount": format_money(left, locked.currency)})
        payment = paid_payment(locked)
        if payment is None:
            raise RefundRefused(gettext("This order has no payment to refund: record a refund made outside instead."))
        public_id = "rf_" + hashlib.sha256(key.encode()).hexdigest()[:24]  # the same click, the same refund
        result = _ask_provider(locked, payment, amount, public_id) if not outside else RefundResult("")
        made = Refund.objects.create(
            session=locked, payment=payment, public_id=public_id, amount=amount, currency=locked.currency,
            provider=payment.provider, provider_reference=result.provider_reference, made_outside=outside,
            status=result.status, idempotency_key=key, by=by, note=note,
        )
        _record(locked, made, left, by=by, note=note, restock=restock, tickets=tickets, canceling=canceling)
    return made


def _ask_provider(session: CheckoutSession, payment: Payment, amount: int, key: str) -> RefundResult:
    provider = get_provider(payment.provider, session.organization)
    if not provider.can_refund(payment):
        raise RefundRefused(gettext("%(provider)s has no refund API for this payment: give the money back another way "
                                    "(a bank transfer) and record it as refunded outside, with a note.")
                            % {"provider": provider.label})
    payment.session = session
    try:
        return provider.refund(payment, amount, key=key)
    except ProviderError as exc:
        raise RefundFailed(gettext("%(provider)s did not refund: %(error)s") % {
            "provider": provider.label, "error": exc}) from exc


def _record(session: CheckoutSession, made: Refund, left: int, *, by, note: str, restock: bool,
            tickets: list[int] | None, canceling: bool = False) -> None:
    full = made.amount == left
    # The order's stored history is kept in English, money as English writes it.
    words = f"Refunded {format_money(made.amount, made.currency, 'en')}"
    if made.made_outside:
        words += " (made outside)"
    detail = f"{words} by {who(by)}" + (f": {note}" if note else "")

    # Before the transition, which reads the order again under the same lock: the
    # announcement (``checkout.session.refunded``) shows the amount refunded.
    record_refunded(session, session.amount_refunded + made.amount)
    state.apply(session.pk, "refund" if full else "partial_refund", Source.ADMIN, detail=detail)
    if full:
        voided = settle_full_refund(session, restock=restock)
    else:
        voided = void_tickets(session, tickets or [], restock=restock)
    if full:
        Payment.objects.filter(pk=made.payment_id).update(status=Payment.Status.REFUNDED)
        promo.release_uses(session, refunded=True)  # if its code gives uses back on a refund
    record(session, OrderAction.Kind.REFUND, by, detail, note)
    _tell_attendee(session, made, full=full, voided=[t.code for t in voided], canceling=canceling, note=note)


def _tell_attendee(session: CheckoutSession, made: Refund, *, full: bool, voided: list[str], canceling: bool,
                   note: str) -> None:
    """The attendee's email about this refund, written with it (``checkout.attendee_emails``):
    how much, which tickets are void, and when the money arrives by the way it was paid."""
    method = "sandbox" if made.provider == "sandbox" else (made.payment.method or "card")
    money = {"method": method, "outside": made.made_outside}
    if canceling:
        attendee_emails.queue(session, attendee_emails.Kind.CANCELED, f"canceled:{made.public_id}",
                              params={"by": "organizer", "reason": note, "refunded": made.amount, **money})
    else:
        attendee_emails.queue(session, attendee_emails.Kind.REFUND, f"refund:{made.public_id}",
                              params={"amount": made.amount, "full": full, "voided": voided, **money})


def already_recorded(session: CheckoutSession, update: PaymentUpdate) -> bool:
    """True for a provider's news of a refund the order already shows, so that
    ``payments.services.apply_update`` changes nothing: it names a refund made from the
    admin (Easypay's notification carries the refund's id), or the total it says was
    refunded is no more than the order's (Stripe's ``charge.refunded`` and ``refund.created``
    carry the charge's total). ``session``: read under its lock in this transaction."""
    if update.kind not in (UpdateKind.REFUNDED, UpdateKind.PARTIALLY_REFUNDED):
        return False
    if update.amount is not None:
        return 0 < update.amount <= session.amount_refunded
    return bool(update.provider_reference) and Refund.objects.filter(
        session=session, provider_reference=update.provider_reference).exists()


def cancel_paid_order(session: CheckoutSession, *, by, note: str = "", key: str) -> CheckoutSession:
    """Cancel a paid order: a full refund of what is left, its tickets voided and put back on
    sale (``key``: the refund's idempotency key, one per click)."""
    note = note.strip()
    left = session.amount_paid - session.amount_refunded
    if left <= 0:
        raise OrderActionRefused("This order has nothing left to refund, so there is nothing to cancel.")
    made = refund(session, left, by=by, note=note, restock=True, key=key, canceling=True)
    record(session, OrderAction.Kind.CANCEL, by,
           f"Canceled by {who(by)}, with a refund of {format_money(made.amount, made.currency, 'en')}", note)
    return CheckoutSession.objects.get(pk=session.pk)
