"""Checkout rules as plain functions: views, the API, tasks and tests all call these.

Lock order, everywhere: the checkout session row first, then ticket types by primary key.
Every function that changes a session re-reads it under its lock and checks again, so a
race (two tabs, a webhook and the return page at once) ends in a no-op, not a double sale.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from ievents import languages
from ievents.models import Event, TicketType
from webhooks.outbox import record_events  # the one import against the layers (docs/architecture.md)

from . import attendee_emails, emails, inventory, promo, state
from .holders import for_ticket as holder_of
from .models import EDITABLE_STATUSES, Answer, CheckoutSession, LineItem, PromoCode, Source, Status, Ticket
from .representation import listed_rows, session_as_api

log = logging.getLogger(__name__)


class CheckoutError(Exception):
    """A request the checkout refuses, with a code for the API and a message for people,
    written in the language active where it was raised (``gettext`` at the raise)."""

    code = "checkout_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class InvalidOrder(CheckoutError):
    code = "invalid_order"


class SessionNotOpen(CheckoutError):
    code = "session_not_open"


class GateApprovalRequired(CheckoutError):
    code = "gate_approval_required"


# --- Creating a session and holding its tickets ------------------------------------------
@dataclass(frozen=True)
class Item:
    ticket_type: TicketType
    quantity: int


def create_session(
    event: Event,
    items: list[Item],
    *,
    source: str = Source.ATTENDEE,
    customer_email: str = "",
    success_url: str = "",
    cancel_url: str = "",
    webhook_url: str = "",
    metadata: dict | None = None,
    address_key: str = "",
    language: str = "",
    promo_code: PromoCode | None = None,
) -> CheckoutSession:
    """Open a session holding the tickets (and ``promo_code``'s uses, checked by
    ``promo.check_code`` before); all or nothing. Raises ``InvalidOrder``/``SoldOut``/
    ``promo.CodeRefused``.

    ``language``: the attendee's (default: the active one, the attendee's own on our pages);
    what is built for them later carries the organizer's texts in it. ``address_key``: the
    key an attendee page's buyer is limited by (``limits.address_key``); the limits are then
    checked in this transaction (``limits.check``), raising ``LimitReached``.

    The hold is taken last: its row locks are what attendees of an on-sale wait on, so
    they are held only from the reservation to the commit, not while the session, its line
    items and its announcement are written. The code's uses are taken after the tickets,
    as the lock order says.
    """
    wanted = _wanted(event, items, promo_code)
    types = {item.ticket_type.pk: item.ticket_type for item in items}
    terms = promo.terms_of(promo_code) if promo_code is not None else {}
    uses = promo.check_order(promo_code, terms, wanted) if promo_code is not None else 0
    discounts = {pk: promo.unit_discount(terms, pk, types[pk].price) for pk in wanted}
    discount_total = sum(discounts[pk] * qty for pk, qty in wanted.items())
    with transaction.atomic():
        session = CheckoutSession.objects.create(
            organization_id=event.organization_id,
            event=event,
            currency=event.currency,
            amount_total=sum(types[pk].price * qty for pk, qty in wanted.items()) - discount_total,
            discount_total=discount_total,
            promo_code=promo_code,
            promo_code_text=promo_code.code if promo_code is not None else "",
            promo_terms=terms,
            promo_uses=uses,
            expires_at=timezone.now() + timedelta(minutes=settings.CHECKOUT_HOLD_MINUTES),
            customer_email=customer_email,
            success_url=success_url,
            cancel_url=cancel_url,
            webhook_url=webhook_url,
            metadata=metadata or {},
            address_key=address_key,
            language=languages.supported(language or languages.active()),
        )
        line_items = LineItem.objects.bulk_create(
            LineItem(session=session, ticket_type=types[pk], quantity=qty, unit_price=types[pk].price,
                     unit_discount=discounts[pk])
            for pk, qty in sorted(wanted.items())
        )
        # Its rows are the line items just inserted and no answers: announced without reading them back.
        record_events(session, [("checkout.session.created",
                                  session_as_api(session, line_items=line_items, answers=[]))])
        try:
            inventory.reserve(wanted, prices={pk: types[pk].price for pk in wanted})
        except inventory.PriceChanged:
            raise InvalidOrder(gettext("A price changed while you were choosing. Please choose your tickets again.")) from None
        if uses:
            promo.take(promo_code, uses)
        if address_key:
            # An attendee page's buyer (``limits.hold_tickets``): their address's limits, counted
            # after the hold, in its transaction, so that two requests for the same tickets
            # count one after the other; over a limit, the whole checkout rolls back.
            from .limits import check as check_limits  # inner: checkout.limits imports this module

            check_limits(event, address_key, sum(wanted.values()), opened=session)
    log.info("checkout %s opened by %s for %s", session.public_id, source, event.public_id)
    return session


def check_available(items: list[Item]) -> None:
    """Raise ``SoldOut`` when the ticket types as read (``item.ticket_type``) show fewer left
    than wanted, repeated types summed. Only an early no, from rows already in hand: nothing
    is read or locked, so a yes is decided by the hold (``inventory.reserve``)."""
    wanted: dict[int, int] = {}
    for item in items:
        wanted[item.ticket_type.pk] = wanted.get(item.ticket_type.pk, 0) + max(item.quantity, 0)
    for item in items:
        if wanted[item.ticket_type.pk] > item.ticket_type.available:
            raise inventory.SoldOut(item.ticket_type, wanted[item.ticket_type.pk])


def _wanted(event: Event, items: list[Item], promo_code: PromoCode | None = None) -> dict[int, int]:
    """``{ticket_type_id: quantity}`` of an order the event may take, repeated types summed
    before they are checked; raises ``InvalidOrder`` (or ``SoldOut``, without waiting for
    anyone's lock, when a type is already sold out). A hidden type is sold only with a code
    that reveals it."""
    if not event.published:
        raise InvalidOrder(gettext("This event is not on sale."))
    if not items or all(item.quantity == 0 for item in items):
        raise InvalidOrder(gettext("Choose at least one ticket."))
    if promo_code is not None and promo_code.event_id != event.pk:
        raise InvalidOrder(gettext("That promo code belongs to another event."))
    now = timezone.now()
    revealed = promo.revealed_ids(promo_code) if any(item.ticket_type.hidden for item in items) else set()
    wanted: dict[int, int] = {}
    for item in items:
        tt = item.ticket_type
        if tt.event_id != event.pk:
            raise InvalidOrder(gettext("That ticket type belongs to another event."))
        if item.quantity and tt.hidden and tt.pk not in revealed:
            raise InvalidOrder(gettext("%(ticket_type)s is not on sale right now.") % {"ticket_type": tt.name})
        if item.quantity < 0:
            raise InvalidOrder(gettext("Quantities cannot be negative."))
        if item.quantity and not tt.on_sale(now):
            raise InvalidOrder(gettext("%(ticket_type)s is not on sale right now.") % {"ticket_type": tt.name})
        if item.quantity:
            wanted[tt.pk] = wanted.get(tt.pk, 0) + item.quantity
    for item in items:
        tt = item.ticket_type
        if wanted.get(tt.pk, 0) > tt.max_per_order:
            raise InvalidOrder(ngettext("At most %(count)d × %(ticket_type)s per order.",
                                         "At most %(count)d × %(ticket_type)s per order.", tt.max_per_order)
                                % {"count": tt.max_per_order, "ticket_type": tt.name})
        if wanted.get(tt.pk, 0) > tt.available:
            raise inventory.SoldOut(tt, wanted[tt.pk])
    return wanted


# --- Attendee details and the gate's approval -------------------------------------------
# Details may change until money moves; back from a provider's page counts as "until".


def save_attendee_details(session: CheckoutSession, *, name: str, email: str, answers: dict[int, str],
                          holders: dict[int, list[dict]] | None = None, invoice: dict[str, str] | None = None,
                          language: str = "") -> CheckoutSession:
    """Store what the attendee typed, under the session's lock. Any change voids an earlier
    gate approval. Returns the session as saved; the gate judges the rows the caller just
    gave, as saved (``rows_as_saved``), not read back.

    ``holders``: for ticket types named per ticket, ``{line item id: [{"name", "email"}, …]}``
    (``checkout.holders``). ``invoice``: the invoice details asked (``checkout.invoice``).
    ``language``: the one the attendee is reading in; later emails are written in it."""
    with transaction.atomic():
        locked = state.lock(session)
        if locked.status not in EDITABLE_STATUSES:
            raise SessionNotOpen(gettext("This checkout can no longer be changed."))
        if locked.expires_at <= timezone.now():
            raise SessionNotOpen(gettext("Your ticket hold has expired."))
        first_save = locked.details_version == 0
        locked.customer_name = name.strip()
        locked.customer_email = email.strip()
        locked.details_version += 1
        fields = ["customer_name", "customer_email", "details_version", "updated_at"]
        if invoice is not None:
            locked.invoice_tax_id = invoice.get("invoice_tax_id", "")
            locked.invoice_name = invoice.get("invoice_name", "")
            locked.invoice_address = invoice.get("invoice_address", "")
            fields += ["invoice_tax_id", "invoice_name", "invoice_address"]
        if language:
            locked.language = language
            fields.append("language")
        locked.save(update_fields=fields)
        _save_answers(locked, answers, first_save=first_save)
        if holders:
            items = list(LineItem.objects.filter(session=locked, pk__in=list(holders)))
            for item in items:
                item.holders = holders[item.pk][:item.quantity]
            LineItem.objects.bulk_update(items, ["holders"])
        if locked.gate_approved_fingerprint and locked.gate_approved_fingerprint != details_fingerprint(locked):
            if locked.status == Status.PAYMENT_PENDING and gate_is_active(locked):
                # The payment under way was approved for the old details and can still be
                # completed; letting them change now would pay for details the gate never saw.
                raise SessionNotOpen(gettext(
                    "Your payment has already started with the details that were approved, so they can no longer "
                    "be changed. Finish the payment, or cancel this order and start again."
                ))
            locked.gate_approved_fingerprint = ""
            locked.gate_approved_at = None
            locked.save(update_fields=["gate_approved_fingerprint", "gate_approved_at"])
        return locked


def _save_answers(locked: CheckoutSession, answers: dict[int, str], *, first_save: bool = False) -> None:
    """Make the session's answers exactly ``answers``, in a fixed number of statements.

    Safe without ``update_or_create``'s savepoints because every writer of answers holds
    the session's row lock (``locked``); the unique constraint stays the last word.
    ``first_save``: the details were never saved (``details_version`` was 0), so there are
    no answers to read: this function is their only writer, and every save counts.
    """
    existing = {} if first_save else {a.question_id: a for a in Answer.objects.filter(session=locked)}
    changed = []
    for question_id, value in answers.items():
        answer = existing.get(question_id)
        if answer is not None and answer.value != value:
            answer.value = value
            changed.append(answer)
    Answer.objects.bulk_create(
        Answer(session=locked, question_id=question_id, value=value)
        for question_id, value in answers.items() if question_id not in existing
    )
    if changed:
        Answer.objects.bulk_update(changed, ["value"])
    gone = [a.pk for question_id, a in existing.items() if question_id not in answers]
    if gone:
        Answer.objects.filter(pk__in=gone).delete()


def rows_as_saved(line_items: list[LineItem], questions, answers: dict[int, str],
                  holders: dict[int, list[dict]] | None = None) -> tuple[list[LineItem], list[Answer]]:
    """The session's line items and answers as ``save_attendee_details`` has just written
    them, from what its caller holds: ``line_items``, all of the session's (with their ticket
    types), and ``questions`` (the event's), as read for the form; ``answers`` and ``holders``
    as given to the save. The gate's payload and fingerprint are built from these instead of
    reading the rows back (issue 26). Should they differ from the database (a second tab
    saving at once), the approval, bound to this fingerprint, does not match at payment.
    The line items take their holders as saved."""
    for item in line_items:
        if holders and item.pk in holders:
            item.holders = holders[item.pk][:item.quantity]  # as the save cuts them
    by_id = {question.pk: question for question in questions}
    return line_items, [Answer(question=by_id[question_id], value=value) for question_id, value in answers.items()]


def details_fingerprint(session: CheckoutSession, *, line_items: list | None = None,
                        answers: list | None = None) -> str:
    """A digest of everything the gate is asked to judge: who, what, how much.

    ``line_items`` and ``answers``: all of the session's, when the caller holds them
    (``rows_as_saved``); otherwise those prefetched with the session (read now if they are
    not). The gate's approval is bound to exactly the rows its payload was built from.
    """
    line_items, answers = listed_rows(session, line_items, answers)
    answers = sorted((a.question_id, a.value) for a in answers)
    items = sorted((i.ticket_type_id, i.quantity, i.unit_price) for i in line_items)
    material = [session.customer_name, session.customer_email.lower(), answers, items, session.amount_total,
                session.currency]
    # Named tickets and invoice details are judged too; left out while absent, so approvals
    # given before they existed still stand.
    holders = [(i.pk, i.holders) for i in line_items if i.holders]
    invoice = [session.invoice_tax_id, session.invoice_name, session.invoice_address]
    if holders or any(invoice):
        material += [holders, invoice]
    material = json.dumps(material)
    return hashlib.sha256(material.encode()).hexdigest()


def gate_is_active(session: CheckoutSession) -> bool:
    gate = getattr(session.event, "gate", None)
    return bool(gate and gate.enabled and gate.url)


def record_gate_approval(session: CheckoutSession, fingerprint: str) -> bool:
    """Remember that the gate approved exactly the details submitted now.

    ``session`` is the row as ``save_attendee_details`` left it and ``fingerprint`` that of
    the details the gate was shown, as that save wrote them. If they were saved again since (a
    second tab), ``details_version`` moved on and nothing is recorded: False is returned.
    One conditional ``UPDATE``: the database takes the row's lock for it. Starting a
    payment re-reads the details under the lock before money moves.
    """
    recorded = CheckoutSession.objects.filter(pk=session.pk, details_version=session.details_version).update(
        gate_approved_fingerprint=fingerprint, gate_approved_at=timezone.now()
    )
    return bool(recorded)


def revoke_gate_approval(session: CheckoutSession) -> None:
    """The gate refused (or could not be asked): no earlier approval stands."""
    CheckoutSession.objects.filter(pk=session.pk).update(gate_approved_fingerprint="", gate_approved_at=None)


def has_gate_approval(session: CheckoutSession) -> bool:
    """True if payment may start: the gate approved these exact details (or is off)."""
    if not session.customer_email:
        return False
    if not gate_is_active(session):
        return True
    return bool(session.gate_approved_fingerprint) and session.gate_approved_fingerprint == details_fingerprint(session)


# --- Payment -----------------------------------------------------------------------------
def check_payable(locked: CheckoutSession) -> None:
    """May payment start for this session, read under its lock? Raises why not."""
    if not state.can_apply(locked.status, "start_payment") and locked.status != Status.PAYMENT_PENDING:
        raise SessionNotOpen(gettext("This checkout can no longer be paid."))
    if locked.expires_at <= timezone.now():
        raise SessionNotOpen(gettext("Your ticket hold has expired."))
    if not has_gate_approval(locked):
        raise GateApprovalRequired(gettext("Please confirm your details before paying."))


def complete_free_order(locked: CheckoutSession, source: str) -> CheckoutSession:
    """A free order passed the gate like any other and completes without a provider."""
    state.apply_steps(locked, source, [state.Step("pay", "free order"), state.Step("complete", effects=_completion(source))])
    emails.send_on_commit(locked, source)
    return locked


def approval_lapsed(session: CheckoutSession, approved_fingerprint: str | None) -> str:
    """Why money started under ``approved_fingerprint`` (the details' fingerprint when the
    payment began) must not turn into tickets now, or "" if it may.

    The details must still be the ones the payment was started for, and while a gate is on,
    the gate's approval must still stand for them: details changed after payment began (a
    second payment failed, then the attendee typed someone the gate denies) make the older
    payment's money a refund, never tickets. ``None``: no payment to compare with (legacy
    rows), so the session's own approval decides.
    """
    current = details_fingerprint(session)
    if approved_fingerprint and approved_fingerprint != current:
        return "paid for details that changed after the payment started"
    if gate_is_active(session) and session.gate_approved_fingerprint != (approved_fingerprint or current):
        return "paid for details the gate has not approved"
    return ""


# Someone (the organizer, the attendee, the provider) canceled the order: a payment still
# arriving for it is money to give back, never a reason to sell it again.
CANCELED_BEFORE_PAYMENT = "paid after the order was canceled"


def record_payment_succeeded(session: int | CheckoutSession, *, amount: int | None, currency: str, source: str,
                             detail: str = "", approved_fingerprint: str | None = None,
                             payment=None) -> CheckoutSession:
    """Money arrived. Complete the order if the approval, amount, currency and inventory
    allow; otherwise record the money and flag the order for the organizer.

    ``session``: a primary key, or the session its caller read with ``state.lock()`` in the
    current transaction. ``approved_fingerprint``: that of the details the payment was
    started for (``approval_lapsed``). ``payment``: the payment that paid, when the caller
    holds it (the ticket email says how the order was paid; else it reads it). Idempotent:
    news of a payment already recorded changes nothing.
    """
    with transaction.atomic(savepoint=False):  # all or nothing with the caller's transaction
        if not isinstance(session, CheckoutSession):
            session = state.lock(session)
            if session is None:
                raise CheckoutSession.DoesNotExist("no such checkout session")
        if session.status in (Status.PAID, Status.COMPLETED, Status.REFUNDED, Status.PARTIALLY_REFUNDED):
            return session
        if amount is not None and (amount != session.amount_total or (currency and currency.upper() != session.currency)):
            _flag(session, f"paid {amount} {currency.upper()} but the order is {session.amount_total} {session.currency}")
            return session
        lapsed = CANCELED_BEFORE_PAYMENT if session.status == Status.CANCELED else approval_lapsed(
            session, approved_fingerprint)
        if lapsed:
            # The money is recorded (the order can be refunded), never turned into tickets; and
            # as it never will be, the seats it held go back on sale now, not at the refund.
            state.apply(session, "pay", source, detail=detail or lapsed, effects=_paid_in_full)
            release_hold(session)
            _flag(session, f"{lapsed}: no tickets issued, refund needed")
            return session
        if session.holds_released:
            try:
                with transaction.atomic():  # the tickets go back if the code's uses are gone
                    inventory.reserve(inventory.quantities_of(session))
                    promo.retake_uses(session)
            except (inventory.SoldOut, promo.CodeRefused) as exc:
                state.apply(session, "pay", source, detail=detail or "paid after the hold ended",
                            effects=_paid_in_full)
                gone = "sold out" if isinstance(exc, inventory.SoldOut) else "its promo code was used up"
                _flag(session, f"paid after the hold ended and {gone} ({exc}): refund needed")
                return session
            session.holds_released = False
            session.save(update_fields=["holds_released"])
        state.apply_steps(session, source, [state.Step("pay", detail, effects=_paid_in_full),
                                            state.Step("complete", effects=_completion(source))])
        emails.send_on_commit(session, source, payment=payment)
        return session


def record_payment_started(locked: CheckoutSession, provider: str, source: str) -> None:
    """A payment starts with the provider the attendee chose (``payments.services.begin_payment``,
    under the lock): the session moves to ``payment_pending`` unless it is there already, and
    the provider is saved with that transition, in one UPDATE."""
    locked.provider = provider
    if locked.status != Status.PAYMENT_PENDING:
        state.apply(locked, "start_payment", source, detail=provider, effects=lambda _: ["provider"])
    else:
        locked.save(update_fields=["provider", "updated_at"])


def extend_hold(session_id: int, until) -> None:
    """Keep a live session's tickets held until ``until`` (never shortens a hold)."""
    CheckoutSession.objects.filter(pk=session_id, expires_at__lt=until, status__in=state.LIVE).update(expires_at=until)


def _paid_in_full(session: CheckoutSession) -> list[str]:
    # Under the state machine's lock, before "paid" is announced: the event shows the money.
    session.amount_paid = session.amount_total
    return ["amount_paid"]


def flag_for_attention(session: CheckoutSession, reason: str) -> None:
    """Mark a session for the organizer's attention and tell them by email (for payments:
    money that arrived but cannot be kept, such as a second payment for a paid order)."""
    _flag(session, reason)


def _flag(session: CheckoutSession, reason: str) -> None:
    """Mark a session for the organizer's attention and tell them by email, once per reason
    (providers send the same news more than once)."""
    reason = reason[:300]
    if not CheckoutSession.objects.filter(pk=session.pk).exclude(needs_attention=reason).update(needs_attention=reason):
        return
    session.needs_attention = reason
    log.warning("checkout %s needs attention: %s", session.public_id, reason)
    if session.status == Status.PAID:
        # Their money arrived and no tickets were issued: the attendee hears it from us, now.
        attendee_emails.queue(session, attendee_emails.Kind.FLAGGED, f"flagged:{session.pk}:{session.version}")
    to = session.organization.notification_email
    if to:
        transaction.on_commit(lambda: send_mail(
            f"Checkout {session.public_id} needs your attention", reason, settings.DEFAULT_FROM_EMAIL, [to],
            fail_silently=True,
        ))


def complete(session_id: int, source: str) -> CheckoutSession:
    """Paid → completed: issue the tickets and send the confirmation."""
    with transaction.atomic():
        session = state.apply(session_id, "complete", source, effects=_completion(source)).session
        emails.send_on_commit(session, source)
        return session


def _completion(source: str):
    """The ``complete`` step's effects: the tickets issued; and when this request sends the
    ticket email (``emails.sent_by_the_page``), its lease taken in the same save, so sending it
    claims nothing more (issue 26: one statement fewer per completion on our pages)."""
    def effects(session: CheckoutSession) -> list[str]:
        _issue_tickets(session)
        if not emails.sent_by_the_page(session, source):
            return []
        session.confirmation_lease_until = emails.lease_until(timezone.now())
        return ["confirmation_lease_until"]
    return effects


def _issue_tickets(session: CheckoutSession) -> None:
    # Before the state machine announces "completed": that event carries the codes, and
    # each ticket its holder (checkout.holders: its own, or the buyer). The rows bulk_create
    # returns (with their ids, and the ticket types the line items brought) are kept on the
    # instance as ``issued_tickets``: the announcement and the ticket email list them instead
    # of reading them back (issue 26: two statements fewer per completion).
    issued = []
    for item in session.line_items.all():
        for index in range(item.quantity):
            name, email, answers = holder_of(item, index, session.customer_name, session.customer_email)
            issued.append(Ticket(session=session, ticket_type=item.ticket_type, holder_name=name, holder_email=email,
                                 holder_answers=answers))
    session.issued_tickets = Ticket.objects.bulk_create(issued)


# --- Ending sessions -------------------------------------------------------------------
def end_session(session_id: int, trigger: str, source: str, detail: str = "") -> CheckoutSession:
    """Expire or cancel a session and give its held tickets back."""
    with transaction.atomic():
        session = state.apply(session_id, trigger, source, detail=detail).session
        release_hold(session)
        promo.release_uses(session)  # after the ticket types, as the lock order says
        return session


def release_hold(locked: CheckoutSession) -> None:
    """Give back the seats an order without tickets holds, once. ``locked``: read under its
    lock in the caller's transaction. An order that has tickets gives its seats back ticket
    by ticket, as they are voided (``checkout.order_actions.void_tickets``)."""
    if locked.holds_released:
        return
    inventory.release(inventory.quantities_of(locked))
    CheckoutSession.objects.filter(pk=locked.pk).update(holds_released=True)
    locked.holds_released = True


def expire_session(session_id: int, source: str = Source.TIMER, detail: str = "") -> CheckoutSession:
    return end_session(session_id, "expire", source, detail)


def cancel_session(session_id: int, source: str, detail: str = "") -> CheckoutSession:
    return end_session(session_id, "cancel", source, detail)


def release_expired_holds(now=None) -> int:
    """Expire every session whose hold has ended and that no payment is under way for."""
    now = now or timezone.now()
    expirable = [s for s, trigger in state.TRANSITIONS if trigger == "expire"]
    count = 0
    for pk in CheckoutSession.objects.filter(status__in=expirable, expires_at__lte=now).values_list("pk", flat=True):
        try:
            expire_session(pk, Source.TIMER, detail="hold expired")
            count += 1
        except state.InvalidTransition:
            pass  # moved on (paid, say) between the query and the lock: nothing to expire
    return count
