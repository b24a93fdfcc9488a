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


def reserve(quantities: dict[int, int]) -> dict[int, TicketType]:
    """Hold ``{ticket_type_id: quantity}``; return the ticket types as held (read under
    their locks). All or nothing: ``SoldOut`` undoes the types already held."""
    with transaction.atomic():
        for pk, wanted in sorted(quantities.items()):
            held = TicketType.objects.filter(pk=pk, reserved__lte=F("quantity") - wanted).update(
                reserved=F("reserved") + wanted)
            if not held:
                raise SoldOut(TicketType.objects.get(pk=pk), wanted)
        return TicketType.objects.in_bulk(sorted(quantities))


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
