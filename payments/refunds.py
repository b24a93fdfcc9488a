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
from django.db.models import F

from checkout import state
from checkout.models import CheckoutSession, OrderAction, Source
from checkout.order_actions import (
    PAID_STATES,
    OrderActionRefused,
    money_text,
    record,
    settle_full_refund,
    void_tickets,
    who,
)

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
    if session.status not in PAID_STATES:
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
           tickets: list[int] | None = None, outside: bool = False) -> Refund:
    """Give ``amount`` (minor units) of the order's money back, and record it.

    ``outside``: the money went back another way (a bank transfer); recorded with a note.
    ``tickets``: for a partial refund, the tickets it voids (a full refund voids them all).
    ``restock``: put the voided tickets' seats back on sale. ``key``: one per click.
    Raises ``RefundRefused`` (not refundable as asked) or ``RefundFailed`` (the provider).
    """
    note = note.strip()[:500]
    if not key:
        raise ValueError("a refund needs an idempotency key")
    if outside and not note:
        raise RefundRefused("Say how the money was given back: a note is required for a refund made outside.")
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update(of=("self",)).select_related("organization").get(pk=session.pk)
        done = Refund.objects.filter(idempotency_key=key).first()
        if done is not None:
            if done.session_id != locked.pk:
                raise RefundRefused("This form was already used for another order: open the refund page again.")
            return done  # the same click, twice
        left = refundable_amount(locked)
        if left <= 0:
            raise RefundRefused("This order has nothing left to refund.")
        if amount <= 0:
            raise RefundRefused("Give an amount above zero.")
        if amount > left:
            raise RefundRefused(f"At most {money_text(left, locked.currency)} is left to refund.")
        payment = paid_payment(locked)
        if payment is None:
            raise RefundRefused("This order has no payment to refund: record a refund made outside instead.")
        public_id = "rf_" + hashlib.sha256(key.encode()).hexdigest()[:24]  # the same click, the same refund
        result = _ask_provider(locked, payment, amount, public_id) if not outside else RefundResult("")
        made = Refund.objects.create(
            session=locked, payment=payment, public_id=public_id, amount=amount, currency=locked.currency,
            provider=payment.provider, provider_reference=result.provider_reference, made_outside=outside,
            status=result.status, idempotency_key=key, by=by, note=note,
        )
        _record(locked, made, left, by=by, note=note, restock=restock, tickets=tickets)
    return made


def _ask_provider(session: CheckoutSession, payment: Payment, amount: int, key: str) -> RefundResult:
    provider = get_provider(payment.provider, session.organization)
    if not provider.can_refund(payment):
        raise RefundRefused(f"{provider.label} has no refund API for this payment: give the money back another way "
                            f"(a bank transfer) and record it as refunded outside, with a note.")
    payment.session = session
    try:
        return provider.refund(payment, amount, key=key)
    except ProviderError as exc:
        raise RefundFailed(f"{provider.label} did not refund: {exc}") from exc


def _record(session: CheckoutSession, made: Refund, left: int, *, by, note: str, restock: bool,
            tickets: list[int] | None) -> None:
    full = made.amount == left
    words = f"Refunded {money_text(made.amount, made.currency)}"
    if made.made_outside:
        words += " (made outside)"
    detail = f"{words} by {who(by)}" + (f": {note}" if note else "")

    # Before the transition, which reads the order again under the same lock: the
    # announcement (``checkout.session.refunded``) shows the amount refunded.
    CheckoutSession.objects.filter(pk=session.pk).update(amount_refunded=F("amount_refunded") + made.amount)
    state.apply(session.pk, "refund" if full else "partial_refund", Source.ADMIN, detail=detail)
    if full:
        settle_full_refund(session, restock=restock)
    else:
        void_tickets(session, tickets or [], restock=restock)
    if full:
        Payment.objects.filter(pk=made.payment_id).update(status=Payment.Status.REFUNDED)
    record(session, OrderAction.Kind.REFUND, by, detail, note)


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
    made = refund(session, left, by=by, note=note, restock=True, key=key)
    record(session, OrderAction.Kind.CANCEL, by,
           f"Canceled by {who(by)}, with a refund of {money_text(made.amount, made.currency)}", note)
    return CheckoutSession.objects.get(pk=session.pk)
