"""Payments as plain functions: start one, and apply what a provider tells us.

``apply_update`` is the one place where provider news becomes checkout state, whether it
came from the return page (sync-on-return) or from a webhook.
"""

from __future__ import annotations

import logging

from django.db import transaction

from checkout import services as checkout
from checkout import state
from checkout.models import CheckoutSession, Status
from ievents import writes

from .base import PaymentDetailsRejected, PaymentUpdate, ProviderError, UpdateKind
from .models import IntegrationSettings, Payment
from .registry import get_provider

log = logging.getLogger(__name__)


def create_payment(session: CheckoutSession, provider: str, *, method: str = "") -> Payment:
    return Payment.objects.create(
        session=session, provider=provider, method=method, amount=session.amount_total, currency=session.currency
    )


def start_payment(payment: Payment, *, method: str = "", phone: str = "") -> Payment:
    """Ask the provider to start ``payment``. Raises ``PaymentStartFailed`` if it can't."""
    from django.conf import settings
    from django.urls import reverse

    session = payment.session
    base = settings.PUBLIC_BASE_URL
    return_url = base + reverse("checkout:return", args=[session.public_id]) + f"?payment={payment.public_id}"
    cancel_url = base + reverse("checkout:review", args=[session.public_id])
    try:
        provider = get_provider(payment.provider, session.organization)
        result = provider.start(payment, session, return_url=return_url, cancel_url=cancel_url,
                                method=method, phone=phone)
    except PaymentDetailsRejected as exc:
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED)
        raise checkout.PaymentStartFailed(str(exc)) from exc
    except ProviderError as exc:
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED)
        log.warning("payment %s could not start: %s", payment.public_id, exc)
        raise checkout.PaymentStartFailed("The payment could not be started. Please try again or choose another method.") from exc
    payment.provider_reference = result.provider_reference
    payment.redirect_url = result.redirect_url
    payment.method = result.method or payment.method
    payment.instructions = {**payment.instructions, **result.instructions}
    payment.status = Payment.Status.PENDING
    payment.save()
    deadline = result.instructions.get("deadline_at")
    if deadline and result.provider_reference and result.instructions.get("reference"):
        # A Multibanco reference is paid at an ATM, maybe tomorrow: keep the tickets until
        # then, if the provider gave one, and no longer than checkout.limits allows.
        from django.utils.dateparse import parse_datetime

        from checkout.limits import pending_hold_until

        checkout.extend_hold(session.pk, pending_hold_until(session, parse_datetime(deadline)))
    return payment


def find_session(update: PaymentUpdate, organization_id: int | None, provider: str = "", *,
                 lock: bool = False) -> CheckoutSession | None:
    """The session an update is about, only within the organization it came for.

    An update verified with the environment's secret (org ``_``) may only touch sessions of
    organizations that have no webhook secret of their own for that provider: whoever holds
    the platform's secret must not reach a tenant that chose its own.

    ``lock``: read it under its row lock (``state.lock``; inside the caller's transaction),
    ready for ``apply_update``, in the statement that finds it.
    """
    if "\x00" in update.session_public_id + update.provider_reference:
        return None  # no id of ours contains NUL, and PostgreSQL would refuse the query
    if lock and organization_id is not None and update.session_public_id:
        return state.lock_by_public_id(organization_id, update.session_public_id)  # the common case, written out
    sessions = CheckoutSession.objects.all()
    if organization_id is not None:
        sessions = sessions.filter(organization_id=organization_id)
    else:
        own_secret = IntegrationSettings.objects.filter(provider=provider).exclude(webhook_secret="")
        sessions = sessions.exclude(organization_id__in=own_secret.values("organization_id"))
    if update.session_public_id:
        sessions = sessions.filter(public_id=update.session_public_id)
    elif update.provider_reference:
        paid_with = Payment.objects.filter(provider_reference=update.provider_reference).values("session_id")
        sessions = sessions.filter(pk__in=paid_with)
    else:
        return None
    return state.lock(sessions) if lock else sessions.first()


# What each kind of update asks of the state machine (money-in is special: see below).
TRIGGER_FOR_KIND = {
    UpdateKind.PROCESSING: "processing",
    UpdateKind.AUTHORIZED: "authorize",
    UpdateKind.FAILED: "reject",
    UpdateKind.CAPTURE_FAILED: "fail_capture",
    UpdateKind.CANCELED: "cancel",
    UpdateKind.EXPIRED: "expire",
    UpdateKind.REFUNDED: "refund",
    UpdateKind.PARTIALLY_REFUNDED: "partial_refund",
}


def apply_update(session: CheckoutSession, update: PaymentUpdate, *, source: str) -> str:
    """Apply one provider update to a session. Returns ``"applied"`` or ``"ignored"``.

    Updates that would move the session backwards (``processing`` after ``paid``) have no
    row in the transition table: they are ignored, never applied.
    """
    # Within a caller's transaction (a webhook's), part of it: nothing here is retried on its
    # own, so a savepoint would only cost two statements. What it writes is gathered
    # (ievents.writes): the payment's status goes with the completion, in one statement.
    with transaction.atomic(savepoint=False), writes.gathering():
        # The session as ``find_session(lock=True)`` read it in this transaction, or read now.
        locked = session if state.is_locked(session) else state.lock(session.pk)
        if locked is None:
            raise CheckoutSession.DoesNotExist(f"no checkout session {session.pk}")
        if update.kind == UpdateKind.SUCCEEDED and _paid_twice(locked, update):
            return "applied"
        _record_on_payment(locked, update)
        if update.kind == UpdateKind.SUCCEEDED:
            before = locked.status
            after = checkout.record_payment_succeeded(
                locked, amount=update.amount, currency=update.currency, source=source, detail=update.detail
            )
            if after.status != before:
                return "applied"
            attention = CheckoutSession.objects.filter(pk=locked.pk).values_list("needs_attention", flat=True).get()
            return "applied" if attention != locked.needs_attention else "ignored"
        trigger = TRIGGER_FOR_KIND[update.kind]
        if not state.can_apply(locked.status, trigger):
            return "ignored"
        if trigger == "partial_refund" and update.amount is not None and update.amount <= locked.amount_refunded:
            return "ignored"  # the same refund told twice (charge.refunded and refund.created)
        if trigger in ("expire", "cancel"):
            checkout._end(locked.pk, trigger, source, update.detail)
        else:
            state.apply(locked, trigger, source, detail=update.detail)
            if trigger in ("refund", "partial_refund") and update.amount is not None:
                CheckoutSession.objects.filter(pk=locked.pk).update(amount_refunded=update.amount)
        return "applied"


def _paid_twice(session: CheckoutSession, update: PaymentUpdate) -> bool:
    """A second, different payment succeeded for an order already paid (a Multibanco
    reference paid at the ATM after the attendee switched to a card, say): that money must
    go back. Flag it once; news of the payment that did pay is not this."""
    if not update.provider_reference or session.status not in (Status.PAID, Status.COMPLETED):
        return False
    payments = Payment.objects.filter(session=session)
    this = payments.filter(provider_reference=update.provider_reference).first()
    if this is None or this.status == Payment.Status.SUCCEEDED:
        return False
    if not payments.filter(status=Payment.Status.SUCCEEDED).exclude(pk=this.pk).exists():
        return False
    fields = {"status": Payment.Status.SUCCEEDED}
    if update.amount is not None:
        fields["amount_received"] = update.amount
    Payment.objects.filter(pk=this.pk).update(**fields)
    checkout.flag_for_attention(session, f"paid twice: {this.provider} payment {this.public_id} arrived after the "
                                         f"order was paid; refund it")
    return True


# The newest of the session's payments (with that provider reference, when the update
# names one) takes the update's status, found and updated in one statement. Written out:
# the ORM's nested ``pk__in`` query cost about four times as much to compile as to run.
# Parameters: status, amount, session id, reference, reference.
_RECORD_ON_PAYMENT_SQL = (
    "UPDATE payments_payment SET status = %s, amount_received = COALESCE(%s, amount_received)"
    " WHERE id = (SELECT id FROM payments_payment WHERE session_id = %s"
    " AND (%s = '' OR provider_reference = %s) ORDER BY id DESC LIMIT 1)"
)


def _record_on_payment(session: CheckoutSession, update: PaymentUpdate) -> None:
    status = {
        UpdateKind.SUCCEEDED: Payment.Status.SUCCEEDED,
        UpdateKind.AUTHORIZED: Payment.Status.AUTHORIZED,
        UpdateKind.FAILED: Payment.Status.FAILED,
        UpdateKind.CAPTURE_FAILED: Payment.Status.FAILED,
        UpdateKind.CANCELED: Payment.Status.CANCELED,
        UpdateKind.REFUNDED: Payment.Status.REFUNDED,
    }.get(update.kind)
    if status is None:
        return
    amount = update.amount if update.kind == UpdateKind.SUCCEEDED else None
    reference = update.provider_reference
    # Nothing reads the payment again in this transaction: it is written with the rest.
    with writes.gathering() as batch:
        batch.execute(_RECORD_ON_PAYMENT_SQL, [status, amount, session.pk, reference, reference])


def confirm_on_return(session: CheckoutSession, payment: Payment) -> str:
    """The attendee is back from the provider: ask it what happened, apply the answer."""
    if session.status in (Status.COMPLETED, Status.PAID):
        return "ignored"
    if payment.session_id == session.pk:
        payment.session = session  # the provider reads it: the row we already have
    try:
        update = get_provider(payment.provider, session.organization).confirm(payment)
    except ProviderError as exc:
        log.warning("confirm on return failed for %s: %s", payment.public_id, exc)
        return "ignored"  # the webhook is the safety net
    if update is None:
        return "ignored"
    from checkout.models import Source

    return apply_update(session, update, source=Source.RETURN_PAGE)
