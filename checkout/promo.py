"""Promo and access codes: what a code gives, and its uses counted like seats.

A code belongs to one event. It takes a percentage or a fixed amount off each ticket it
applies to (never below zero), or nothing but access: it shows and sells ticket types
hidden from the event's page. Its *scope* is the ticket types it names plus those it
reveals, or every type of the event when it names none; each ticket in scope is one use.

Uses are counted as seats are (``checkout.inventory``): ``PromoCode.used`` is what open
orders hold plus what paid ones consumed, taken by one conditional ``UPDATE`` in the
transaction that opens the order, after the ticket types' (the lock order: the session's
row, the ticket types by primary key, then the code's row), and a ``no_code_overuse``
check constraint backs it. The uses go back when the order's hold ends (expired, canceled
before paying) and, if the code says so, when a paid order is refunded in full or canceled.

What the code gave is copied onto the order when it opens (``CheckoutSession.promo_terms``,
``LineItem.unit_discount``): later edits of the code change no open order, and
``order_discount_matches`` can check any order against its copy.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from ievents.models import Event, TicketType

from . import state
from .models import TICKET_CODE_ALPHABET, CheckoutSession, PromoCode, Status, normalize_code

# Orders whose uses are consumed: the money came (refunded ones too, unless the refund gave
# the uses back); and those that hold them: payment may still come (``limits.HOLDING``).
CONSUMING = {Status.PAID, Status.COMPLETED, Status.PARTIALLY_REFUNDED, Status.REFUNDED}
HOLDING = state.LIVE | {Status.UNPAID}


class CodeRefused(Exception):
    """The code cannot be used as asked. ``reason`` is one of ``REASONS``; ``message`` says
    it plainly, in the active language."""

    REASONS = ("unknown", "not_yet", "expired", "used_up", "not_applicable", "too_many")

    def __init__(self, reason: str, code: str, *, limit: int = 0):
        self.reason = reason
        self.code = "promo_code_" + reason
        self.message = _message(reason, code, limit)
        super().__init__(self.message)


def _message(reason: str, code: str, limit: int) -> str:
    if reason == "too_many":
        return ngettext("The promo code “%(code)s” covers at most %(count)s ticket per order.",
                        "The promo code “%(code)s” covers at most %(count)s tickets per order.",
                        limit) % {"code": code, "count": limit}
    messages = {
        "unknown": gettext("There is no promo code “%(code)s” for this event. Check how it is written."),
        "not_yet": gettext("The promo code “%(code)s” is not valid yet."),
        "expired": gettext("The promo code “%(code)s” has expired."),
        "used_up": gettext("The promo code “%(code)s” has been used up."),
        "not_applicable": gettext("The promo code “%(code)s” does not apply to the tickets you chose."),
    }
    return messages[reason] % {"code": code}


# --- Finding a code ------------------------------------------------------------------------
def check_code(event: Event, typed: str, now=None) -> PromoCode:
    """The event's code ``typed`` (any case), if it may be used now; else ``CodeRefused``.

    A wrong code and an expired one take the same path: one query, then one decision on
    what it found, with no early return, so the time of the answer does not tell them apart.
    """
    now = now or timezone.now()
    text = normalize_code(typed)[:40]
    code = PromoCode.objects.filter(event=event, code=text).first()
    reason = refusal(code, now)
    if reason:
        raise CodeRefused(reason, text)
    return code


def refusal(code: PromoCode | None, now) -> str:
    """Why ``code`` cannot be used at ``now`` ("" if it can). ``used_up`` here is the quick
    answer; the exact one is ``take``'s, under the code's row lock."""
    if code is None:
        return "unknown"
    if code.valid_from is not None and now < code.valid_from:
        return "not_yet"
    if code.valid_until is not None and now >= code.valid_until:
        return "expired"
    if code.max_uses is not None and code.used >= code.max_uses:
        return "used_up"
    return ""


# --- What a code gives -------------------------------------------------------------------
def terms_of(code: PromoCode) -> dict:
    """What the code gives, as copied onto an order that uses it (``promo_terms``)."""
    applies = sorted(code.ticket_types.values_list("pk", flat=True))
    reveals = sorted(code.reveals_ticket_types.values_list("pk", flat=True))
    return {"code": code.code, "percent_off": code.percent_off, "amount_off": code.amount_off,
            "ticket_types": applies, "reveals": reveals}


def in_scope(terms: dict, ticket_type_id: int) -> bool:
    if not terms:
        return False
    if not terms["ticket_types"]:
        return True
    return ticket_type_id in terms["ticket_types"] or ticket_type_id in terms["reveals"]


def unit_discount(terms: dict, ticket_type_id: int, price: int) -> int:
    """What the code takes off one ticket of this type at ``price`` (minor units): a
    percentage rounded half up to the minor unit, or a fixed amount, never more than the price."""
    if not in_scope(terms, ticket_type_id):
        return 0
    if terms["percent_off"]:
        return min((price * terms["percent_off"] + 50) // 100, price)
    if terms["amount_off"]:
        return min(terms["amount_off"], price)
    return 0


def uses_in(terms: dict, quantities: dict[int, int]) -> int:
    """How many uses an order of ``{ticket_type_id: quantity}`` takes: its tickets in scope."""
    return sum(quantity for pk, quantity in quantities.items() if in_scope(terms, pk))


def check_order(code: PromoCode, terms: dict, quantities: dict[int, int]) -> int:
    """The uses an order takes, or ``CodeRefused`` if the code does not fit it."""
    uses = uses_in(terms, quantities)
    if not uses:
        raise CodeRefused("not_applicable", code.code)
    if code.max_uses_per_order is not None and uses > code.max_uses_per_order:
        raise CodeRefused("too_many", code.code, limit=code.max_uses_per_order)
    return uses


def revealed_ids(code: PromoCode | None) -> set[int]:
    return set(code.reveals_ticket_types.values_list("pk", flat=True)) if code is not None else set()


def offered_ticket_types(event: Event, code: PromoCode | None, now=None) -> list[TicketType]:
    """The ticket types the event's page offers: those on sale and not hidden, and the
    hidden ones ``code`` reveals. Each carries ``offer_price`` (what one costs with the code)
    and ``revealed`` (shown because of the code)."""
    now = now or timezone.now()
    terms = terms_of(code) if code is not None else {}
    offered = []
    for tt in event.ticket_types.all():
        if not tt.on_sale(now) or (tt.hidden and tt.pk not in terms.get("reveals", ())):
            continue
        tt.offer_price = tt.price - unit_discount(terms, tt.pk, tt.price)
        tt.revealed = tt.hidden
        offered.append(tt)
    return offered


# --- Uses, counted like seats ---------------------------------------------------------------
def take(code: PromoCode, uses: int) -> None:
    """Hold ``uses`` of ``code``, or ``CodeRefused("used_up")``. One conditional ``UPDATE``:
    the database checks and counts under the row's lock (PostgreSQL re-evaluates the
    condition on the newest row once the lock is granted), so a code good for 10 uses is
    used 10 times however many attendees type it at once."""
    room = Q(max_uses__isnull=True) | Q(used__lte=F("max_uses") - uses)
    if not PromoCode.objects.filter(room, pk=code.pk).update(used=F("used") + uses):
        raise CodeRefused("used_up", code.code)


def release_uses(session: CheckoutSession, *, refunded: bool = False) -> None:
    """Give the order's uses back (its hold ended; or, with ``refunded``, a paid order was
    refunded in full or canceled and its code gives uses back then). Idempotent; runs under
    the session's lock, in its caller's transaction."""
    if not session.promo_code_id or not session.promo_uses or session.promo_uses_released:
        return
    codes = PromoCode.objects.filter(pk=session.promo_code_id)
    if refunded:
        codes = codes.filter(uses_return_on_refund=True)
    if codes.update(used=F("used") - session.promo_uses):
        CheckoutSession.objects.filter(pk=session.pk).update(promo_uses_released=True)
        session.promo_uses_released = True


def retake_uses(session: CheckoutSession) -> None:
    """Money came for an order whose hold had ended: hold its uses again, or
    ``CodeRefused("used_up")`` if others took them meanwhile. Under the session's lock."""
    if not session.promo_code_id or not session.promo_uses or not session.promo_uses_released:
        return
    take(session.promo_code, session.promo_uses)
    CheckoutSession.objects.filter(pk=session.pk).update(promo_uses_released=False)
    session.promo_uses_released = False


@dataclass(frozen=True)
class Uses:
    held: int  # by orders still open (or waiting for payment)
    used: int  # by orders paid

    @property
    def total(self) -> int:
        return self.held + self.used


def uses_from_orders(code: PromoCode) -> Uses:
    """A code's uses as its orders say, for invariants: ``total`` must equal ``code.used``
    and never exceed ``code.max_uses``. One query."""
    # From the orders' states, not only their flag: an ended order still counted (its uses
    # never given back) shows up as a difference from ``code.used``.
    counted = CheckoutSession.objects.filter(promo_code=code, promo_uses_released=False)
    figures = counted.aggregate(
        held=Sum("promo_uses", filter=Q(status__in=HOLDING), default=0),
        used=Sum("promo_uses", filter=Q(status__in=CONSUMING), default=0),
    )
    return Uses(held=figures["held"], used=figures["used"])


def order_discount_matches(session: CheckoutSession) -> bool:
    """True if the order's discount is exactly what its code gave when it opened (the terms
    copied then), line by line and in total, and its total is its list price less that."""
    terms = session.promo_terms
    items = list(session.line_items.all())
    lines_ok = all(item.unit_discount == unit_discount(terms, item.ticket_type_id, item.unit_price) for item in items)
    discount = sum(item.discount for item in items)
    uses = uses_in(terms, {item.ticket_type_id: item.quantity for item in items}) if terms else 0
    return (lines_ok and discount == session.discount_total and uses == session.promo_uses
            and session.amount_total == sum(item.list_amount for item in items) - discount)


# --- What codes gave, for the organizer -------------------------------------------------------
@dataclass(frozen=True)
class CodeFigure:
    event: Event
    code: str
    orders: int  # paid orders that used it (refunded ones included: the discount was given)
    discount: int  # minor units, in the event's currency


def codes_given(events: list[Event]) -> list[CodeFigure]:
    """Per event and code: the paid orders that used it and the discount they were given.
    One aggregate query, most discount first."""
    by_pk = {event.pk: event for event in events}
    rows = (CheckoutSession.objects.filter(event__in=by_pk, status__in=CONSUMING).exclude(promo_code_text="")
            .values("event_id", "promo_code_text").annotate(orders=Count("pk"), discount=Sum("discount_total"))
            .order_by("event_id", "-discount", "promo_code_text"))
    return [CodeFigure(by_pk[row["event_id"]], row["promo_code_text"], row["orders"], row["discount"]) for row in rows]


# --- Making codes ----------------------------------------------------------------------------
def new_code(length: int = 8) -> str:
    """A code people can type: ``length`` symbols of an alphabet with nothing that reads as
    another (the tickets' alphabet: no 0/O, 1/I), 5 random bits each. A random byte modulo 32 is
    uniform."""
    return "".join(TICKET_CODE_ALPHABET[byte % 32] for byte in secrets.token_bytes(length))


def create_single_use_codes(template: PromoCode, count: int, *, prefix: str = "", length: int = 8,
                            ticket_types=(), reveals=()) -> list[PromoCode]:
    """``count`` new codes for ``template.event``, each good for one ticket, with
    ``template``'s discount and dates, all different from each other and from the event's
    codes. All or nothing."""
    if not 1 <= count <= 10_000:
        raise ValueError("Make between 1 and 10000 codes at a time.")
    prefix = normalize_code(prefix)
    taken = set(PromoCode.objects.filter(event=template.event, code__startswith=prefix).values_list("code", flat=True))
    codes: set[str] = set()
    while len(codes) < count:
        candidate = prefix + new_code(length)
        if candidate not in taken:
            codes.add(candidate)
    fields = {"event": template.event, "percent_off": template.percent_off, "amount_off": template.amount_off,
              "max_uses": 1, "max_uses_per_order": 1, "valid_from": template.valid_from,
              "valid_until": template.valid_until, "uses_return_on_refund": template.uses_return_on_refund}
    try:
        with transaction.atomic():
            made = PromoCode.objects.bulk_create(PromoCode(code=code, **fields) for code in sorted(codes))
            made = list(PromoCode.objects.filter(event=template.event, code__in=codes))
            through_applies = PromoCode.ticket_types.through
            through_reveals = PromoCode.reveals_ticket_types.through
            through_applies.objects.bulk_create(
                through_applies(promocode_id=code.pk, tickettype_id=tt.pk) for code in made for tt in ticket_types)
            through_reveals.objects.bulk_create(
                through_reveals(promocode_id=code.pk, tickettype_id=tt.pk) for code in made for tt in reveals)
    except IntegrityError as exc:  # a code made meanwhile by someone else: rare, and nothing was saved
        raise ValueError("A code with the same letters was just made elsewhere; make them again.") from exc
    return made
