"""Inventory holds. A hold is a session's line items counted in ``TicketType.reserved``.

Ticket types are locked with ``SELECT … FOR UPDATE`` in primary-key order, so two
checkouts wanting the same types never deadlock, and the availability check and the
increment happen under the same lock: no oversell. On SQLite the IMMEDIATE transaction
mode (settings) gives the same serialisation, and the ``no_oversell`` check constraint is
the last line of defence on both.
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
    """Hold ``{ticket_type_id: quantity}``; return the locked ticket types. All or nothing."""
    with transaction.atomic():
        locked = {
            tt.pk: tt
            for tt in TicketType.objects.select_for_update().filter(pk__in=quantities).order_by("pk")
        }
        for pk, wanted in sorted(quantities.items()):
            if locked[pk].available < wanted:
                raise SoldOut(locked[pk], wanted)
        for pk, wanted in sorted(quantities.items()):
            TicketType.objects.filter(pk=pk).update(reserved=F("reserved") + wanted)
            locked[pk].reserved += wanted
        return locked


def release(quantities: dict[int, int]) -> None:
    """Give held tickets back."""
    with transaction.atomic():
        list(TicketType.objects.select_for_update().filter(pk__in=quantities).order_by("pk"))
        for pk, count in sorted(quantities.items()):
            TicketType.objects.filter(pk=pk).update(reserved=F("reserved") - count)


def quantities_of(session) -> dict[int, int]:
    totals: Counter = Counter()
    for item in session.line_items.all():
        totals[item.ticket_type_id] += item.quantity
    return dict(totals)
