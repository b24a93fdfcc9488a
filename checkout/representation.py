"""A checkout session as the API shows it, and as every outbound event carries it."""

from django.conf import settings
from django.db.models import Prefetch, prefetch_related_objects
from django.urls import reverse
from django.utils import translation

from ievents.languages import web_code

from .formatting import order_reference
from .models import WITH_ISSUED_TICKETS, Answer, LineItem

# Tickets are issued only when a paid session completes (``services.complete``), so a
# session in any other status has none (a ``paid`` one is not completed yet, or was flagged
# instead) and its representation skips the read.

# The rows a representation lists besides the session itself. Line items and answers only
# change under the session's row lock, so once prefetched for a locked session they stay true
# until the transaction ends; tickets are read when shown, since completing issues them.
LISTED_ROWS = (
    Prefetch("line_items", queryset=LineItem.objects.select_related("ticket_type")),
    Prefetch("answers", queryset=Answer.objects.select_related("question")),
)


def hosted_url(session) -> str:
    return settings.PUBLIC_BASE_URL + reverse("checkout:session", args=[session.public_id])


def with_listed_rows(session):
    """Prefetch the session's line items and answers unless they already are; returns it."""
    prefetch_related_objects([session], *LISTED_ROWS)
    return session


def listed_rows(session, line_items: list | None = None, answers: list | None = None) -> tuple[list, list]:
    """All of the session's line items and answers: ``line_items`` and ``answers`` when the
    caller holds them (rows it has just written), else as prefetched with the session (read
    now if they are not: ``with_listed_rows``)."""
    if line_items is None or answers is None:
        with_listed_rows(session)
        return list(session.line_items.all()), list(session.answers.all())
    return line_items, answers


def session_as_api(session, *, line_items: list | None = None, answers: list | None = None) -> dict:
    """The session, with the organizer's texts (ticket type names, questions) in the language
    the attendee bought in: the gate, notifications and the API read what the attendee saw.

    ``line_items`` and ``answers``: all of the session's, when the caller holds them (a session
    just created: its line items as inserted, with their ticket types, and no answers), so
    they are not read; otherwise they are (``with_listed_rows``)."""
    line_items, answers = listed_rows(session, line_items, answers)
    with translation.override(session.language):
        return _as_api(session, line_items, answers)


def _as_api(session, line_items: list, answers: list) -> dict:
    listed = [
        {
            "ticket_type": item.ticket_type.public_id,
            "name": item.ticket_type.name,
            "quantity": item.quantity,
            "unit_price": item.unit_price,
            "unit_discount": item.unit_discount,
            "discount": item.discount,
            "amount": item.amount,
            # Named tickets (checkout.holders): the holder typed for each ticket, in order.
            "holders": [{"name": h.get("name", ""), "email": h.get("email", ""), "answers": h.get("answers", {})}
                        for h in item.holders],
        }
        for item in line_items
    ]
    type_ids = {item.ticket_type_id: item.ticket_type.public_id for item in line_items}
    answered = {a.question.text: a.value for a in answers}
    # A completion in this transaction holds the tickets it issued (``services._issue_tickets``):
    # they are all the session has, so they are not read back.
    issued = getattr(session, "issued_tickets", None)
    valid = ([t for t in (issued if issued is not None else session.tickets.all()) if t.voided_at is None]
             if session.status in WITH_ISSUED_TICKETS else [])
    tickets = [t.code for t in valid]
    # Who each ticket admits: its own holder, or the buyer (``tickets`` stays the list of codes).
    ticket_holders = [{"code": t.code, "ticket_type": type_ids.get(t.ticket_type_id),
                       "name": t.holder_name, "email": t.holder_email, "answers": t.holder_answers} for t in valid]
    invoice = ({"tax_id": session.invoice_tax_id, "name": session.invoice_name, "address": session.invoice_address}
               if session.invoice_tax_id or session.invoice_name or session.invoice_address else None)
    return {
        "id": session.public_id,
        "object": "checkout.session",
        "reference": order_reference(session.public_id),
        "status": session.status,
        "version": session.version,
        "url": hosted_url(session),
        "event": session.event.public_id,
        "customer": {"name": session.customer_name, "email": session.customer_email},
        "answers": answered,
        "line_items": listed,
        "promo_code": session.promo_code_text or None,
        "discount_total": session.discount_total,
        "amount_total": session.amount_total,
        "amount_paid": session.amount_paid,
        "amount_refunded": session.amount_refunded,
        "currency": session.currency,
        "language": web_code(session.language),
        "payment_provider": session.provider or None,
        "expires_at": session.expires_at.isoformat(),
        "created": session.created_at.isoformat(),
        "completed_at": session.completed_at.isoformat() if session.completed_at else None,
        "success_url": session.success_url or None,
        "cancel_url": session.cancel_url or None,
        "webhook_url": session.webhook_url or None,
        "metadata": session.metadata,
        "tickets": tickets,
        "ticket_holders": ticket_holders,
        "invoice": invoice,
        "needs_attention": session.needs_attention or None,
    }
