"""Inventory holds. A hold is a session's line items counted in ``TicketType.reserved``.

A hold is one conditional ``UPDATE`` per ticket type, in primary-key order:
``reserved = reserved + n WHERE reserved <= quantity - n``. The database checks and
increments under the row's lock (PostgreSQL re-evaluates the condition on the newest row
once the lock is granted), so nothing is oversold, and two checkouts wanting the same types
take their locks in the same order and never deadlock. The ``no_oversell`` check
constraint is the last line of defence; on SQLite the IMMEDIATE transaction mode
(settings) serialises writers instead.

Why not ``SELECT … FOR UPDATE`` and then ``UPDATE``: at an on-sale, hundreds of attendees
want the same row. A plain ``FOR UPDATE`` also blocks the ``FOR KEY SHARE`` lock every
insert referencing the ticket type takes (a line item, a ticket at completion), so winners
completing their orders queued behind attendees still reserving; the ``UPDATE`` takes
``FOR NO KEY UPDATE``, which does not. And once the type is sold out (committed), the
condition is false on the row every attendee sees, so the ``UPDATE`` matches nothing
without waiting for anyone's lock: the sold-out answer does not queue
(bench/bench_onsale.py).
"""

from collections import Counter

from django.db import transaction
from django.db.models import F

from ievents.models import TicketType


class SoldOut(Exception):
    """Not enough tickets of a type are left."""

    def __init__(self, ticket_type: TicketType, wanted: int):
        super().__init__(f"only {ticket_type.available} of {ticket_type.name!r} left, {wanted} wanted")
        self.ticket_type = ticket_type
        self.wanted = wanted


class PriceChanged(Exception):
    """A ticket type's price is no longer the one the attendee was shown."""

    def __init__(self, ticket_type: TicketType):
        super().__init__(f"the price of {ticket_type.name!r} is now {ticket_type.price}")
        self.ticket_type = ticket_type


def reserve(quantities: dict[int, int], prices: dict[int, int] | None = None) -> None:
    """Hold ``{ticket_type_id: quantity}``. All or nothing: ``SoldOut`` undoes the types
    already held. ``prices``: ``{ticket_type_id: unit price}`` the attendee was shown; a type
    whose price changed since is not held (``PriceChanged``). The price is part of the
    conditional ``UPDATE``, so a hold reads nothing back; a type is read only to say why it
    was refused.

    Part of the caller's transaction (one is opened if there is none): a refusal propagates
    and rolls the caller's work back with the types already held; a caller that carries on
    after one takes its own savepoint (``services.record_payment_succeeded``).
    """
    with transaction.atomic(savepoint=False):
        for pk, wanted in sorted(quantities.items()):
            rows = TicketType.objects.filter(pk=pk, reserved__lte=F("quantity") - wanted)
            if prices is not None:
                rows = rows.filter(price=prices[pk])
            if not rows.update(reserved=F("reserved") + wanted):
                current = TicketType.objects.get(pk=pk)
                if prices is not None and current.price != prices[pk]:
                    raise PriceChanged(current)
                raise SoldOut(current, wanted)


def release(quantities: dict[int, int]) -> None:
    """Give held tickets back (in primary-key order, as they were taken)."""
    with transaction.atomic():
        for pk, count in sorted(quantities.items()):
            TicketType.objects.filter(pk=pk).update(reserved=F("reserved") - count)


def quantities_of(session) -> dict[int, int]:
    totals: Counter = Counter()
    for item in session.line_items.all():
        totals[item.ticket_type_id] += item.quantity
    return dict(totals)
