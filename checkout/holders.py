"""Named tickets: who holds each ticket of a type the organizer names per ticket.

A ticket type says ``holder_names``: ``order`` (today's way: every ticket carries the
buyer's name) or ``ticket`` (the attendee form asks a name, and optionally an email, for
each of its tickets). Before payment the names live on the line item (``LineItem.holders``,
one ``{"name", "email"}`` per ticket, in order), where the gate sees and approves them with
the rest of the details; when the order completes each ticket is issued with its holder.
"""

from __future__ import annotations

from dataclasses import dataclass

from ievents.models import HolderNames


@dataclass(frozen=True)
class Slot:
    """One ticket that needs a name on the attendee form."""

    line_item_id: int
    index: int  # within its line item
    number: int  # within the order, from 1, as the form counts them
    type_name: str
    asks_email: bool

    def field(self, part: str) -> str:
        return f"holder_{self.line_item_id}_{self.index}_{part}"


def slots(line_items) -> list[Slot]:
    """The tickets of ``line_items`` (with their ticket types) that are named one by one."""
    out, number = [], 0
    for item in line_items:
        if item.ticket_type.holder_names != HolderNames.TICKET:
            continue
        for index in range(item.quantity):
            number += 1
            out.append(Slot(item.pk, index, number, item.ticket_type.name, item.ticket_type.holder_email))
    return out


def initial(line_items) -> dict[str, str]:
    """The form's initial values from the names saved on the line items."""
    values = {}
    for slot in slots(line_items):
        item = next(i for i in line_items if i.pk == slot.line_item_id)
        if slot.index < len(item.holders):
            values[slot.field("name")] = item.holders[slot.index].get("name", "")
            values[slot.field("email")] = item.holders[slot.index].get("email", "")
    return values


def for_ticket(item, index: int, buyer_name: str, buyer_email: str) -> tuple[str, str, dict]:
    """The holder of the ``index``-th ticket of ``item``: its own (name, email, answers to the
    per-ticket questions), or the buyer."""
    if item.ticket_type.holder_names == HolderNames.TICKET and index < len(item.holders):
        holder = item.holders[index]
        return holder.get("name", "") or buyer_name, holder.get("email", ""), holder.get("answers", {})
    return buyer_name, buyer_email, {}
