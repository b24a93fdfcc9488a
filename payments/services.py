"""Payments as plain functions: start one, and apply what a provider tells us.

``apply_update`` is the one place where provider news becomes checkout state, whether it
came from the return page (sync-on-return) or from a webhook.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from checkout import attendee_emails, order_actions, promo, state
from checkout import services as checkout
from checkout.limits import pending_hold_until
from checkout.models import PAID_STATUSES, CheckoutSession, Source, Status

from . import refunds
from .base import PaymentDetailsRejected, PaymentUpdate, ProviderError, UpdateKind
from .models import IntegrationSettings, Payment
from .registry import get_provider

log = logging.getLogger(__name__)


class PaymentStartFailed(checkout.CheckoutError):
    code = "payment_start_failed"


def begin_payment(session: CheckoutSession, provider: str, *, method: str = "", phone: str = "",
                  source: str = Source.ATTENDEE) -> Payment | None:
    """Start paying, once the gate approved the submitted details. Returns the ``Payment``,
    or ``None`` for a free order, which completes here without a provider.

    The payment is bound to the details it was started for (``approved_fingerprint``). An
    older payment of the same session stays open at its provider, bound to its own details:
    if it is paid after the details changed, its money is flagged for a refund, not turned
    into tickets (``checkout.services.approval_lapsed``).
    """
    with transaction.atomic():
        locked = state.lock(session)
        checkout.check_payable(locked)
        if locked.is_free:
            checkout.complete_free_order(locked, source)
            return None
        if locked.status == Status.PAYMENT_PENDING:
            # A second tab or a double click: send the attendee to the payment already
            # started rather than start a second one that could be charged too.
            under_way = reusable_payment(locked, provider, method=method, phone=phone)
            if under_way is not None:
                return under_way
        # ``provider`` is set by every start: without one, none was made and none is counted.
        if locked.provider and too_many_starts(locked):
            raise PaymentStartFailed(TOO_MANY_STARTS)
        checkout.record_payment_started(locked, provider, source)
        payment = Payment.objects.create(
            session=locked, provider=provider, method=method, amount=locked.amount_total, currency=locked.currency,
            approved_fingerprint=checkout.details_fingerprint(locked),
        )
    # The provider is called outside the lock: a slow API must not block webhooks.
    return start_payment(payment, method=method, phone=phone)


def reusable_payment(session: CheckoutSession, provider: str, *, method: str = "", phone: str = "") -> Payment | None:
    """A payment of this order under way that the attendee can still finish, for another
    click on Pay: one with a provider's page to go back to, or a Multibanco reference for the
    same amount and the same approved details whose deadline has not passed (each click made
    a new reference at the provider: 15 clicks, 15 references). An MB WAY request with a
    phone is a new request to that phone: never reused here (``too_many_starts`` bounds it)."""
    fingerprint = None
    for payment in session.payments.filter(provider=provider, status=Payment.Status.PENDING).order_by("-id"):
        if method and payment.method != method:
            continue
        if payment.redirect_url:
            return payment
        if phone or payment.method != "multibanco" or not payment.instructions.get("reference"):
            continue
        deadline = parse_datetime(str(payment.instructions.get("deadline_at") or ""))
        if deadline is not None and deadline <= timezone.now():
            continue
        fingerprint = fingerprint or checkout.details_fingerprint(session)
        if payment.amount == session.amount_total and payment.approved_fingerprint == fingerprint:
            return payment
    return None


# Said with the gate's words (translated where shown, as the gate's are).
TOO_MANY_STARTS = "Too many attempts. Please wait a few minutes before trying again."


def too_many_starts(session: CheckoutSession) -> bool:
    """Payment starts per order are bounded (``PAYMENT_STARTS_PER_ORDER`` per
    ``PAYMENT_STARTS_WINDOW_SECONDS``): each start may cost a call to the provider, a
    reference or a push to a phone."""
    since = timezone.now() - timedelta(seconds=settings.PAYMENT_STARTS_WINDOW_SECONDS)
    recent = session.payments.filter(created_at__gt=since)[:settings.PAYMENT_STARTS_PER_ORDER].count()
    return recent >= settings.PAYMENT_STARTS_PER_ORDER


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
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED, failure_reason=str(exc)[:500])
        raise PaymentStartFailed(str(exc)) from exc
    except ProviderError as exc:
        Payment.objects.filter(pk=payment.pk).update(status=Payment.Status.FAILED, failure_reason=str(exc)[:500])
        log.warning("payment %s could not start: %s", payment.public_id, exc)
        raise PaymentStartFailed(gettext("The payment could not be started. Please try again or choose another method.")) from exc
    payment.provider_reference = result.provider_reference
    payment.redirect_url = result.redirect_url
    payment.method = result.method or payment.method
    payment.instructions = {**payment.instructions, **result.instructions}
    payment.status = Payment.Status.PENDING
    payment.save(update_fields=["provider_reference", "redirect_url", "method", "instructions", "status", "updated_at"])
    deadline = result.instructions.get("deadline_at")
    if deadline and result.provider_reference and result.instructions.get("reference"):
        # A Multibanco reference is paid at an ATM, maybe tomorrow: keep the tickets until
        # then, if the provider gave one, and no longer than checkout.limits allows.
        checkout.extend_hold(session.pk, pending_hold_until(session, parse_datetime(deadline)))
    return payment


def find_payment(update: PaymentUpdate, organization_id: int | None, provider: str) -> Payment | None:
    """The payment an update is about, with its session read under the session's lock:
    one of ``provider``'s payments (the one the update names, else the newest: the rule of
    ``_payment_told_of``), of a session within the organization the news was verified for.

    An update verified with the environment's secret (``organization_id`` None, org ``_``)
    may only touch sessions of organizations that have no webhook secret of their own for
    that provider: whoever holds the platform's secret must not reach a tenant that chose
    its own. News of one provider never touches another provider's payments.

    One read: the session is locked as ``checkout.state.lock`` locks it (only its row, until
    the caller's transaction ends, read with its event's gate and organization), so
    ``apply_update`` is handed both with ``locked=True`` and reads neither again (issue 26:
    finding the session, locking it and reading its payment took two). The payment's own row
    is not locked: what ``apply_update`` reads of it either never changes (its fingerprint,
    provider, reference) or is checked against the locked session (its status).
    """
    if transaction.get_autocommit():
        raise transaction.TransactionManagementError("find_payment() outside a transaction locks nothing")
    if "\x00" in update.session_public_id + update.provider_reference:
        return None  # no id of ours contains NUL, and PostgreSQL would refuse the query
    payments = Payment.objects.filter(provider=provider)
    if update.session_public_id:
        sessions = CheckoutSession.objects.filter(public_id=update.session_public_id)
    elif update.provider_reference:
        sessions = CheckoutSession.objects.filter(
            pk__in=payments.filter(provider_reference=update.provider_reference).values("session_id"))
    else:
        return None
    if organization_id is not None:
        sessions = sessions.filter(organization_id=organization_id)
    else:
        own_secret = IntegrationSettings.objects.filter(provider=provider).exclude(webhook_secret="")
        sessions = sessions.exclude(organization_id__in=own_secret.values("organization_id"))
    return (_told_of_first(payments.filter(session__in=sessions), update)
            .select_for_update(of=("session",)).select_related("session__event__gate", "session__organization")
            .first())


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


def apply_update(session: CheckoutSession, update: PaymentUpdate, *, source: str, provider: str,
                 locked: bool = False, payment: Payment | None = None) -> str:
    """Apply one piece of ``provider``'s news to a session. Returns ``"applied"`` or ``"ignored"``.

    Runs in the caller's transaction (a webhook's) when there is one. Updates that would
    move the session backwards (``processing`` after ``paid``) have no row in the
    transition table: they are ignored, never applied. ``locked``: ``session`` was read
    under its lock in the caller's transaction (``find_payment``), so it is not read again.
    ``payment``: the payment the news is about, as the caller read it (``find_payment``; the
    return page's, when the news names it), so it is not read again either.
    """
    # Part of a webhook's transaction: nothing here is retried on its own, so a savepoint
    # would only cost two statements.
    with transaction.atomic(savepoint=False):
        locked = session if locked else state.lock(session)
        if locked is None:
            raise CheckoutSession.DoesNotExist(f"no checkout session {session.pk}")
        if payment is None or payment.session_id != locked.pk or payment.provider != provider:
            payment = _payment_told_of(locked, update, provider)
        if payment is None:
            return "ignored"  # none of this provider's payments: not its news to give
        if refunds.already_recorded(locked, update):  # a refund made from the admin: recorded then
            return "ignored"
        if update.kind == UpdateKind.SUCCEEDED and _paid_twice(locked, payment, update):
            return "applied"
        _record_on_payment(payment, update)
        if update.kind == UpdateKind.SUCCEEDED:
            before = (locked.status, locked.needs_attention)
            checkout.record_payment_succeeded(
                locked, amount=update.amount, currency=update.currency, source=source, detail=update.detail,
                approved_fingerprint=payment.approved_fingerprint or None, payment=payment,
            )
            return "applied" if (locked.status, locked.needs_attention) != before else "ignored"
        trigger = TRIGGER_FOR_KIND[update.kind]
        if not state.can_apply(locked.status, trigger):
            return "ignored"
        if trigger == "partial_refund" and update.amount is not None and update.amount <= locked.amount_refunded:
            return "ignored"  # the same refund told twice (charge.refunded and refund.created)
        if trigger in ("expire", "cancel"):
            checkout.end_session(locked.pk, trigger, source, update.detail)
        elif trigger in ("refund", "partial_refund"):
            _refunded_at_provider(locked, payment, trigger, update, source)
        else:
            state.apply(locked, trigger, source, detail=update.detail)
        return "applied"


def _refunded_at_provider(locked: CheckoutSession, payment: Payment, trigger: str, update: PaymentUpdate,
                          source: str) -> None:
    """A refund made at the provider (its dashboard), not from our admin. ``update.amount``
    is the total refunded so far; a full refund without one refunds everything paid. All
    the money back ends the order as a refund from the admin does: its tickets are voided
    (no one keeps an admission they were paid back for); their seats stay off sale, as
    when the organizer does not tick "put back on sale" — selling them again is the
    organizer's decision, not the provider's."""
    if update.amount is None and trigger == "partial_refund":
        checkout.flag_for_attention(locked, f"partly refunded at {locked.provider or 'the provider'}, amount not "
                                            f"given: check it there")
        return
    _tell_refund(locked, payment, update)  # before the amount moves: the email says what is new
    refunded = locked.amount_paid if update.amount is None else min(update.amount, locked.amount_paid)
    if refunded >= locked.amount_paid:
        trigger = "refund"
    # Before the transition: its announcement shows the amount refunded.
    order_actions.record_refunded(locked, refunded)
    state.apply(locked, trigger, source, detail=update.detail)
    if trigger == "refund":
        order_actions.settle_full_refund(locked, restock=False)
        promo.release_uses(locked, refunded=True)  # if its code gives uses back on a refund


def _tell_refund(session: CheckoutSession, payment: Payment, update: PaymentUpdate) -> None:
    """A refund made at the provider (its dashboard), told to the attendee like one made from
    the admin (``payments.refunds``), once per refunded total."""
    total = update.amount if update.amount is not None else session.amount_paid
    amount = max(total - session.amount_refunded, 0)
    if amount:
        method = "sandbox" if payment.provider == "sandbox" else (payment.method or "card")
        attendee_emails.queue(session, attendee_emails.Kind.REFUND, f"refund:{payment.public_id}:{total}",
                              params={"amount": amount, "full": False, "voided": [], "method": method,
                                      "outside": False})


def cancel_order(session: CheckoutSession, *, by, note: str = "", key: str) -> tuple[CheckoutSession, list[str]]:
    """The organizer's "Cancel order": an unpaid order is canceled (its hold ends), a paid one
    with a full refund of what is left (``key``: that refund's, one per click); then its
    payments still open at their providers are stopped where the provider allows it.
    Returns the order as canceled and what could not be stopped (``cancel_open_payments``)."""
    if session.status in PAID_STATUSES:
        canceled = refunds.cancel_paid_order(session, by=by, note=note, key=key)
    else:
        canceled = order_actions.cancel_order(session, by=by, note=note)
    return canceled, cancel_open_payments(canceled)


OPEN_PAYMENT_STATUSES = (Payment.Status.STARTED, Payment.Status.PENDING, Payment.Status.AUTHORIZED)


def cancel_open_payments(session: CheckoutSession) -> list[str]:
    """The order was canceled: stop its payments still open at their providers, where the
    provider's API allows it. Returns, for people, what could not be stopped (a payment
    that then arrives anyway is recorded and flagged for a refund, never tickets:
    ``checkout.services.record_payment_succeeded``). Called after the cancellation has
    committed: the providers are called outside any lock."""
    problems = []
    for payment in Payment.objects.filter(session=session, status__in=OPEN_PAYMENT_STATUSES).order_by("id"):
        payment.session = session
        try:
            provider = get_provider(payment.provider, session.organization)
            if not provider.can_cancel(payment):
                problems.append(gettext("%(provider)s cannot cancel payment %(payment)s through its API: if it is "
                                        "paid, the order is flagged for a refund") % {
                    "provider": provider.label, "payment": payment.public_id})
                continue
            provider.cancel(payment)
        except ProviderError as exc:
            log.warning("payment %s of canceled order %s not canceled at the provider: %s", payment.public_id,
                        session.public_id, exc)
            problems.append(gettext("payment %(payment)s could not be canceled at the provider (%(error)s): if it "
                                    "is paid, the order is flagged for a refund") % {"payment": payment.public_id,
                                                                                    "error": exc})
            continue
        Payment.objects.filter(pk=payment.pk, status__in=OPEN_PAYMENT_STATUSES).update(status=Payment.Status.CANCELED)
    return problems


def _payment_told_of(session: CheckoutSession, update: PaymentUpdate, provider: str) -> Payment | None:
    """The session's payment the news is about: the one with the reference it names, else
    the newest of that provider's (a payment intent's news names the session, not the
    Checkout Session we stored)."""
    return _told_of_first(Payment.objects.filter(session=session, provider=provider), update).first()


def _told_of_first(payments, update: PaymentUpdate):
    """``payments`` in the order news chooses among them: the one it names first, then the
    newest (one read, not a second when none is named)."""
    if update.provider_reference:
        named_first = Case(When(provider_reference=update.provider_reference, then=Value(0)), default=Value(1))
        return payments.order_by(named_first, "-id")
    return payments.order_by("-id")


PAID_OR_REFUNDED = (Status.PAID, Status.COMPLETED, Status.PARTIALLY_REFUNDED, Status.REFUNDED)
# A payment whose money the order took (and may since have given back).
MONEY_KEPT = (Payment.Status.SUCCEEDED, Payment.Status.REFUNDED)


def _paid_twice(session: CheckoutSession, payment: Payment, update: PaymentUpdate) -> bool:
    """A second, different payment succeeded for an order already paid (a Multibanco
    reference paid at the ATM after the attendee switched to a card, say): that money must
    go back. Flag it once; news of the payment that did pay is not this. "Already paid"
    includes an order since refunded, in part or in full (its payment then shows
    ``refunded``): the second money is no more the order's after a refund than before."""
    if not update.provider_reference or session.status not in PAID_OR_REFUNDED:
        return False
    if payment.status in MONEY_KEPT:
        return False
    if not Payment.objects.filter(session=session, status__in=MONEY_KEPT).exclude(pk=payment.pk).exists():
        return False
    _record_on_payment(payment, update)
    checkout.flag_for_attention(session, f"paid twice: {payment.provider} payment {payment.public_id} arrived after "
                                         f"the order was paid; refund it")
    return True


PAYMENT_STATUS_FOR_KIND = {
    UpdateKind.SUCCEEDED: Payment.Status.SUCCEEDED,
    UpdateKind.AUTHORIZED: Payment.Status.AUTHORIZED,
    UpdateKind.FAILED: Payment.Status.FAILED,
    UpdateKind.CAPTURE_FAILED: Payment.Status.FAILED,
    UpdateKind.CANCELED: Payment.Status.CANCELED,
    UpdateKind.REFUNDED: Payment.Status.REFUNDED,
}


def _record_on_payment(payment: Payment, update: PaymentUpdate) -> None:
    status = PAYMENT_STATUS_FOR_KIND.get(update.kind)
    if status is None:
        return
    payment.status = status
    fields = ["status", "updated_at"]
    if update.kind == UpdateKind.SUCCEEDED and update.amount is not None:
        payment.amount_received = update.amount
        fields.append("amount_received")
    payment.save(update_fields=fields)


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
    # The payment asked about is the one the news is about when the news names it: not read
    # again under the lock (what is read of it there never changes, or is checked against the
    # locked session).
    named = payment if update.provider_reference and update.provider_reference == payment.provider_reference else None
    return apply_update(session, update, source=Source.RETURN_PAGE, provider=payment.provider, payment=named)
