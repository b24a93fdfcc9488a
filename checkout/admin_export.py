"""The orders list as CSV: one row per ticket, streamed.

``ticket_rows(orders)`` reads the tickets of the given orders in chunks (``iterator`` with
``chunk_size``; each chunk's answers and prices come with it in two more queries), so an
export of 100,000 tickets never holds them all in memory. ``csv_lines`` writes the rows as
CSV text, each cell made safe for spreadsheets.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.db.models import Prefetch
from django.utils import timezone

from ievents.admin_money import to_units
from ievents.models import Question

from .models import Answer, LineItem, Ticket

CHUNK_SIZE = 2000
FIXED_COLUMNS = ["Order reference", "Status", "Name", "Email", "Event", "Ticket type", "Ticket code", "Price",
                 "Paid", "Currency", "Created", "Ticket holder", "Holder email", "Invoice NIF/VAT", "Invoice name",
                 "Invoice address"]
# A cell a spreadsheet would run as a formula ("=HYPERLINK(…)"): prefixed with ' so it is text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_questions(orders) -> list[Question]:
    """The questions of every event in the export, one column each, in a stable order."""
    return list(Question.objects.filter(event__in=orders.values("event_id")).order_by("event_id", "position", "id"))


def ticket_rows(orders, questions: list[Question]) -> Iterator[list]:
    """One list of cells per ticket of ``orders`` (a queryset of checkout sessions)."""
    yield FIXED_COLUMNS + [question.text for question in questions]
    tickets = (
        Ticket.objects.filter(session__in=orders.values("pk"))
        .select_related("session__event", "ticket_type")
        .prefetch_related(Prefetch("session__answers", queryset=Answer.objects.only("session_id", "question_id",
                                                                                     "value")),
                          Prefetch("session__line_items", queryset=LineItem.objects.only("session_id", "ticket_type_id",
                                                                                          "unit_price")))
        .order_by("-session__created_at", "session_id", "id")
    )
    for ticket in tickets.iterator(chunk_size=CHUNK_SIZE):
        session = ticket.session
        answers = {answer.question_id: answer.value for answer in session.answers.all()}
        prices = {item.ticket_type_id: item.unit_price for item in session.line_items.all()}
        price = prices.get(ticket.ticket_type_id, ticket.ticket_type.price)
        yield [
            session.public_id, session.get_status_display(), session.customer_name, session.customer_email,
            session.event.name, ticket.ticket_type.name, ticket.code,
            to_units(price, session.currency), to_units(session.amount_paid, session.currency), session.currency,
            timezone.localtime(session.created_at).isoformat(timespec="seconds"),
            ticket.holder_name, ticket.holder_email,
            session.invoice_tax_id, session.invoice_name, session.invoice_address,
            # A per-ticket question's column holds this ticket's holder's answer.
            *[ticket.holder_answers.get(question.text, answers.get(question.pk, "")) for question in questions],
        ]


class _Line:
    """csv.writer writes into this and gets the line back, so nothing accumulates."""

    def write(self, text: str) -> str:
        return text


def csv_lines(rows: Iterable[list]) -> Iterator[str]:
    writer = csv.writer(_Line())
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])
