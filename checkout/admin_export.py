"""The orders list as a spreadsheet an organizer can open: one row per ticket, streamed.

``ticket_rows(orders)`` reads the given orders in chunks (``iterator`` with ``chunk_size``;
each chunk's tickets, answers, prices and payment times come with it in four more queries),
so an export of 100,000 tickets never holds them all in memory. An order without tickets is
one row with the ticket's cells empty, so its money is in the export too.

Money is per ticket ("Ticket price") and per order ("Order paid", "Order refunded"): the
order's amounts are written on the order's first row only, so a column's sum is the orders'
total, never an order's money counted once per ticket. Times are on the event's clock, with
the zone in its own column.

``csv_lines`` writes the rows as a spreadsheet in the reader's language reads them: UTF-8
with a byte-order mark (so Excel does not guess a legacy encoding), and for Portuguese ``;``
between cells and decimal commas (Excel set to Portuguese splits on ``;``). Every text cell is
made safe (``safe_cell``). ``xlsx_file`` writes the same rows as an Excel workbook (openpyxl,
write-only): numbers as numbers, times as times, text as text cells a spreadsheet never runs.
"""

from __future__ import annotations

import csv
import itertools
import re
import tempfile
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import translation
from django.utils.translation import gettext

from ievents.models import Question
from ievents.money import to_units

from .formatting import order_reference
from .models import Answer, LineItem, Status, Ticket, Transition

CHUNK_SIZE = 2000
BOM = "\ufeff"


def fixed_columns() -> list[str]:
    return [gettext("Order reference"), gettext("Order id"), gettext("Status"), gettext("Ticket holder"),
            gettext("Email"), gettext("Event"), gettext("Event starts"), gettext("Ticket type"), gettext("Ticket code"),
            gettext("Holder email"), gettext("Ticket price"), gettext("Ticket discount"), gettext("Ticket"),
            gettext("Order paid"), gettext("Order refunded"), gettext("Promo code"), gettext("Currency"), gettext("Created"),
            gettext("Paid at"), gettext("Time zone"), gettext("Invoice NIF/VAT"), gettext("Invoice name"),
            gettext("Invoice address")]


# What a spreadsheet runs as a formula when a cell starts with it: = + - @ (and their
# full-width forms, which some spreadsheets read alike), a tab or a carriage return. A cell
# that holds a separator a spreadsheet may split on (, ; tab, new line, |) starts another cell
# there, so a formula character after one of those (spaces between) is neutralised as well:
# "Ana;=2+5;x" is written "Ana;'=2+5;x", whichever separator the reader's spreadsheet uses.
# The ' goes right after the separator (or first in the cell), before any spaces.
# (A tab is both a separator and a formula character: each one gets its own '.)
FORMULA_AT_A_CELLS_START = re.compile(r"(^|[,;\t\r\n|])( *)(?=[=+\-@\uff1d\uff0b\uff0d\uff20\t\r])")


def safe_cell(value) -> str:
    """A text cell a spreadsheet shows as text: a ``'`` before every formula character that
    could start a cell."""
    text = "" if value is None else str(value)
    return FORMULA_AT_A_CELLS_START.sub(lambda m: m.group(1) + "'" + m.group(2), text)


def export_questions(orders) -> list[Question]:
    """The questions of every event in the export, one column each, in a stable order."""
    return list(Question.objects.filter(event__in=orders.values("event_id")).order_by("event_id", "position", "id"))


def _local(value, zone):
    """A naive date-time on the zone's clock, as a spreadsheet holds one."""
    return value.astimezone(zone).replace(tzinfo=None, microsecond=0) if value else None


def ticket_rows(orders, questions: list[Question]) -> Iterator[list]:
    """One list of cells per ticket of ``orders`` (a queryset of checkout sessions), after a
    header row: text, ``Decimal`` amounts and naive date-times on the event's clock.

    Every word is translated now, in the request's language: the rows are read later, while
    the response streams."""
    header = fixed_columns() + [question.text for question in questions]
    words = {"statuses": {value: str(label) for value, label in Status.choices},
             "valid": gettext("Valid"), "void": gettext("Void")}
    return itertools.chain([header], _rows(orders, questions, words))


def _rows(orders, questions: list[Question], words: dict) -> Iterator[list]:
    sessions = (
        orders.order_by("-created_at", "pk").select_related("event")
        .prefetch_related(Prefetch("tickets", queryset=Ticket.objects.select_related("ticket_type").order_by("id")),
                          Prefetch("answers", queryset=Answer.objects.only("session_id", "question_id", "value")),
                          Prefetch("line_items", queryset=LineItem.objects.only("session_id", "ticket_type_id",
                                                                                 "unit_price", "unit_discount")),
                          Prefetch("transitions", to_attr="paid_steps",
                                   queryset=Transition.objects.filter(to_status=Status.PAID).only("session_id", "at")))
    )
    for session in sessions.iterator(chunk_size=CHUNK_SIZE):
        zone = zoneinfo.ZoneInfo(session.event.timezone)
        answers = {answer.question_id: answer.value for answer in session.answers.all()}
        prices = {item.ticket_type_id: (item.unit_price, item.unit_discount) for item in session.line_items.all()}
        paid_at = session.paid_steps[0].at if session.paid_steps else None
        with translation.override(session.language):  # the event and tickets as the attendee read them
            event_name = session.event.name
            type_names = {t.ticket_type_id: t.ticket_type.name for t in session.tickets.all()}
        order = [order_reference(session.public_id), session.public_id,
                 words["statuses"].get(session.status, session.status), session.customer_name, session.customer_email,
                 event_name, _local(session.event.starts_at, zone)]
        after = [session.promo_code_text, session.currency, _local(session.created_at, zone), _local(paid_at, zone),
                 session.event.timezone, session.invoice_tax_id, session.invoice_name, session.invoice_address]
        money = [to_units(session.amount_paid, session.currency), to_units(session.amount_refunded, session.currency)]
        # An order without tickets (not paid, or paid and flagged) is one row with the ticket's cells empty:
        # its money is in the export as it is in the overview.
        for position, ticket in enumerate(session.tickets.all() or [None]):
            holder = (ticket.holder_name if ticket is not None else "") or session.customer_name
            # A per-ticket question's column holds this ticket's holder's answer.
            asked = [(ticket.holder_answers if ticket is not None else {}).get(question.text, answers.get(question.pk, ""))
                     for question in questions]
            if ticket is None:
                cells = ["", "", "", None, None, ""]
            else:
                price, discount = prices.get(ticket.ticket_type_id, (ticket.ticket_type.price, 0))
                cells = [type_names[ticket.ticket_type_id], ticket.code, ticket.holder_email, to_units(price, session.currency),
                         to_units(discount, session.currency) if discount else None,
                         words["void"] if ticket.voided_at else words["valid"]]
            yield [*order[:3], holder, *order[4:], *cells, *(money if position == 0 else [None, None]), *after, *asked]


@dataclass(frozen=True)
class Dialect:
    """How a spreadsheet in the reader's language splits cells and writes decimals."""

    delimiter: str
    decimal: str


def dialect_for(language: str | None = None) -> Dialect:
    language = (language or translation.get_language() or "en").lower()
    return Dialect(";", ",") if language.startswith("pt") else Dialect(",", ".")


def _cell(value, dialect: Dialect) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(value).replace(".", dialect.decimal)
    if hasattr(value, "isoformat"):
        return value.isoformat(sep=" ", timespec="minutes")
    return safe_cell(value)


class _Line:
    """csv.writer writes into this and gets the line back, so nothing accumulates."""

    def write(self, text: str) -> str:
        return text


def csv_lines(rows: Iterable[list], dialect: Dialect) -> Iterator[str]:
    writer = csv.writer(_Line(), delimiter=dialect.delimiter)
    yield BOM
    for row in rows:
        yield writer.writerow([_cell(cell, dialect) for cell in row])


def xlsx_file(rows: Iterable[list]):
    """The rows as an ``.xlsx`` workbook in a temporary file (rewound, for a FileResponse).

    Write-only mode keeps memory flat (rows go to disk as they come). A text cell is written
    as a string cell whatever it starts with ("=2+5" stays text: openpyxl would otherwise make
    it a formula), without the characters XML cannot hold."""
    # openpyxl takes a while to import: only a workbook export pays for it.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(gettext("Orders"))
    bold = Font(bold=True)

    def cell(value, header=False):
        if isinstance(value, Decimal):
            out = WriteOnlyCell(sheet, value=value)
            out.number_format = "0.00"
            return out
        if hasattr(value, "isoformat"):
            out = WriteOnlyCell(sheet, value=value)
            out.number_format = "yyyy-mm-dd hh:mm"
            return out
        out = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", "" if value is None else str(value)))
        out.data_type = "s"
        if header:
            out.font = bold
        return out

    for number, row in enumerate(rows):
        sheet.append([cell(value, header=number == 0) for value in row])
    file = tempfile.TemporaryFile()
    workbook.save(file)
    file.seek(0)
    return file
